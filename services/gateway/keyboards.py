"""The bot's inline buttons and what their taps carry (aiogram ``CallbackData``, at most 64 bytes).

A feedback tap carries the parent's voice-note message id, never a request id: the handler joins it with the
chat the tap came from, so nobody can rate (or read) another chat's answer by forging callback data.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.common.contracts import Language
from services.gateway import replies

CHOSEN_MARK = "✓ "


class FeedbackCallback(CallbackData, prefix="fb"):
    """«угадал» (``right``), «не угадал» (``wrong``), «что было?» (``ask``) or a reason (``label``)."""

    message_id: int
    choice: str
    label: str = ""


class SettingsCallback(CallbackData, prefix="settings"):
    donate: bool


def answer_keyboard(
    message_id: int, language: Language, chosen: str | None = None, reported: str | None = None
) -> InlineKeyboardMarkup:
    """The buttons under an answer; the parent's last choice is marked, so a tap visibly took."""
    words = replies.FEEDBACK_BUTTONS[language]
    builder = InlineKeyboardBuilder()
    for choice in ("right", "wrong"):
        mark = CHOSEN_MARK if chosen == choice and reported is None else ""
        builder.button(
            text=mark + words[choice], callback_data=FeedbackCallback(message_id=message_id, choice=choice)
        )
    ask = words["ask"] if reported is None else f"{CHOSEN_MARK}{replies.label_name(reported, language)}"
    builder.button(text=ask, callback_data=FeedbackCallback(message_id=message_id, choice="ask"))
    builder.adjust(2, 1)
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


def settings_keyboard(donates: bool, language: Language) -> InlineKeyboardMarkup:
    words = replies.SETTINGS_WORDS[language]
    builder = InlineKeyboardBuilder()
    builder.button(
        text=words["turn_off" if donates else "turn_on"], callback_data=SettingsCallback(donate=not donates)
    )
    return builder.as_markup()
