"""The repository against the real PostgreSQL: claims and replies are first-time-only, keys hashed."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.store import repository
from services.store.models import ApiKey
from tests.services.messages import cry_result, unique_request, unique_track_id


async def test_a_voice_note_is_claimed_once_by_chat_and_message(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    request_id, chat_id, message_id = unique_request()
    async with sessions() as session:
        first = await repository.claim_cry_request(session, request_id, chat_id, message_id, "ru")
        again = await repository.claim_cry_request(session, request_id, chat_id, message_id, "ru")
        other_id = await repository.claim_cry_request(
            session, request_id + "-other", chat_id, message_id, "ru"
        )
    assert (first, again, other_id) == (True, False, False)


async def test_a_track_is_claimed_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    track_id = unique_track_id()
    async with sessions() as session:
        assert await repository.claim_track(session, track_id, 1234, None) is True
        assert await repository.claim_track(session, track_id, 1234, None) is False


async def test_api_keys_are_stored_hashed_and_found_only_with_the_raw_key(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        raw_key = await repository.create_api_key(session, "player app")
        found = await repository.find_api_key(session, raw_key)
        wrong = await repository.find_api_key(session, raw_key[:-1] + ("A" if raw_key[-1] != "A" else "B"))
        stored = (await session.scalars(select(ApiKey.key_hash))).all()
    assert found is not None and found.name == "player app"
    assert wrong is None
    assert raw_key not in stored and repository.hash_api_key(raw_key) in stored


async def test_a_reply_is_marked_sent_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    result = cry_result()
    async with sessions() as session:
        assert await repository.store_cry_result(session, result) is True
        assert await repository.store_cry_result(session, result) is False
        assert await repository.mark_reply_sent(session, result.request_id) is True
        assert await repository.mark_reply_sent(session, result.request_id) is False
        assert await repository.mark_reply_sent(session, "tg:0:unknown") is False
