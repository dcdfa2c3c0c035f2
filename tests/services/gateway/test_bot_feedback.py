"""Feedback buttons under an answer, through the stand-in, the real store process and PostgreSQL.

One row per request, the last answer wins; a double tap changes nothing; «что было на самом деле?» offers
the model's own reasons. ``feedback-report`` reads the rows back.
"""

from __future__ import annotations

from services.gateway import replies
from services.gateway.keyboards import CHOSEN_MARK
from services.store.feedback_report import build_report, render_report
from services.store.repository import RatedAnswer
from tests.services.harness import DatabaseProbe

from .bot_helpers import PROBABILITIES, answered_voice_note, new_chat, store_command


def latest_keyboard(standin, chat: int, message_id: int):
    return [m for m in standin.sent if m.chat_id == chat and m.message_id == message_id][-1]


async def feedback_rows(database: DatabaseProbe, request_id: str) -> list[dict]:
    return await database.rows(
        "SELECT verdict, reported_label FROM feedback WHERE request_id = :r", r=request_id
    )


async def test_feedback_is_stored_once_per_request_and_the_last_answer_wins(
    gateway_with_store, broker, database
) -> None:
    gateway = gateway_with_store
    standin = gateway.standin
    chat = new_chat()
    answer, request_id = await answered_voice_note(standin, broker, chat, 21)
    right = answer.button(replies.FEEDBACK_BUTTONS["ru"]["right"])["callback_data"]

    for taps in (1, 2):  # a double tap
        await standin.tap(answer, right)
        await standin.wait_for(lambda taps=taps: len(standin.callback_answers) >= taps)
    assert await feedback_rows(database, request_id) == [{"verdict": "right", "reported_label": "hungry"}]
    marked = latest_keyboard(standin, chat, answer.message_id)
    assert marked.button(CHOSEN_MARK + replies.FEEDBACK_BUTTONS["ru"]["right"])
    assert [a.get("text") for a in standin.callback_answers] == [replies.FEEDBACK_THANKS["ru"]["saved"]] * 2

    await standin.tap(answer, answer.button(replies.FEEDBACK_BUTTONS["ru"]["wrong"])["callback_data"])
    await standin.wait_for(lambda: len(standin.callback_answers) >= 3)
    assert await feedback_rows(database, request_id) == [{"verdict": "wrong", "reported_label": None}]

    await standin.tap(answer, answer.button(replies.FEEDBACK_BUTTONS["ru"]["ask"])["callback_data"])
    await standin.wait_for(lambda: len(standin.callback_answers) >= 4)
    reasons = latest_keyboard(standin, chat, answer.message_id)
    offered = [row[0]["text"] for row in reasons.keyboard]
    assert offered == [replies.label_name(label, "ru") for label in PROBABILITIES]  # the model's, ranked
    assert replies.LABEL_NAMES["ru"]["scared"] not in offered
    await standin.tap(reasons, reasons.button(replies.label_name("tired", "ru"))["callback_data"])
    await standin.wait_for(lambda: len(standin.callback_answers) >= 5)
    assert await feedback_rows(database, request_id) == [{"verdict": "wrong", "reported_label": "tired"}]
    assert latest_keyboard(standin, chat, answer.message_id).button(CHOSEN_MARK + "усталость")

    report = store_command("feedback-report")
    assert "Live accuracy from parents' feedback:" in report
    assert "Confusion (rows: predicted, columns: reported):" in report and "tired" in report


async def test_a_tap_cannot_rate_another_chats_answer(gateway_with_store, broker, database) -> None:
    gateway = gateway_with_store
    standin = gateway.standin
    chat = new_chat()
    answer, request_id = await answered_voice_note(standin, broker, chat, 21, language="en")
    stranger = type(answer)(**{**answer.__dict__, "chat_id": new_chat()})

    right = answer.button(replies.FEEDBACK_BUTTONS["en"]["right"])["callback_data"]
    await standin.tap(stranger, right, language_code="en")
    await standin.wait_for(lambda: len(standin.callback_answers) >= 1)

    assert standin.callback_answers[0]["text"] == replies.FEEDBACK_THANKS["en"]["gone"]
    assert await feedback_rows(database, request_id) == []


def test_the_report_counts_accuracy_per_class_and_the_confusion() -> None:
    rated = [
        RatedAnswer("hungry", "ok", "right", "hungry"),
        RatedAnswer("hungry", "ok", "right", "hungry"),
        RatedAnswer("hungry", "ok", "wrong", "tired"),
        RatedAnswer("hungry", "not_sure", "wrong", None),
        RatedAnswer("tired", "ok", "right", "tired"),
        RatedAnswer(None, "not_a_cry", "wrong", None),  # names no reason: not counted
    ]
    report = build_report(rated)

    assert (report.rated, report.right) == (5, 3)
    assert [(c.label, c.rated, c.right) for c in report.by_predicted] == [("hungry", 4, 2), ("tired", 1, 1)]
    assert [(c.label, c.rated, c.right) for c in report.by_reported] == [("hungry", 2, 2), ("tired", 2, 1)]
    assert report.confusion == {("hungry", "hungry"): 2, ("hungry", "tired"): 1, ("tired", "tired"): 1}
    text = render_report(report)
    assert "3/5 = 60.0%" in text and "hungry            4      2     50.0%" in text
    assert render_report(build_report([])).startswith("No rated answers yet")
