"""An answer under a voice note, as stored: the model's result, the chat's age band, the parent's taps.

The bot renders an answer from this state whenever it changes (the first reply, a context tap, a feedback
tap), so the text and the buttons always show the same combination of sound, age and context, whichever
gateway replica renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from aiogram.types import InlineKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.contracts import CryResult
from services.gateway import replies
from services.gateway.keyboards import answer_keyboard
from services.store import repository
from services.store.models import CryRequest, Feedback, Prediction

# The chat_notices kind of the one-time invitation to give the baby's age.
AGE_INVITE_NOTICE = "age_invite"


@dataclass(frozen=True)
class StoredAnswer:
    result: CryResult
    told: replies.AnswerContext
    feedback: Feedback | None = None

    @property
    def message_id(self) -> int:
        return self.result.message_id

    @property
    def shown_label(self) -> str:
        """The reason the answer names first: the combined top reason."""
        return self.ranked_labels[0]

    @cached_property
    def ranked_labels(self) -> list[str]:
        """The reasons as the answer ranks them (combined once per answer, however often it is asked)."""
        return [label for label, _ in replies.ranked(replies.shown_probabilities(self.result, self.told))]

    def snapshot(self) -> repository.AnswerSnapshot:
        """What the parent sees now, for a feedback row."""
        return repository.AnswerSnapshot(self.shown_label, self.told.age_band, dict(self.told.context))

    def text(self) -> str:
        return replies.render_result(self.result, self.told)

    def keyboard(self) -> InlineKeyboardMarkup:
        chosen, reported = feedback_marks(self.feedback, self.shown_label)
        context = self.told.context if replies.evidence_applies(self.result) else None
        return answer_keyboard(self.message_id, self.result.language, chosen, reported, context)


def feedback_marks(feedback: Feedback | None, shown_label: str) -> tuple[str | None, str | None]:
    """Which feedback button shows the parent's verdict: right, wrong, or the reason they named."""
    if feedback is None:
        return None, None
    if feedback.verdict == "wrong" and feedback.reported_label is None:
        return "wrong", None
    if feedback.verdict == "right" and feedback.reported_label == shown_label:
        return "right", None
    return feedback.verdict, feedback.reported_label


async def load_answer(session: AsyncSession, request_id: str) -> StoredAnswer | None:
    """The answer as it stands; None when the request or its prediction is gone (or never was)."""
    request = await session.get(CryRequest, request_id)
    prediction = await session.get(Prediction, request_id)
    if request is None or prediction is None:
        return None
    told = replies.AnswerContext(
        age_band=await repository.age_band_of(session, request.chat_id),
        context=await repository.context_answers_of(session, request_id),
    )
    return StoredAnswer(
        repository.stored_cry_result(request, prediction),
        told,
        await repository.feedback_of(session, request_id),
    )


async def render_first_answer(
    session: AsyncSession, result: CryResult
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The first answer's text and buttons, with the chat's age band, and the once-only age invitation.

    Runs inside the reply's transaction, so the invitation counts as given only if the answer was sent.
    """
    if not replies.asks_for_feedback(result):
        return replies.render_result(result), None
    age_band = await repository.age_band_of(session, result.chat_id)
    context = await repository.context_answers_of(session, result.request_id)
    invite = age_band is None and await repository.claim_first_notice(
        session, result.chat_id, AGE_INVITE_NOTICE
    )
    text = replies.render_result(result, replies.AnswerContext(age_band, context, invite))
    keyboard_context = context if replies.evidence_applies(result) else None
    return text, answer_keyboard(result.message_id, result.language, context=keyboard_context)
