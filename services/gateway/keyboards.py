"""The bot's inline buttons and what their taps carry (aiogram ``CallbackData``, at most 64 bytes).

A feedback or context tap carries the parent's voice-note message id, never a request id: the handler joins
it with the chat the tap came from, so nobody can rate (or read, or change) another chat's answer by forging
callback data. The context buttons are built from the questions and answers of
``services/common/reason_evidence.toml``; their words live in ``replies``.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.common.contracts import Language
from services.common.evidence import load_evidence_config
from services.gateway import replies

CHOSEN_MARK = "✓ "
# The age button that deletes the age band.
NO_AGE = "none"


class FeedbackCallback(CallbackData, prefix="fb"):
    """«угадал» (``right``), «не угадал» (``wrong``), «что было?» (``ask``) or a reason (``label``)."""

    message_id: int
    choice: str
    label: str = ""


class ContextCallback(CallbackData, prefix="cx"):
    """One context answer under an answer: a question id and an answer id of the evidence config."""

    message_id: int
    question: str
    answer: str


class SettingsCallback(CallbackData, prefix="settings"):
    donate: bool


class AgeCallback(CallbackData, prefix="age"):
    """An age band id of the evidence config, or ``NO_AGE``."""

    band: str


def answer_keyboard(
    message_id: int,
    language: Language,
    chosen: str | None = None,
    reported: str | None = None,
    context: Mapping[str, str] | None = None,
) -> InlineKeyboardMarkup:
    """The buttons under an answer: feedback, then one row per context question.

    The parent's last feedback choice and each context answer they gave are marked, so a tap visibly took.
    ``context`` None leaves the context rows out (an answer the evidence does not apply to).
    """
    words = replies.FEEDBACK_BUTTONS[language]
    builder = InlineKeyboardBuilder()
    for choice in ("right", "wrong"):
        mark = CHOSEN_MARK if chosen == choice and reported is None else ""
        builder.button(
            text=mark + words[choice], callback_data=FeedbackCallback(message_id=message_id, choice=choice)
        )
    ask = words["ask"] if reported is None else f"{CHOSEN_MARK}{replies.label_name(reported, language)}"
    builder.button(text=ask, callback_data=FeedbackCallback(message_id=message_id, choice="ask"))
    row_sizes = [2, 1]
    rules = load_evidence_config().rules if context is not None else {}
    for question, rule in rules.items():
        names = replies.CONTEXT_BUTTONS[language].get(question, {})
        for answer in rule.answers:
            mark = CHOSEN_MARK if context and context.get(question) == answer else ""
            builder.button(
                text=mark + names.get(answer, answer),
                callback_data=ContextCallback(message_id=message_id, question=question, answer=answer),
            )
        row_sizes.append(len(rule.answers))
    builder.adjust(*row_sizes)
    return builder.as_markup()


def reasons_keyboard(message_id: int, labels: list[str], language: Language) -> InlineKeyboardMarkup:
    """One button per reason the model knows, for «что было на самом деле?»."""
    builder = InlineKeyboardBuilder()
    for label in labels:
        builder.button(
            text=replies.label_name(label, language),
            callback_data=FeedbackCallback(message_id=message_id, choice="label", label=label),
        )
    builder.adjust(1)
    return builder.as_markup()


def settings_keyboard(donates: bool, language: Language, age_band: str | None = None) -> InlineKeyboardMarkup:
    """Donation on/off, then the baby's age bands and «не указывать», the current choice marked."""
    words = replies.SETTINGS_WORDS[language]
    builder = InlineKeyboardBuilder()
    builder.button(
        text=words["turn_off" if donates else "turn_on"], callback_data=SettingsCallback(donate=not donates)
    )
    bands = list(load_evidence_config().age_bands)
    for band in [*bands, NO_AGE]:
        name = (
            replies.AGE_SETTINGS[language]["remove"] if band == NO_AGE else replies.age_name(band, language)
        )
        chosen = band == (age_band or NO_AGE)
        builder.button(text=(CHOSEN_MARK if chosen else "") + name, callback_data=AgeCallback(band=band))
    builder.adjust(1, 3)
    return builder.as_markup()
