"""The repository against the real PostgreSQL: claims and replies are first-time-only, keys hashed."""

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.settings import DatabaseSettings
from services.gateway.transactions import all_or_nothing
from services.store import repository
from services.store.db import make_engine
from services.store.models import ApiKey
from tests.services.messages import cry_result, kws_done, unique_request, unique_track_id


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


async def test_a_tracks_blob_outlives_a_scan_being_claimed_and_goes_once_none_waits(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    track_id = unique_track_id()
    answer = kws_done(track_id)
    async with sessions() as session:
        await repository.claim_track(session, track_id, 1234, None)  # scanned before, by an older model
    deleted: list[str] = []

    async def settle() -> bool:
        async with sessions() as session:
            return await repository.delete_blob_unless_pending(
                session, track_id, lambda: deleted.append(track_id)
            )

    engine = make_engine(DatabaseSettings(database_url=database_url))
    try:
        async with all_or_nothing(engine) as claiming:  # as a gateway claims a scan by today's model
            await repository.claim_track(claiming, track_id, 1234, None)
            await repository.claim_scan(claiming, track_id, None, answer.model_version)
            settling = asyncio.create_task(settle())
            await asyncio.sleep(0.3)
            assert not settling.done(), "the store waits for the claim being made"
        assert (await settling, deleted) == (False, []), "the claimed scan still needs the blob"
    finally:
        await engine.dispose()
    async with sessions() as session:
        await repository.store_kws_result(session, answer.model_copy(update={"model_version": "older"}))
    assert (await settle(), deleted) == (False, []), "another version's answer is not this scan's"
    async with sessions() as session:
        await repository.store_kws_result(session, answer)
    assert (await settle(), deleted) == (True, [track_id])


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


async def test_a_context_answer_is_one_row_per_question_the_last_wins_and_only_for_the_chats_answer(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    result = cry_result()
    request_id, chat_id = result.request_id, result.chat_id
    async with sessions() as session:
        assert not await repository.record_context_answer(session, request_id, chat_id, "nappy", "checked")
        await repository.store_cry_result(session, result)
        first = await repository.record_context_answer(session, request_id, chat_id, "nappy", "checked")
        again = await repository.record_context_answer(session, request_id, chat_id, "nappy", "checked")
        changed = await repository.record_context_answer(session, request_id, chat_id, "nappy", "not_checked")
        other_chat = await repository.record_context_answer(session, request_id, chat_id + 1, "awake", "1_2h")
        await repository.record_context_answer(session, request_id, chat_id, "awake", "over_2h")
        answers = await repository.context_answers_of(session, request_id)
    assert (first, again, changed, other_chat) == (True, False, True, False)
    assert answers == {"nappy": "not_checked", "awake": "over_2h"}


async def test_the_age_band_is_set_changed_and_removed_without_touching_donation(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    _, chat_id, _ = unique_request()
    async with sessions() as session:
        assert await repository.age_band_of(session, chat_id) is None
        await repository.set_donation(session, chat_id, True)
        await repository.set_age_band(session, chat_id, "2-6m")
        set_to = await repository.age_band_of(session, chat_id)
        await repository.set_age_band(session, chat_id, None)
        removed = await repository.age_band_of(session, chat_id)
        donates = await repository.donates_audio(session, chat_id)
    assert (set_to, removed, donates) == ("2-6m", None, True)


async def test_a_first_notice_is_claimed_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    _, chat_id, _ = unique_request()
    async with sessions() as session:
        claims = [await repository.claim_first_notice(session, chat_id, "age_invite") for _ in range(2)]
    assert claims == [True, False]


async def test_feedback_keeps_the_snapshot_of_its_latest_verdict(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    result = cry_result()
    first = repository.AnswerSnapshot("hungry", "0-4w", {"since_feed": "over_3h"})
    later = repository.AnswerSnapshot("burping", "0-4w", {"since_feed": "under_1h", "just_fed": "yes"})
    async with sessions() as session:
        await repository.store_cry_result(session, result)
        await repository.record_feedback(session, result.request_id, result.chat_id, "right", "hungry", first)
        await repository.record_feedback(session, result.request_id, result.chat_id, "wrong", "tired", later)
        [rated] = [
            a
            for a in await repository.rated_answers(session)
            if a.audio_probabilities == result.probabilities and a.context == later.context
        ]
    assert (rated.predicted_label, rated.verdict, rated.reported_label, rated.age_band) == (
        "burping",
        "wrong",
        "tired",
        "0-4w",
    )
