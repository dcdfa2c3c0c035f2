"""The baby's age in /settings and the context taps under an answer, through the stand-in, the real store
process and PostgreSQL.

A tap is stored once per (request, question), the last answer wins, and the answer is edited in place,
re-rendered from the stored prediction, the chat's age band and the request's context answers. A double tap
changes nothing: no second row, and the stand-in, like Telegram, refuses the edit that would change nothing.
"""

from __future__ import annotations

from services.common.contracts import CryResult, utc_now
from services.gateway import replies
from services.gateway.keyboards import CHOSEN_MARK, ContextCallback
from services.gateway.telegram_standin import SentMessage, TelegramStandIn
from tests.services.harness import DatabaseProbe

from .bot_helpers import FIRST_ANSWER, PROBABILITIES, answered_voice_note, new_chat

BUTTONS = replies.CONTEXT_BUTTONS["ru"]


def edits_of(standin: TelegramStandIn, answer: SentMessage) -> list[SentMessage]:
    return [
        m
        for m in standin.sent
        if m.chat_id == answer.chat_id and m.message_id == answer.message_id and m.method == "editMessageText"
    ]


async def context_rows(database: DatabaseProbe, request_id: str) -> list[dict]:
    return await database.rows(
        "SELECT question, answer, chat_id FROM context_answers WHERE request_id = :r ORDER BY question",
        r=request_id,
    )


async def tap_and_wait(
    standin: TelegramStandIn, message: SentMessage, data: str, language: str = "ru"
) -> dict:
    """Tap a button and wait for the bot to answer the tap; the callback answer."""
    answered = len(standin.callback_answers)
    await standin.tap(message, data, language_code=language)
    await standin.wait_for(lambda: len(standin.callback_answers) > answered)
    return standin.callback_answers[-1]


def expected_answer(chat: int, message_id: int, told: replies.AnswerContext) -> str:
    """The answer the bot should show for the test's result (``PROBABILITIES``) with what the parent told."""
    result = CryResult(
        request_id=f"tg:{chat}:{message_id}",
        chat_id=chat,
        message_id=message_id,
        language="ru",
        status="ok",
        label="hungry",
        probabilities=PROBABILITIES,
        quality={"reason": None},
        model_version="test",
        message="",
        received_at=utc_now(),
    )
    return replies.render_result(result, told)


async def test_a_tap_edits_the_answer_in_place_and_a_double_tap_changes_nothing(
    gateway_with_store, broker, database
) -> None:
    standin = gateway_with_store.standin
    chat = new_chat()
    answer, request_id = await answered_voice_note(standin, broker, chat, 31)
    # A chat with no age gets the invitation with its first answer, and the context buttons.
    assert answer.text == expected_answer(chat, 31, FIRST_ANSWER)
    over_3h = answer.button(BUTTONS["since_feed"]["over_3h"])["callback_data"]

    saved = await tap_and_wait(standin, answer, over_3h)
    assert saved["text"] == replies.CONTEXT_THANKS["ru"]["saved"]
    [first, edited] = edits_of(standin, answer)
    assert first == answer
    told = replies.AnswerContext(context={"since_feed": "over_3h"})
    assert edited.text == expected_answer(chat, 31, told)
    assert "• по времени с последнего кормления: вероятнее голод" in edited.text
    assert edited.button(CHOSEN_MARK + BUTTONS["since_feed"]["over_3h"])
    assert edited.button(replies.FEEDBACK_BUTTONS["ru"]["right"])  # the feedback buttons stay
    assert await context_rows(database, request_id) == [
        {"question": "since_feed", "answer": "over_3h", "chat_id": chat}
    ]

    again = await tap_and_wait(standin, edited, over_3h)  # a double tap
    assert again["text"] == replies.CONTEXT_THANKS["ru"]["saved"]
    assert len(edits_of(standin, answer)) == 2  # Telegram's "message is not modified" was suppressed
    assert len(await context_rows(database, request_id)) == 1

    await tap_and_wait(standin, edited, edited.button(BUTTONS["since_feed"]["under_1h"])["callback_data"])
    await tap_and_wait(standin, edited, edited.button(BUTTONS["just_fed"]["yes"])["callback_data"])
    latest = edits_of(standin, answer)[-1]
    told = replies.AnswerContext(context={"since_feed": "under_1h", "just_fed": "yes"})
    assert latest.text == expected_answer(chat, 31, told)
    assert latest.button(CHOSEN_MARK + BUTTONS["since_feed"]["under_1h"])
    assert latest.button(CHOSEN_MARK + BUTTONS["just_fed"]["yes"])
    marked = [
        button["text"] for row in latest.keyboard for button in row if button["text"].startswith(CHOSEN_MARK)
    ]
    assert sorted(marked) == sorted(CHOSEN_MARK + BUTTONS[q][a] for q, a in told.context.items())
    assert await context_rows(database, request_id) == [
        {"question": "just_fed", "answer": "yes", "chat_id": chat},
        {"question": "since_feed", "answer": "under_1h", "chat_id": chat},
    ]

    # A second recording in the chat is not invited to give the age again.
    second, _ = await answered_voice_note(standin, broker, chat, 32)
    assert replies.WHY["ru"]["invite_age"] not in second.text


async def test_a_tap_with_another_chats_message_id_does_nothing(gateway_with_store, broker, database) -> None:
    standin = gateway_with_store.standin
    chat = new_chat()
    answer, request_id = await answered_voice_note(standin, broker, chat, 33, language="en")
    stranger = SentMessage(**{**answer.__dict__, "chat_id": new_chat()})
    forged = ContextCallback(message_id=33, question="since_feed", answer="over_3h").pack()

    gone = await tap_and_wait(standin, stranger, forged, language="en")

    assert gone["text"] == replies.CONTEXT_THANKS["en"]["gone"]
    assert await context_rows(database, request_id) == []
    assert await database.count("context_answers", "chat_id = :c", c=stranger.chat_id) == 0
    assert [m for m in standin.sent if m.chat_id == stranger.chat_id] == []
    assert edits_of(standin, answer) == [answer]


async def test_a_tap_with_an_answer_the_config_does_not_know_is_ignored(
    gateway_with_store, broker, database
) -> None:
    standin = gateway_with_store.standin
    chat = new_chat()
    answer, request_id = await answered_voice_note(standin, broker, chat, 34)
    bogus = ContextCallback(message_id=34, question="since_feed", answer="yesterday").pack()

    await tap_and_wait(standin, answer, bogus)

    assert await context_rows(database, request_id) == []
    assert edits_of(standin, answer) == [answer]


async def settings_message(standin: TelegramStandIn, chat: int, message_id: int) -> SentMessage:
    before = len(standin.sent)
    await standin.deliver(standin.text_message("/settings", chat_id=chat, message_id=message_id))
    return (await standin.wait_for_sent(before + 1))[-1]


async def test_the_age_is_set_changed_and_deleted_in_settings_and_used_by_the_first_answer(
    gateway_with_store, broker, database
) -> None:
    standin = gateway_with_store.standin
    chat = new_chat()
    names = replies.AGE_BAND_NAMES["ru"]
    settings = await settings_message(standin, chat, 1)
    assert settings.text == replies.render_settings("ru", False, 90, None)
    assert "Возраст малыша: не указан." in settings.text
    assert settings.button(CHOSEN_MARK + replies.AGE_SETTINGS["ru"]["remove"])

    saved = await tap_and_wait(standin, settings, settings.button(names["4-8w"])["callback_data"])
    assert saved["text"] == replies.AGE_SETTINGS["ru"]["saved"].format(age=names["4-8w"])
    edited = standin.sent[-1]
    assert (edited.method, edited.message_id) == ("editMessageText", settings.message_id)
    assert edited.text == replies.render_settings("ru", False, 90, "4-8w")
    assert edited.button(CHOSEN_MARK + names["4-8w"])
    await tap_and_wait(standin, edited, edited.button(names["4-8w"])["callback_data"])  # a double tap
    assert standin.sent[-1] is edited
    await tap_and_wait(standin, edited, edited.button(names["0-4w"])["callback_data"])  # changed
    assert await database.rows("SELECT age_band FROM chat_settings WHERE chat_id = :c", c=chat) == [
        {"age_band": "0-4w"}
    ]

    answer, _ = await answered_voice_note(standin, broker, chat, 2)
    assert answer.text == expected_answer(chat, 2, replies.AnswerContext(age_band="0-4w"))
    assert "• по возрасту (0–4 недели): чаще голод, реже срыгивание" in answer.text
    assert replies.WHY["ru"]["invite_age"] not in answer.text

    latest_settings = [m for m in standin.sent if m.message_id == settings.message_id][-1]
    remove = latest_settings.button(replies.AGE_SETTINGS["ru"]["remove"])["callback_data"]
    removed = await tap_and_wait(standin, latest_settings, remove)
    assert removed["text"] == replies.AGE_SETTINGS["ru"]["removed"]
    assert await database.rows("SELECT age_band FROM chat_settings WHERE chat_id = :c", c=chat) == [
        {"age_band": None}
    ]
    # A context tap re-renders with the chat's age as it is now: none.
    await tap_and_wait(standin, answer, answer.button(BUTTONS["awake"]["over_2h"])["callback_data"])
    told = replies.AnswerContext(context={"awake": "over_2h"})
    assert edits_of(standin, answer)[-1].text == expected_answer(chat, 2, told)
