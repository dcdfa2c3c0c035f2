"""The bot over real HTTP (aiogram → local Bot API stand-in) against the real broker and database."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.common.contracts import CryResult, JobFailed, Reply
from services.common.evidence import load_evidence_config
from services.common.topology import (
    CRY_CLASSIFY_QUEUE,
    GATEWAY_REPLIES_QUEUE,
    REPLIES_EXCHANGE,
    REPLY_KEY,
    STORE_RESULTS_QUEUE,
    dead_letter_queue,
)
from services.gateway import replies
from services.gateway.http import TELEGRAM_SECRET_HEADER
from tests.audio_files import encode, tone
from tests.services.harness import eventually

from .bot_helpers import FIRST_ANSWER, SETTLE_S, VOICE, answers, new_chat, result_for, wait_for_jobs
from .conftest import TEST_MAX_UPLOAD_BYTES


async def test_voice_note_becomes_one_cry_job_in_the_users_language(start_gateway, broker) -> None:
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()

    await standin.deliver(
        standin.media_message("voice", VOICE, chat_id=chat, message_id=7, language_code="en")
    )
    sent = await standin.wait_for_sent(1)

    assert sent[0].text == replies.ACCEPTED["en"] and sent[0].reply_to_message_id == 7
    assert (chat, "typing") in standin.chat_actions
    jobs = await wait_for_jobs(broker, 1)
    assert len(jobs) == 1
    assert (jobs[0].request_id, jobs[0].chat_id, jobs[0].message_id) == (f"tg:{chat}:7", chat, 7)
    assert jobs[0].language == "en" and jobs[0].audio.inline == VOICE


async def test_update_delivered_twice_makes_one_job_and_one_answer(start_gateway, broker) -> None:
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()
    message = standin.media_message("voice", VOICE, chat_id=chat, message_id=8)

    await standin.deliver(message)
    await standin.deliver(message)
    await standin.wait_for_sent(1)
    await standin.wait_until_polled_empty()
    await asyncio.sleep(SETTLE_S)

    assert len(await broker.drain(CRY_CLASSIFY_QUEUE)) == 1
    assert [m.text for m in standin.sent] == [replies.ACCEPTED["ru"]]


@pytest.mark.parametrize(
    ("kind", "mime_type"),
    [("audio", "audio/ogg"), ("document", "audio/ogg"), ("video_note", None)],
)
async def test_audio_document_and_video_note_are_accepted(start_gateway, broker, kind, mime_type) -> None:
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()
    options = {"mime_type": mime_type} if mime_type else {}

    await standin.deliver(standin.media_message(kind, VOICE, chat_id=chat, message_id=9, **options))
    sent = await standin.wait_for_sent(1)

    assert sent[0].text == replies.ACCEPTED["ru"]
    assert len(await wait_for_jobs(broker, 1)) == 1


@pytest.mark.parametrize(
    ("case", "expected_code", "downloaded"),
    [
        ("oversized", "too_large", False),
        ("overlong", "too_long", False),
        ("pdf", "not_audio", False),
        ("empty", "empty", True),
        ("corrupt", "corrupt", True),
        ("not_audio", "not_audio", True),
        ("overlong_undeclared", "too_long", True),
    ],
)
async def test_bad_input_gets_a_clear_answer_no_job_and_an_errors_record(
    start_gateway, broker, case, expected_code, downloaded
) -> None:
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()
    kind, data, options = {
        "oversized": ("voice", VOICE, {"declared_size": TEST_MAX_UPLOAD_BYTES + 1}),
        "overlong": ("voice", VOICE, {"duration_s": 31}),
        "pdf": ("document", b"%PDF-1.4 not audio", {"mime_type": "application/pdf"}),
        "empty": ("voice", b"", {}),
        "corrupt": ("voice", b"OggS" + bytes(200), {}),
        "not_audio": (
            "document",
            b"just some text, not audio at all",
            {"mime_type": "application/octet-stream"},
        ),
        "overlong_undeclared": ("voice", encode(tone(32.0, 4000), 4000, "wav"), {"duration_s": 3}),
    }[case]

    await standin.deliver(
        standin.media_message(kind, data, chat_id=chat, message_id=10, language_code="en", **options)
    )
    # Refused unread: one answer. Refused after the download: "Listening…", edited into the answer.
    sent = await standin.wait_for_sent(2 if downloaded else 1)
    await asyncio.sleep(SETTLE_S)

    assert len(standin.sent) == (2 if downloaded else 1)
    if downloaded:
        assert (sent[0].text, sent[1].method) == (replies.ACCEPTED["en"], "editMessageText")
        assert sent[1].message_id == sent[0].message_id
    assert sent[-1].text == replies.render_rejection(expected_code, "en", gateway.settings.voice_limits)
    assert replies.DISCLAIMER["en"] in sent[-1].text
    assert bool(standin.downloads) == downloaded
    assert await broker.drain(CRY_CLASSIFY_QUEUE) == []
    failures = [JobFailed.model_validate_json(m.body) for m in await broker.drain(STORE_RESULTS_QUEUE)]
    assert [(f.job_kind, f.key, f.error_code) for f in failures] == [
        ("cry.classify", f"tg:{chat}:10", expected_code)
    ]


@pytest.mark.parametrize("language_code", ["ru", "en-GB"])
async def test_commands_answer_in_the_users_language(start_gateway, language_code) -> None:
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()
    language = replies.language_for(language_code)

    for message_id, command in enumerate(["/start", "/help", "/privacy"], start=1):
        await standin.deliver(
            standin.text_message(command, chat_id=chat, message_id=message_id, language_code=language_code)
        )
        await standin.wait_for_sent(message_id)

    start, help_, privacy = (m.text for m in standin.sent)
    settings = gateway.settings
    assert start == replies.render_start(language)
    assert help_ == replies.render_help(
        language, settings.voice_limits, settings.rate_limit_recordings, settings.rate_limit_window_s
    )
    assert privacy == replies.render_privacy(language, settings.donation_retention_days)
    # The command menu lists the commands in both languages.
    menus = {code: [c["command"] for c in commands] for code, commands in standin.commands.items()}
    assert menus == {"": list(replies.COMMANDS["ru"]), "en": list(replies.COMMANDS["en"])}


async def claimed_request_result(gateway, broker, chat: int, message_id: int) -> CryResult:
    """Send a voice note through the bot (which claims it) and make the result a worker would publish."""
    standin = gateway.standin
    await standin.deliver(
        standin.media_message("voice", VOICE, chat_id=chat, message_id=message_id, language_code="en")
    )
    await standin.wait_for_sent(1)
    [job] = await wait_for_jobs(broker, 1)
    return result_for(job, {"hungry": 0.7, "tired": 0.2, "burping": 0.1})


async def test_reply_delivered_twice_reaches_the_parent_once(start_gateway, broker) -> None:
    gateway = await start_gateway()
    chat = new_chat()
    result = await claimed_request_result(gateway, broker, chat, 11)

    for _ in range(2):
        await broker.publish(Reply(result=result), REPLIES_EXCHANGE, REPLY_KEY, message_id=result.request_id)
    await gateway.standin.wait_for_sent(2)
    await asyncio.sleep(SETTLE_S)

    listening, *_ = gateway.standin.sent
    sent = answers(gateway.standin)
    assert len(sent) == 1
    assert sent[0].text == replies.render_result(result, FIRST_ANSWER)
    # "Listening…" became the answer, in place, with the feedback and context buttons under it.
    assert (sent[0].method, sent[0].message_id) == ("editMessageText", listening.message_id)
    assert sent[0].chat_id == chat and len(sent[0].keyboard) == 2 + len(load_evidence_config().rules)


async def test_reply_is_retried_while_telegram_fails_then_sent_once(start_gateway, broker) -> None:
    gateway = await start_gateway()
    result = await claimed_request_result(gateway, broker, new_chat(), 13)
    gateway.standin.failing_sends = 2  # the sender backs off 1 s, then 2 s

    await broker.publish(Reply(result=result), REPLIES_EXCHANGE, REPLY_KEY, message_id=result.request_id)
    await gateway.standin.wait_for_sent(2, timeout=20)
    await asyncio.sleep(SETTLE_S)

    assert [m.text for m in answers(gateway.standin)] == [replies.render_result(result, FIRST_ANSWER)]
    assert await broker.drain(GATEWAY_REPLIES_QUEUE) == []
    assert await broker.drain(dead_letter_queue(GATEWAY_REPLIES_QUEUE)) == []


async def test_reply_to_a_user_who_blocked_the_bot_is_dropped_not_retried(start_gateway, broker) -> None:
    gateway = await start_gateway()
    chat = new_chat()
    result = await claimed_request_result(gateway, broker, chat, 14)
    gateway.standin.blocked_chats.add(chat)

    await broker.publish(Reply(result=result), REPLIES_EXCHANGE, REPLY_KEY, message_id=result.request_id)

    async def settled() -> bool:
        ready, _ = await broker.ready_and_consumers(GATEWAY_REPLIES_QUEUE)
        return ready == 0 and broker.unacked(GATEWAY_REPLIES_QUEUE) == 0

    await eventually(settled, 20, "the refused reply acknowledged")
    await asyncio.sleep(SETTLE_S)
    assert answers(gateway.standin) == []
    assert await settled()
    assert await broker.drain(dead_letter_queue(GATEWAY_REPLIES_QUEUE)) == []


async def test_webhook_believes_only_the_secret_token_and_dedupes_updates(start_gateway, broker) -> None:
    gateway = await start_gateway(telegram_mode="webhook", telegram_webhook_secret="s3cret-token")
    standin = gateway.standin
    chat = new_chat()
    update = {"update_id": 900, "message": standin.media_message("voice", VOICE, chat_id=chat, message_id=12)}
    webhook_url = f"{gateway.url}{gateway.settings.telegram_webhook_path}"

    async with httpx.AsyncClient(timeout=30) as client:
        missing = await client.post(webhook_url, json=update)
        wrong = await client.post(webhook_url, json=update, headers={TELEGRAM_SECRET_HEADER: "guess"})
        assert (missing.status_code, wrong.status_code) == (401, 401)
        assert await broker.drain(CRY_CLASSIFY_QUEUE) == []

        for _ in range(2):
            right = await client.post(
                webhook_url, json=update, headers={TELEGRAM_SECRET_HEADER: "s3cret-token"}
            )
            assert right.status_code == 200

    assert len(await broker.drain(CRY_CLASSIFY_QUEUE)) == 1
    assert [m.text for m in standin.sent] == [replies.ACCEPTED["ru"]]
