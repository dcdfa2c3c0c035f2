"""Feedback buttons under an answer, through the stand-in, the real store process and PostgreSQL.

One row per request, the last answer wins; a double tap changes nothing; «что было на самом деле?» offers
the model's own reasons. A row keeps what the answer showed, the age band and the context answers as they
were. ``feedback-report`` reads the rows back and recomputes each answer from the sound alone, with the age,
and with the context.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.common.evidence import load_evidence_config
from services.common.settings import DatabaseSettings
from services.gateway import replies
from services.gateway.keyboards import CHOSEN_MARK
from services.store import repository
from services.store.db import make_engine, make_session_factory
from services.store.feedback_report import build_report, render_report
from services.store.repository import RatedAnswer
from tests.common.test_evidence import CONFIG as EVIDENCE_CONFIG
from tests.services.harness import DatabaseProbe, drop_database, migrate_database
from tests.services.messages import cry_result

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


def test_the_report_recomputes_each_answer_from_the_sound_the_age_and_the_context() -> None:
    # The two-reason config of tests/common/test_evidence.py: prior 0.75 / 0.25; band "young" 0.85 / 0.15,
    # "old" 0.65 / 0.35; awake over_2h doubles tired, since_feed over_3h triples hungry. Scores ∝ audio × the
    # age ratios (young 1.133 / 0.6, old 0.867 / 1.4) × the context ratios.
    rated = [
        # alone: 0.6 > 0.4 hungry ✗; old: 0.52 < 0.56 tired ✓; + awake: tired ✓.
        RatedAnswer(
            "tired", "ok", "right", "tired", {"hungry": 0.6, "tired": 0.4}, "old", {"awake": "over_2h"}
        ),
        # alone and (no age) with the age: hungry ✗; with awake over_2h 0.55 < 0.9: tired ✓.
        RatedAnswer(
            "tired", "ok", "wrong", "tired", {"hungry": 0.55, "tired": 0.45}, None, {"awake": "over_2h"}
        ),
        # hungry every way ✓.
        RatedAnswer("hungry", "ok", "right", "hungry", {"hungry": 0.7, "tired": 0.3}, "young", {}),
        # alone tired ✗; young: 0.34 < 0.42 ✗; + over_3h: 1.02 > 0.42 hungry ✓.
        RatedAnswer(
            "hungry",
            "not_sure",
            "right",
            "hungry",
            {"hungry": 0.3, "tired": 0.7},
            "young",
            {"since_feed": "over_3h"},
        ),
        RatedAnswer("hungry", "ok", "wrong", None, {"hungry": 0.9, "tired": 0.1}),  # real reason unknown
    ]
    report = build_report(rated, EVIDENCE_CONFIG)

    assert [(row.label, row.right, row.rated) for row in report.by_evidence] == [
        ("audio alone", 1, 4),
        ("audio + age", 2, 4),
        ("audio + age + context", 4, 4),
    ]
    # Wilson, z = 1.96, by hand: 1/4 -> 0.3725 ± 0.3269; 2/4 -> 0.5 ± 0.3500; 4/4 -> 0.7551 ± 0.2449.
    assert [tuple(round(bound, 3) for bound in row.interval()) for row in report.by_evidence] == [
        (0.046, 0.699),
        (0.150, 0.850),
        (0.510, 1.0),
    ]
    text = render_report(report)
    assert "  audio alone                 1      4     25.0%  [4.6%, 69.9%]" in text
    assert "  audio + age + context       4      4    100.0%  [51.0%, 100.0%]" in text


@pytest.fixture
async def report_database(database_url: str) -> AsyncIterator[str]:
    """A database of its own, so the report sees only the rows this test seeds."""
    url = f"{database_url}_report"
    await asyncio.to_thread(migrate_database, url)
    yield url
    await drop_database(url)


async def test_feedback_report_shows_the_three_rows_on_a_seeded_database(report_database: str) -> None:
    config = load_evidence_config()
    tired = {"tired": 0.9, "hungry": 0.025, "discomfort": 0.025, "belly_pain": 0.025, "burping": 0.025}
    mixed = {"hungry": 0.45, "discomfort": 0.35, "tired": 0.1, "belly_pain": 0.05, "burping": 0.05}
    seeded = [
        # The sound says tired (0.9 against a 0.08 prior): right every way, even after over 3 h since a feed.
        (tired, "2-6m", {"since_feed": "over_3h"}, "right", "tired"),
        # The sound is the training prior itself (hungry 0.78): only fed under 1 h ago and just fed make it
        # burping (0.78 × 0.4 × 0.3 = 0.094 against 0.025 × 2 × 3 = 0.150).
        (config.age_prior.overall(), None, {"since_feed": "under_1h", "just_fed": "yes"}, "wrong", "burping"),
        # Hungry 0.45 / discomfort 0.35 by the sound; over 2 years discomfort's share is 2.3× the corpus-wide.
        (mixed, "over-2y", {}, "wrong", "discomfort"),
        (tired, None, {}, "wrong", None),  # the real reason unknown: not counted
    ]
    engine = make_engine(DatabaseSettings(database_url=report_database))
    async with make_session_factory(engine)() as session:
        for audio, age_band, context, verdict, reported in seeded:
            result = cry_result()
            await repository.store_cry_result(session, result.model_copy(update={"probabilities": audio}))
            snapshot = repository.AnswerSnapshot("hungry", age_band, context)
            await repository.record_feedback(
                session, result.request_id, result.chat_id, verdict, reported, snapshot
            )
    await engine.dispose()

    report = await asyncio.to_thread(store_command, "feedback-report", EARSHOT_DATABASE_URL=report_database)

    assert "  audio alone                 1      3     33.3%  [6.1%, 79.2%]" in report
    assert "  audio + age                 2      3     66.7%  [20.8%, 93.9%]" in report
    assert "  audio + age + context       3      3    100.0%  [43.9%, 100.0%]" in report


async def test_a_feedback_row_keeps_what_the_answer_showed_and_the_evidence_beside_the_sound(
    gateway_with_store, broker, database, sessions
) -> None:
    standin = gateway_with_store.standin
    chat = new_chat()
    async with sessions() as session:
        await repository.set_age_band(session, chat, "0-4w")
    answer, request_id = await answered_voice_note(standin, broker, chat, 41)
    buttons = replies.CONTEXT_BUTTONS["ru"]
    for question, choice in (("since_feed", "under_1h"), ("just_fed", "yes")):
        taps = len(standin.callback_answers)
        await standin.tap(answer, answer.button(buttons[question][choice])["callback_data"])
        await standin.wait_for(lambda taps=taps: len(standin.callback_answers) > taps)
    # 0–4 weeks, fed under 1 h ago and just fed: burping (0.39) now leads hunger (0.20) and tiredness (0.35).
    assert standin.current_text(chat, answer.message_id).startswith("Скорее всего: нужно срыгнуть (39%).")

    await standin.tap(answer, answer.button(replies.FEEDBACK_BUTTONS["ru"]["right"])["callback_data"])
    await standin.wait_for(lambda: len(standin.callback_answers) >= 3)
    # A tap after the verdict changes the answer, not the snapshot of what the parent rated.
    await standin.tap(answer, answer.button(buttons["awake"]["over_2h"])["callback_data"])
    await standin.wait_for(lambda: len(standin.callback_answers) >= 4)

    assert await database.rows(
        "SELECT verdict, reported_label, shown_label, age_band, context FROM feedback WHERE request_id = :r",
        r=request_id,
    ) == [
        {
            "verdict": "right",
            "reported_label": "burping",
            "shown_label": "burping",
            "age_band": "0-4w",
            "context": {"since_feed": "under_1h", "just_fed": "yes"},
        }
    ]
    marked = [m for m in standin.sent if m.message_id == answer.message_id][-1]
    assert marked.button(CHOSEN_MARK + buttons["awake"]["over_2h"])
    assert marked.button(CHOSEN_MARK + buttons["just_fed"]["yes"])
