"""Fair use through the stand-in against the real broker and PostgreSQL: the per-chat rate limit (also
across two gateway replicas), forwarded duplicates, floods of non-audio messages, and the queue estimate."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import text

from services.common.amqp import Publisher, connect
from services.common.contracts import utc_now
from services.common.settings import BrokerSettings
from services.common.topology import CRY_CLASSIFY_QUEUE, JOBS_EXCHANGE
from services.gateway import replies
from services.store import repository
from services.store.db import make_engine, make_session_factory
from services.store.settings import StoreSettings
from tests.services.harness import drop_database, migrate_database
from tests.services.messages import cry_job, cry_result

from .bot_helpers import SETTLE_S, VOICE, new_chat, wait_for_jobs


def rate_limited_prefix(language: str) -> str:
    return replies.RATE_LIMITED[language].split("{")[0]


async def test_a_chat_over_its_rate_limit_gets_one_polite_answer_and_no_job(start_gateway, broker) -> None:
    gateway = await start_gateway(rate_limit_recordings=2, rate_limit_window_s=600)
    standin = gateway.standin
    chat, other_chat = new_chat(), new_chat()

    # One at a time, each answered before the next arrives: updates are handled concurrently, so recordings
    # delivered together could be counted in any order.
    for message_id in range(1, 4):
        await standin.deliver(standin.media_message("voice", VOICE, chat_id=chat, message_id=message_id))
        await standin.wait_for_sent(message_id)
    await standin.deliver(standin.media_message("voice", VOICE, chat_id=chat, message_id=4))
    await standin.wait_until_polled_empty()
    await asyncio.sleep(SETTLE_S)
    await standin.deliver(standin.media_message("voice", VOICE, chat_id=other_chat, message_id=1))
    await standin.wait_for_sent(4)
    await asyncio.sleep(SETTLE_S)

    jobs = await wait_for_jobs(broker, 3)
    assert sorted((job.chat_id, job.message_id) for job in jobs) == sorted(
        [(chat, 1), (chat, 2), (other_chat, 1)]
    )
    texts = [m.text for m in standin.sent if m.chat_id == chat]
    assert all(text.startswith(replies.ACCEPTED["ru"]) for text in texts[:2])
    # The third recording hears why and when to come back; the fourth, in the same minute, hears nothing.
    assert len(texts) == 3 and texts[2].startswith(rate_limited_prefix("ru"))
    assert "10 мин" in texts[2]


async def test_the_rate_limit_holds_across_two_gateway_replicas(start_gateway, broker) -> None:
    first = await start_gateway(rate_limit_recordings=2)
    second = await start_gateway(rate_limit_recordings=2)
    chat = new_chat()

    # Two recordings reach each replica at the same moment.
    for gateway, message_ids in ((first, (1, 2)), (second, (3, 4))):
        for message_id in message_ids:
            # Each stand-in numbers its files from 1: distinct content ids keep them distinct recordings.
            voice = gateway.standin.media_message(
                "voice", VOICE, chat_id=chat, message_id=message_id, file_unique_id=f"{chat}-{message_id}"
            )
            await gateway.standin.deliver(voice)
    for gateway in (first, second):
        await gateway.standin.wait_until_polled_empty()
    await asyncio.sleep(3 * SETTLE_S)

    assert len(await wait_for_jobs(broker, 2)) == 2
    await asyncio.sleep(SETTLE_S)
    assert await broker.drain(CRY_CLASSIFY_QUEUE) == []
    limited = [
        m for g in (first, second) for m in g.standin.sent if m.text.startswith(rate_limited_prefix("ru"))
    ]
    assert len(limited) == 1  # one polite answer between the replicas (notices are throttled in PostgreSQL)


async def test_a_forwarded_copy_of_a_recording_makes_no_second_job(start_gateway, broker) -> None:
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()
    original = standin.media_message("voice", VOICE, chat_id=chat, message_id=5, language_code="en")

    await standin.deliver(original)
    await standin.wait_until_polled_empty()
    await standin.deliver(standin.forwarded(original, message_id=6))
    await standin.wait_for_sent(2)
    await asyncio.sleep(SETTLE_S)

    assert [job.message_id for job in await wait_for_jobs(broker, 1)] == [5]
    assert [m.text for m in standin.sent] == [replies.ACCEPTED["en"], replies.REPEAT["en"]]
    assert [m.reply_to_message_id for m in standin.sent] == [5, None]


async def test_a_flood_of_text_messages_gets_one_hint_and_no_job(start_gateway, broker) -> None:
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()

    for message_id in range(1, 8):
        await standin.deliver(
            standin.text_message(f"hello {message_id}", chat_id=chat, message_id=message_id)
        )
    await standin.wait_until_polled_empty()
    await standin.wait_for_sent(1)
    await asyncio.sleep(SETTLE_S)

    assert [m.text for m in standin.sent] == [replies.SEND_AUDIO["ru"]]
    assert await broker.drain(CRY_CLASSIFY_QUEUE) == []


async def test_listening_says_honestly_how_long_a_backed_up_queue_takes(
    start_gateway, broker, database_url: str
) -> None:
    # A database of its own, so the measured rate is only the results this test writes.
    url = f"{database_url}_backlog_{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(migrate_database, url)
    engine = make_engine(StoreSettings(database_url=url))
    try:
        gateway = await start_gateway(database_url=url, backlog_notice_s=30, backlog_rate_window_s=300)
        standin = gateway.standin
        connection = await connect(BrokerSettings(amqp_url=broker.amqp_url))
        publisher = await Publisher.open(connection)
        for _ in range(30):  # 30 jobs wait, no worker takes them
            job = cry_job(VOICE)
            await publisher.publish(job, JOBS_EXCHANGE, CRY_CLASSIFY_QUEUE, message_id=job.request_id)
        await connection.close()

        # No result written lately: the wait cannot be estimated, and the bot says so.
        chat = new_chat()
        await standin.deliver(standin.media_message("voice", VOICE, chat_id=chat, message_id=1))
        [unknown] = await standin.wait_for_sent(1)
        assert unknown.text == replies.render_listening("ru", 30, None, True)

        # 10 results written over the last 100 s: 0.1 per second, so 31 jobs (ours too) take ~310 s.
        sessions = make_session_factory(engine)
        async with sessions() as session:
            for age_s in range(10, 110, 10):
                result = cry_result()
                await repository.store_cry_result(session, result)
                await session.execute(
                    text("UPDATE predictions SET stored_at = :at WHERE request_id = :r"),
                    {"at": utc_now() - timedelta(seconds=age_s), "r": result.request_id},
                )
            await session.commit()
        await standin.deliver(
            standin.media_message("voice", VOICE, chat_id=chat, message_id=2, language_code="en")
        )
        sent = await standin.wait_for_sent(2)
        assert sent[1].text == replies.render_listening("en", 31, 320.0, True)
        assert "31 recording(s) are ahead" in sent[1].text and "about 6 min" in sent[1].text
    finally:
        await engine.dispose()
        await broker.purge_all()
        await drop_database(url)
