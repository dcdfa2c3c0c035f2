"""The Telegram bot (aiogram 3): commands, recordings turned into cry jobs, feedback and settings buttons.

Handlers stay thin: they read what Telegram declares about a recording and hand it to ``JobSubmitter``
(fair use, claim of the (chat_id, message_id) key, size and duration checks, "Слушаю…", download, probe,
publish), then say the outcome in the parent's language. Results come back later through ``ReplySender``,
which edits "Слушаю…" into the answer. A context tap under an answer (time since the last feed, nappy...) is
stored and the answer is edited in place, re-rendered from the stored state (``answers.load_answer``). A chat
is the user: ``/my_data`` and ``/delete_my_data`` work on everything the store holds for the chat the command
came from, and a button tap only ever touches the chat it was tapped in.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatAction
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    Audio,
    CallbackQuery,
    Document,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    User,
    VideoNote,
    Voice,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.contracts import Language
from services.common.evidence import load_evidence_config
from services.gateway import replies
from services.gateway.admission import cry_request_id
from services.gateway.answers import AGE_INVITE_NOTICE, load_answer
from services.gateway.backlog import BacklogMeter
from services.gateway.jobs import Admission, FairUse, JobSubmitter, Recording
from services.gateway.keyboards import (
    NO_AGE,
    AgeCallback,
    ContextCallback,
    FeedbackCallback,
    SettingsCallback,
    answer_keyboard,
    reasons_keyboard,
    settings_keyboard,
)
from services.gateway.settings import GatewaySettings
from services.store import repository

log = logging.getLogger(__name__)

Media = Voice | Audio | Document | VideoNote
Sessions = async_sessionmaker[AsyncSession]
# Telegram refuses an edit that changes nothing with this description; a double tap does that.
NOT_MODIFIED = "message is not modified"


def build_bot(settings: GatewaySettings) -> Bot:
    """A bot that talks to ``settings.telegram_api_base`` (real Telegram, or the local stand-in)."""
    if not settings.telegram_token:
        raise ValueError("EARSHOT_TELEGRAM_TOKEN is not set")
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return Bot(settings.telegram_token, session=session)


def build_dispatcher(
    submitter: JobSubmitter, settings: GatewaySettings, sessions: Sessions, backlog: BacklogMeter | None
) -> Dispatcher:
    """The dispatcher hands these to every handler that names them (``backlog`` is None until connected)."""
    dispatcher = Dispatcher(submitter=submitter, settings=settings, sessions=sessions, backlog=backlog)
    dispatcher.include_router(build_router())
    return dispatcher


def build_router() -> Router:
    """A fresh router per dispatcher (a router has one parent); the first matching handler wins."""
    router = Router(name="earshot")
    router.message.register(on_start, CommandStart())
    router.message.register(on_help, Command("help"))
    router.message.register(on_privacy, Command("privacy"))
    router.message.register(on_settings, Command("settings"))
    router.message.register(on_my_data, Command("my_data"))
    router.message.register(on_delete_my_data, Command("delete_my_data"))
    router.message.register(on_recording, F.voice | F.audio | F.document | F.video_note)
    router.message.register(on_anything_else)
    router.callback_query.register(on_feedback, FeedbackCallback.filter())
    router.callback_query.register(on_context_tap, ContextCallback.filter())
    router.callback_query.register(on_settings_tap, SettingsCallback.filter())
    router.callback_query.register(on_age_tap, AgeCallback.filter())
    return router


def language_of(user: User | None) -> Language:
    return replies.language_for(user.language_code if user else None)


def user_language(message: Message) -> Language:
    return language_of(message.from_user)


async def on_start(message: Message) -> None:
    await message.answer(replies.render_start(user_language(message)))


async def on_help(message: Message, settings: GatewaySettings) -> None:
    text = replies.render_help(
        user_language(message),
        settings.voice_limits,
        settings.rate_limit_recordings,
        settings.rate_limit_window_s,
    )
    await message.answer(text)


async def on_privacy(message: Message, settings: GatewaySettings) -> None:
    await message.answer(replies.render_privacy(user_language(message), settings.donation_retention_days))


async def on_recording(
    message: Message,
    bot: Bot,
    submitter: JobSubmitter,
    settings: GatewaySettings,
    sessions: Sessions,
    backlog: BacklogMeter | None,
) -> None:
    """Publish one cry job per recording; a duplicate delivery of the same message is ignored silently."""
    media: Media = message.voice or message.audio or message.document or message.video_note  # type: ignore[assignment]
    language = user_language(message)
    recording = Recording(
        chat_id=message.chat.id,
        message_id=message.message_id,
        language=language,
        declared_size=media.file_size,
        declared_duration_s=getattr(media, "duration", None),
        declared_mime_type=getattr(media, "mime_type", None),
        file_unique_id=media.file_unique_id,
    )
    reply_to = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
    acknowledged: list[int] = []

    async def acknowledge() -> int:
        await bot.send_chat_action(message.chat.id, ChatAction.TYPING)
        sent = await message.answer(
            await listening_text(backlog, language, settings), reply_parameters=reply_to
        )
        acknowledged.append(sent.message_id)
        return sent.message_id

    async def download() -> bytes:
        buffer = await bot.download(media.file_id)
        return buffer.getvalue() if buffer else b""

    fair_use = FairUse(recordings=settings.rate_limit_recordings, window_s=settings.rate_limit_window_s)
    try:
        admission = await submitter.submit_recording(
            recording, download, acknowledge, settings.voice_limits, fair_use
        )
    except Exception:
        # Nothing was committed (no claim, no job): say so rather than leave "Слушаю…" hanging.
        with contextlib.suppress(Exception):
            await answer_or_edit(
                message, acknowledged[0] if acknowledged else None, replies.NOT_TAKEN[language]
            )
        raise
    await say_outcome(message, admission, language, settings, sessions)


async def listening_text(backlog: BacklogMeter | None, language: Language, settings: GatewaySettings) -> str:
    """ "Слушаю…", saying how long the wait is when the queue is backed up."""
    if backlog is None:
        return replies.ACCEPTED[language]
    try:
        measured = await backlog.measure()
    except Exception as error:  # a measurement must never stop a recording
        log.warning("could not measure the cry backlog: %s", error)
        return replies.ACCEPTED[language]
    return replies.render_listening(
        language, measured.waiting, measured.estimated_wait_s, measured.backed_up(settings.backlog_notice_s)
    )


async def say_outcome(
    message: Message, admission: Admission, language: Language, settings: GatewaySettings, sessions: Sessions
) -> None:
    """Tell the parent why a recording makes no job; an accepted one already said "Слушаю…"."""
    if admission.outcome == "rejected" and admission.rejection is not None:
        text = replies.render_rejection(admission.rejection.code, language, settings.voice_limits)
        await answer_or_edit(message, admission.ack_message_id, text)
    elif admission.outcome == "rate_limited" and admission.retry_after_s is not None:
        text = replies.render_rate_limited(
            language, settings.rate_limit_recordings, settings.rate_limit_window_s, admission.retry_after_s
        )
        await notify_once(message, sessions, "rate_limited", text, settings.notice_interval_s)
    elif admission.outcome == "repeat":
        await notify_once(message, sessions, "repeat", replies.REPEAT[language], settings.notice_interval_s)
    elif admission.outcome == "duplicate":
        log.info("duplicate delivery of %s ignored", admission.key)


async def answer_or_edit(message: Message, ack_message_id: int | None, text: str) -> None:
    """Replace "Слушаю…" with ``text`` when it was sent, else reply to the recording."""
    if ack_message_id is not None:
        await message.bot.edit_message_text(text=text, chat_id=message.chat.id, message_id=ack_message_id)
    else:
        reply_to = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
        await message.answer(text, reply_parameters=reply_to)


async def notify_once(message: Message, sessions: Sessions, kind: str, text: str, interval_s: float) -> None:
    """Send a notice at most once per ``interval_s`` per chat, so a flood of updates gets one answer."""
    async with sessions() as session:
        if not await repository.claim_notice(session, message.chat.id, kind, interval_s):
            log.info("chat %s: %s notice already sent recently", message.chat.id, kind)
            return
    await message.answer(text)


async def on_anything_else(message: Message, settings: GatewaySettings, sessions: Sessions) -> None:
    text = replies.SEND_AUDIO[user_language(message)]
    await notify_once(message, sessions, "send_audio", text, settings.notice_interval_s)


# --- feedback ---------------------------------------------------------------------------------------------


async def on_feedback(query: CallbackQuery, callback_data: FeedbackCallback, sessions: Sessions) -> None:
    """«угадал» / «не угадал» / «что было на самом деле?»: stored per request, the last answer wins.

    «угадал» confirms the reason the answer shows now (the combined top reason); the row keeps what the answer
    showed and the age band and context answers it was combined from.
    """
    language = language_of(query.from_user)
    words = replies.FEEDBACK_THANKS[language]
    if not isinstance(query.message, Message):
        await query.answer()
        return
    chat_id = query.message.chat.id
    request_id = cry_request_id(chat_id, callback_data.message_id)
    async with sessions() as session:
        answer = await load_answer(session, request_id)
        if answer is None:
            await query.answer(words["gone"])
            return
        if callback_data.choice == "ask":
            labels = answer.ranked_labels
            await edit_keyboard(query.message, reasons_keyboard(callback_data.message_id, labels, language))
            await query.answer(words["choose"])
            return
        verdict, reported = feedback_verdict(callback_data, answer.shown_label, answer.ranked_labels)
        if verdict is None:
            await query.answer()
            return
        await repository.record_feedback(session, request_id, chat_id, verdict, reported, answer.snapshot())
    named = reported if callback_data.choice == "label" else None
    context = answer.told.context if replies.evidence_applies(answer.result) else None
    keyboard = answer_keyboard(callback_data.message_id, language, verdict, named, context)
    await edit_keyboard(query.message, keyboard)
    await query.answer(words["saved"])


def feedback_verdict(
    tap: FeedbackCallback, shown: str | None, labels: list[str]
) -> tuple[str | None, str | None]:
    """(verdict, reported reason) of a tap; naming the reason shown is right. (None, None): bogus."""
    if tap.choice == "right":
        return "right", shown
    if tap.choice == "wrong":
        return "wrong", None
    if tap.choice == "label" and tap.label in labels:
        return ("right" if tap.label == shown else "wrong"), tap.label
    return None, None


async def edit_keyboard(message: Message, keyboard: InlineKeyboardMarkup) -> None:
    """Edit only the buttons under the bot's message, with the same tolerance as ``edit_in_place``."""
    with edit_refusals_logged(message):
        await message.edit_reply_markup(reply_markup=keyboard)


# --- context taps ---------------------------------------------------------------------------------------


async def on_context_tap(query: CallbackQuery, callback_data: ContextCallback, sessions: Sessions) -> None:
    """Store one context answer (the last per question wins) and edit the answer in place with it."""
    language = language_of(query.from_user)
    words = replies.CONTEXT_THANKS[language]
    rule = load_evidence_config().rules.get(callback_data.question)
    if not isinstance(query.message, Message) or rule is None or callback_data.answer not in rule.answers:
        await query.answer()
        return
    chat_id = query.message.chat.id
    request_id = cry_request_id(chat_id, callback_data.message_id)
    async with sessions() as session:
        answer = await load_answer(session, request_id)
        if answer is None or not replies.evidence_applies(answer.result):
            await query.answer(words["gone"])  # deleted, another chat's, or an answer with no context buttons
            return
        await repository.record_context_answer(
            session, request_id, chat_id, callback_data.question, callback_data.answer
        )
        answer = await load_answer(session, request_id)
    if answer is None:  # deleted in between
        await query.answer(words["gone"])
        return
    await edit_in_place(query.message, answer.text(), answer.keyboard())
    await query.answer(words["saved"])


async def edit_in_place(message: Message, text: str, keyboard: InlineKeyboardMarkup) -> None:
    """Edit the bot's message; an edit that changes nothing (a double tap) is not an error.

    A message Telegram will not edit any more (deleted, too old) is logged: the tap is stored either way.
    """
    with edit_refusals_logged(message):
        await message.edit_text(text, reply_markup=keyboard)


@contextlib.contextmanager
def edit_refusals_logged(message: Message) -> Iterator[None]:
    """Telegram's refusal to edit ``message``: silent when the edit changed nothing, else logged."""
    try:
        yield
    except TelegramBadRequest as error:
        if NOT_MODIFIED not in str(error):
            log.warning(
                "could not edit message %s in chat %s: %s", message.message_id, message.chat.id, error
            )


# --- settings and the user's data -------------------------------------------------------------------------


async def on_settings(message: Message, settings: GatewaySettings, sessions: Sessions) -> None:
    language = user_language(message)
    async with sessions() as session:
        donates = await repository.donates_audio(session, message.chat.id)
        age_band = await repository.age_band_of(session, message.chat.id)
    await message.answer(
        replies.render_settings(language, donates, settings.donation_retention_days, age_band),
        reply_markup=settings_keyboard(donates, language, age_band),
    )


async def on_settings_tap(
    query: CallbackQuery, callback_data: SettingsCallback, settings: GatewaySettings, sessions: Sessions
) -> None:
    """Donation on or off; off deletes what was donated at once."""
    language = language_of(query.from_user)
    if not isinstance(query.message, Message):
        await query.answer()
        return
    async with sessions() as session:
        deleted = await repository.set_donation(session, query.message.chat.id, callback_data.donate)
        age_band = await repository.age_band_of(session, query.message.chat.id)
    words = replies.SETTINGS_WORDS[language]
    await edit_in_place(
        query.message,
        replies.render_settings(language, callback_data.donate, settings.donation_retention_days, age_band),
        settings_keyboard(callback_data.donate, language, age_band),
    )
    confirmation = words["turned_on"] if callback_data.donate else words["turned_off"].format(deleted=deleted)
    await query.answer()
    await query.message.answer(confirmation)


async def on_age_tap(
    query: CallbackQuery, callback_data: AgeCallback, settings: GatewaySettings, sessions: Sessions
) -> None:
    """Set the baby's age band or delete it; either way the answers stop inviting the parent to give it."""
    language = language_of(query.from_user)
    band = None if callback_data.band == NO_AGE else callback_data.band
    if not isinstance(query.message, Message) or (
        band is not None and band not in load_evidence_config().age_bands
    ):
        await query.answer()
        return
    chat_id = query.message.chat.id
    async with sessions() as session:
        await repository.set_age_band(session, chat_id, band)
        await repository.claim_first_notice(session, chat_id, AGE_INVITE_NOTICE)
        donates = await repository.donates_audio(session, chat_id)
    await edit_in_place(
        query.message,
        replies.render_settings(language, donates, settings.donation_retention_days, band),
        settings_keyboard(donates, language, band),
    )
    words = replies.AGE_SETTINGS[language]
    await query.answer(
        words["removed"] if band is None else words["saved"].format(age=replies.age_name(band, language))
    )


async def on_my_data(message: Message, settings: GatewaySettings, sessions: Sessions) -> None:
    async with sessions() as session:
        held = await repository.chat_data(session, message.chat.id)
    await message.answer(
        replies.render_my_data(user_language(message), held, settings.donation_retention_days)
    )


async def on_delete_my_data(message: Message, sessions: Sessions) -> None:
    async with sessions() as session:
        deleted = await repository.delete_chat_data(session, message.chat.id)
    log.info("chat %s: deleted all its data on request", message.chat.id)
    await message.answer(replies.render_deleted(user_language(message), deleted))
