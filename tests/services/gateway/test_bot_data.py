"""Opt-in audio donation, its purge, /my_data and /delete_my_data, through the stand-in, the real store
process and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.contracts import utc_now
from services.gateway import replies
from services.gateway.keyboards import SettingsCallback
from services.store.donations import purge_expired_donations
from services.store.settings import DonationSettings
from tests.services.harness import DatabaseProbe, eventually

from .bot_helpers import (
    SETTLE_S,
    VOICE,
    answered_voice_note,
    listening_message,
    new_chat,
    store_command,
    wait_for_jobs,
)

# Every table that holds something about a chat, and how to find the chat's rows in it.
CHAT_TABLES = {
    "requests": "chat_id = :chat",
    "predictions": "request_id IN (SELECT request_id FROM requests WHERE chat_id = :chat) "
    "OR request_id LIKE :prefix",
    "feedback": "chat_id = :chat",
    "context_answers": "chat_id = :chat",
    "donations": "chat_id = :chat",
    "errors": "key LIKE :prefix",
    "chat_settings": "chat_id = :chat",
    "chat_notices": "chat_id = :chat",
}


async def chat_rows(database: DatabaseProbe, chat: int) -> dict[str, int]:
    return {
        table: await database.count(table, where, chat=chat, prefix=f"tg:{chat}:%")
        for table, where in CHAT_TABLES.items()
    }


async def turn_donation(standin, chat: int, on: bool, language: str = "ru") -> None:
    """/settings, then the button: what a parent does."""
    before = len(standin.sent)
    await standin.deliver(
        standin.text_message("/settings", chat_id=chat, message_id=900 + on, language_code=language)
    )
    [*_, settings] = await standin.wait_for_sent(before + 1)
    await standin.tap(settings, SettingsCallback(donate=on).pack(), language_code=language)
    await standin.wait_for_sent(before + 3)  # the settings message edited, and the confirmation


async def set_age(standin, chat: int, band: str) -> None:
    """/settings, then the age band's button; the settings message is edited in place."""
    before = len(standin.sent)
    await standin.deliver(standin.text_message("/settings", chat_id=chat, message_id=950))
    [*_, settings] = await standin.wait_for_sent(before + 1)
    await standin.tap(settings, settings.button(replies.AGE_BAND_NAMES["ru"][band])["callback_data"])
    await standin.wait_for_sent(before + 2)


async def test_settings_explain_donation_which_is_off_by_default(start_gateway, database) -> None:
    gateway = await start_gateway(donation_retention_days=45)
    standin = gateway.standin
    chat = new_chat()

    await standin.deliver(standin.text_message("/settings", chat_id=chat, message_id=1, language_code="en"))
    [settings] = await standin.wait_for_sent(1)

    assert settings.text == replies.render_settings("en", False, 45)
    assert "45 days" in settings.text and "Why:" in settings.text
    assert settings.button(replies.SETTINGS_WORDS["en"]["turn_on"])
    await standin.deliver(standin.media_message("voice", VOICE, chat_id=chat, message_id=2))
    await standin.wait_for_sent(2)
    await asyncio.sleep(SETTLE_S)
    assert await database.count("donations", "chat_id = :chat", chat=chat) == 0


async def test_donated_audio_is_kept_only_after_opt_in_until_the_purge(
    start_gateway, broker, database, sessions: async_sessionmaker[AsyncSession]
) -> None:
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()

    await turn_donation(standin, chat, on=True)
    assert standin.sent[-1].text == replies.SETTINGS_WORDS["ru"]["turned_on"]
    assert standin.sent[-2].text == replies.render_settings("ru", True, 90)  # edited in place
    await standin.deliver(standin.media_message("voice", VOICE, chat_id=chat, message_id=3))
    [job] = await wait_for_jobs(broker, 1)
    [donation] = await database.rows("SELECT request_id, audio FROM donations WHERE chat_id = :c", c=chat)
    assert donation == {"request_id": job.request_id, "audio": VOICE}

    settings = DonationSettings(donation_retention_days=90)
    now = utc_now()
    await purge_expired_donations(sessions, settings, clock=lambda: now + timedelta(days=89))
    assert await database.count("donations", "chat_id = :chat", chat=chat) == 1
    assert await purge_expired_donations(sessions, settings, clock=lambda: now + timedelta(days=91)) >= 1
    assert await database.count("donations", "chat_id = :chat", chat=chat) == 0
    assert await database.count("requests", "chat_id = :chat", chat=chat) == 1  # only the audio goes


def test_the_purge_command_runs_against_the_database(database_url: str) -> None:
    output = store_command(
        "purge-donations", EARSHOT_DATABASE_URL=database_url, EARSHOT_DONATION_RETENTION_DAYS="30"
    )
    assert re.fullmatch(r"Deleted \d+ donated recording\(s\) older than 30 days\.\n", output)


async def test_turning_donation_off_deletes_what_was_donated(start_gateway, broker, database) -> None:
    gateway = await start_gateway()
    standin = gateway.standin
    chat = new_chat()
    await turn_donation(standin, chat, on=True)
    await standin.deliver(
        standin.media_message("voice", VOICE, chat_id=chat, message_id=4, language_code="en")
    )
    await wait_for_jobs(broker, 1)

    await turn_donation(standin, chat, on=False, language="en")

    assert standin.sent[-1].text == replies.SETTINGS_WORDS["en"]["turned_off"].format(deleted=1)
    assert await database.count("donations", "chat_id = :chat", chat=chat) == 0


async def test_my_data_and_delete_my_data_cover_every_row_and_the_bot_still_works(
    gateway_with_store, broker, database
) -> None:
    gateway = gateway_with_store
    standin = gateway.standin
    chat = new_chat()
    await turn_donation(standin, chat, on=True)
    # One answered and rated recording, and one the gateway refused (an errors row, no prediction).
    answer, _ = await answered_voice_note(standin, broker, chat, 5)
    await standin.tap(answer, answer.button(replies.FEEDBACK_BUTTONS["ru"]["right"])["callback_data"])
    await standin.wait_for(lambda: len(standin.callback_answers) >= 2)
    nappy = answer.button(replies.CONTEXT_BUTTONS["ru"]["nappy"]["checked"])["callback_data"]
    await standin.tap(answer, nappy)
    await standin.wait_for(lambda: len(standin.callback_answers) >= 3)
    await set_age(standin, chat, "2-6m")
    await standin.deliver(standin.media_message("voice", b"", chat_id=chat, message_id=6))
    await eventually(
        lambda: _count_is(database, "errors", "key = :k", 1, k=f"tg:{chat}:6"), 30, "the errors row"
    )
    # The bot answered the refusal itself; the store's failure reply for it is dropped, not sent again.
    await asyncio.sleep(2 * SETTLE_S)
    refused = [m for m in standin.sent if m.message_id == listening_message(standin, chat, 6).message_id]
    assert [m.text for m in refused][1:] == [
        replies.render_rejection("empty", "ru", gateway.settings.voice_limits)
    ]
    held = await chat_rows(database, chat)
    assert held == {
        "requests": 2,
        "predictions": 1,
        "feedback": 1,
        "context_answers": 1,
        "donations": 1,
        "errors": 1,
        "chat_settings": 1,
        "chat_notices": 1,  # the age invitation, given once
    }

    before = len(standin.sent)
    await standin.deliver(standin.text_message("/my_data", chat_id=chat, message_id=7))
    [*_, my_data] = await standin.wait_for_sent(before + 1)
    for line in ("requests", "predictions", "feedback", "errors"):
        assert replies.MY_DATA["ru"][line].format(n=1 if line != "requests" else 2) in my_data.text
    assert replies.MY_DATA["ru"]["donations"].format(n=1, state="включена", days=90) in my_data.text
    assert replies.MY_DATA["ru"]["age"].format(age="2–6 месяцев") in my_data.text
    assert replies.MY_DATA["ru"]["context"].format(n=1) in my_data.text

    await standin.deliver(standin.text_message("/delete_my_data", chat_id=chat, message_id=8))
    [*_, deleted] = await standin.wait_for_sent(before + 2)
    assert deleted.text == replies.DELETED["ru"].format(
        requests=2, predictions=1, feedback=1, donations=1, errors=1, context_answers=1, age="удалён"
    )
    assert set((await chat_rows(database, chat)).values()) == {0}

    # Nothing is left, and the next recording is handled like a first one (and not donated: opt-in is gone).
    await standin.deliver(standin.media_message("voice", VOICE, chat_id=chat, message_id=9))
    [again] = await wait_for_jobs(broker, 1)
    assert again.request_id == f"tg:{chat}:9"
    await standin.deliver(standin.text_message("/my_data", chat_id=chat, message_id=10))
    [*_, after] = await standin.wait_for_sent(before + 4)
    assert replies.MY_DATA["ru"]["requests"].format(n=1) in after.text
    assert replies.MY_DATA["ru"]["donations"].format(n=0, state="выключена", days=90) in after.text
    assert replies.MY_DATA["ru"]["age"].format(age="не указан") in after.text


async def test_a_chat_with_only_an_age_is_told_so_by_my_data_and_delete_my_data(
    start_gateway, database
) -> None:
    standin = (await start_gateway()).standin
    chat = new_chat()
    await set_age(standin, chat, "over-2y")
    before = len(standin.sent)

    await standin.deliver(standin.text_message("/my_data", chat_id=chat, message_id=1))
    [*_, my_data] = await standin.wait_for_sent(before + 1)
    assert replies.MY_DATA["ru"]["age"].format(age="старше 2 лет") in my_data.text
    await standin.deliver(standin.text_message("/delete_my_data", chat_id=chat, message_id=2))
    [*_, deleted] = await standin.wait_for_sent(before + 2)
    assert replies.AGE_DELETED["ru"][True] in deleted.text
    assert await database.count("chat_settings", "chat_id = :c", c=chat) == 0
    await standin.deliver(standin.text_message("/my_data", chat_id=chat, message_id=3))
    [*_, nothing] = await standin.wait_for_sent(before + 3)
    assert nothing.text == replies.MY_DATA["ru"]["none"]


async def _count_is(database: DatabaseProbe, table: str, where: str, expected: int, **params) -> bool:
    return await database.count(table, where, **params) == expected
