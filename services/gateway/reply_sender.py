"""Sends parents their results: consumes ``gateway.replies`` and answers each request exactly once.

A delivery is a ``Reply`` (the stored result) or a ``FailedReply`` (a worker gave up on the recording). For
each, the sender marks the request's reply as sent (``mark_reply_sent``, true only the first time) and
talks to Telegram inside one database transaction (``all_or_nothing``): the mark commits only after Telegram
took the message. An answer that names reasons is rendered with the chat's age band (and any context answers
already stored), and the first one a chat without an age gets invites the parent, once, to give it. The
answer replaces the bot's "Слушаю…" message in place when the request row names one
(whichever gateway replica sent it), else it is sent as a reply to the voice note. A redelivered reply finds
the mark set and sends nothing; a send that fails rolls the mark back and is tried again. Transient failures
(Telegram or the database unreachable) are retried in place with backoff, so a good reply never burns
through the queue's delivery limit; a reply Telegram refuses for good (the user blocked the bot, the chat is
gone) is logged and acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from aio_pika.abc import AbstractIncomingMessage
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import InlineKeyboardMarkup, ReplyParameters
from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.amqp import safely
from services.common.contracts import FailedReply, Reply
from services.gateway.answers import render_first_answer
from services.gateway.replies import render_failure
from services.gateway.transactions import all_or_nothing
from services.store import repository

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0

AnyReply = Annotated[Reply | FailedReply, Field(discriminator="contract")]
_REPLY_ADAPTER: TypeAdapter[Reply | FailedReply] = TypeAdapter(AnyReply)


def parse_reply(body: bytes) -> Reply | FailedReply:
    return _REPLY_ADAPTER.validate_json(body)


def reply_request_id(reply: Reply | FailedReply) -> str:
    return reply.result.request_id if isinstance(reply, Reply) else reply.request_id


class ReplySender:
    """The handler of ``gateway.replies`` deliveries (run by ``services.common.amqp.Consumer``)."""

    def __init__(self, bot: Bot, engine: AsyncEngine) -> None:
        self._bot = bot
        self._engine = engine
        self._stopping = asyncio.Event()

    def stop_retrying(self) -> None:
        """At shutdown, give deliveries that are waiting out a failure back to the queue."""
        self._stopping.set()

    async def handle(self, delivery: AbstractIncomingMessage) -> None:
        try:
            reply = parse_reply(delivery.body)
        except ValidationError as error:
            log.error("poison reply %s goes to the dead-letter queue: %s", delivery.message_id, error)
            await safely(delivery.reject(requeue=False), "reject")
            return
        backoff_s = 1.0
        while True:
            try:
                await self.send_once(reply)
                break
            except TelegramRetryAfter as error:
                wait_s = float(error.retry_after)
            except Exception as error:  # Telegram or PostgreSQL unreachable: both come back
                log.warning(
                    "reply %s not sent yet (%s: %s)", reply_request_id(reply), type(error).__name__, error
                )
                wait_s, backoff_s = backoff_s, min(2 * backoff_s, MAX_BACKOFF_S)
            if await self._stopping_within(wait_s):
                await safely(delivery.nack(requeue=True), "nack")
                return
        await safely(delivery.ack(), "ack")

    async def send_once(self, reply: Reply | FailedReply) -> bool:
        """Send the reply unless it was sent before; True when this call sent it."""
        request_id = reply_request_id(reply)
        async with all_or_nothing(self._engine) as session:
            if not await repository.mark_reply_sent(session, request_id):
                log.info("reply for %s was already sent", request_id)
                return False
            if isinstance(reply, Reply):
                chat_id, message_id = reply.result.chat_id, reply.result.message_id
                text, keyboard = await render_first_answer(session, reply.result)
            else:
                chat_id, message_id, text = reply.chat_id, reply.message_id, render_failure(reply.language)
                keyboard = None
            ack_message_id = await repository.ack_message_of(session, request_id)
            try:
                await self._deliver(chat_id, message_id, ack_message_id, text, keyboard)
            except (TelegramForbiddenError, TelegramBadRequest) as error:
                log.warning("Telegram refused the reply for %s for good: %s", request_id, error)
                return False
        return True

    async def _deliver(
        self,
        chat_id: int,
        message_id: int,
        ack_message_id: int | None,
        text: str,
        keyboard: InlineKeyboardMarkup | None,
    ) -> None:
        """Edit "Слушаю…" into the answer; a new reply to the voice note if there is none or it is gone."""
        if ack_message_id is not None:
            try:
                await self._bot.edit_message_text(
                    text=text, chat_id=chat_id, message_id=ack_message_id, reply_markup=keyboard
                )
                return
            except TelegramBadRequest as error:  # deleted by the user, or too old to edit
                log.info(
                    "could not edit message %s in chat %s (%s); sending anew", ack_message_id, chat_id, error
                )
        await self._bot.send_message(
            chat_id,
            text,
            reply_markup=keyboard,
            reply_parameters=ReplyParameters(message_id=message_id, allow_sending_without_reply=True),
        )

    async def _stopping_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True
