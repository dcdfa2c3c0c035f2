"""The bot's buttons: built from the evidence config's ids, the choices marked, every tap within 64 bytes."""

from __future__ import annotations

import pytest

from services.common.evidence import load_evidence_config
from services.gateway import replies
from services.gateway.keyboards import (
    CHOSEN_MARK,
    ContextCallback,
    answer_keyboard,
    reasons_keyboard,
    settings_keyboard,
)

# Telegram's limit on a button's callback data.
CALLBACK_DATA_LIMIT = 64
# The largest message id Telegram hands out (a signed 64-bit chat-local counter, in practice far smaller).
LARGEST_MESSAGE_ID = 2**63 - 1


def buttons(markup) -> list:
    return [button for row in markup.inline_keyboard for button in row]


@pytest.mark.parametrize("language", ["ru", "en"])
def test_every_button_fits_telegrams_callback_limit(language) -> None:
    config = load_evidence_config()
    markups = [
        answer_keyboard(LARGEST_MESSAGE_ID, language, "right", None, {}),
        reasons_keyboard(LARGEST_MESSAGE_ID, list(config.age_prior.labels), language),
        settings_keyboard(True, language, "over-2y"),
    ]
    for markup in markups:
        for button in buttons(markup):
            assert len(button.callback_data.encode()) <= CALLBACK_DATA_LIMIT, button.callback_data


def test_the_answer_has_one_row_per_context_question_with_the_given_answers_marked() -> None:
    config = load_evidence_config()
    markup = answer_keyboard(7, "ru", context={"nappy": "checked", "awake": "was_sleeping"})
    context_rows = markup.inline_keyboard[2:]
    assert [len(row) for row in context_rows] == [len(rule.answers) for rule in config.rules.values()]
    taps = [ContextCallback.unpack(button.callback_data) for row in context_rows for button in row]
    assert [(tap.question, tap.answer) for tap in taps] == [
        (question, answer) for question, rule in config.rules.items() for answer in rule.answers
    ]
    assert {tap.message_id for tap in taps} == {7}
    marked = [button.text for button in buttons(markup) if button.text.startswith(CHOSEN_MARK)]
    assert marked == [
        CHOSEN_MARK + replies.CONTEXT_BUTTONS["ru"]["nappy"]["checked"],
        CHOSEN_MARK + replies.CONTEXT_BUTTONS["ru"]["awake"]["was_sleeping"],
    ]


def test_an_answer_the_evidence_does_not_apply_to_has_only_the_feedback_buttons() -> None:
    assert len(answer_keyboard(7, "en", context=None).inline_keyboard) == 2


def test_settings_offer_every_age_band_and_no_age_with_the_current_one_marked() -> None:
    names = replies.AGE_BAND_NAMES["en"]
    texts = [button.text for button in buttons(settings_keyboard(False, "en", "2-6m"))]
    assert texts[1:] == [
        names["0-4w"],
        names["4-8w"],
        CHOSEN_MARK + names["2-6m"],
        names["7m-2y"],
        names["over-2y"],
        replies.AGE_SETTINGS["en"]["remove"],
    ]
