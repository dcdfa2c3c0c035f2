"""The Telegram bot (aiogram 3): commands, and recordings turned into cry jobs.

Handlers stay thin: they read what Telegram declares about a recording, hand it to ``JobSubmitter`` (which
claims the (chat_id, message_id) key, checks size and duration, downloads, probes and publishes) and say the
outcome in the parent's language. Results come back later through ``ReplySender``.
"""

from __future__ import annotations

import logging

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandStart
from aiogram.types import Audio, Document, Message, ReplyParameters, VideoNote, Voice

from services.common.contracts import Language
from services.gateway import replies
from services.gateway.jobs import JobSubmitter, Recording
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

Media = Voice | Audio | Document | VideoNote


def build_bot(settings: GatewaySettings) -> Bot:
    """A bot that talks to ``settings.telegram_api_base`` (real Telegram, or the local stand-in)."""
    if not settings.telegram_token:
        raise ValueError("EARSHOT_TELEGRAM_TOKEN is not set")
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return Bot(settings.telegram_token, session=session)


def build_dispatcher(submitter: JobSubmitter, settings: GatewaySettings) -> Dispatcher:
    """The dispatcher hands ``submitter`` and ``settings`` to every handler that names them."""
    dispatcher = Dispatcher(submitter=submitter, settings=settings)
    dispatcher.include_router(build_router())
    return dispatcher


def build_router() -> Router:
    """A fresh router per dispatcher (a router has one parent); the first matching handler wins."""
    router = Router(name="earshot")
    router.message.register(on_start, CommandStart())
    router.message.register(on_help, Command("help"))
    router.message.register(on_privacy, Command("privacy"))
    router.message.register(on_recording, F.voice | F.audio | F.document | F.video_note)
    router.message.register(on_anything_else)
    return router


def user_language(message: Message) -> Language:
    return replies.language_for(message.from_user.language_code if message.from_user else None)


async def on_start(message: Message) -> None:
    await message.answer(replies.render_start(user_language(message)))


async def on_help(message: Message, settings: GatewaySettings) -> None:
    await message.answer(replies.render_help(user_language(message), settings.voice_limits))


async def on_privacy(message: Message) -> None:
    await message.answer(replies.render_privacy(user_language(message)))


async def on_recording(
    message: Message, bot: Bot, submitter: JobSubmitter, settings: GatewaySettings
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
    )

    async def download() -> bytes:
        await bot.send_chat_action(message.chat.id, ChatAction.TYPING)
        buffer = await bot.download(media.file_id)
        return buffer.getvalue() if buffer else b""

    admission = await submitter.submit_recording(recording, download, settings.voice_limits)
    reply_to = ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
    if admission.outcome == "accepted":
        await message.answer(replies.ACCEPTED[language], reply_parameters=reply_to)
    elif admission.outcome == "rejected" and admission.rejection is not None:
        text = replies.render_rejection(admission.rejection.code, language, settings.voice_limits)
        await message.answer(text, reply_parameters=reply_to)
    else:
        log.info("duplicate delivery of %s ignored", admission.key)


async def on_anything_else(message: Message) -> None:
    await message.answer(replies.SEND_AUDIO[user_language(message)])
