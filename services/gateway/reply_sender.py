"""Sends parents their results: consumes ``gateway.replies`` and answers each request exactly once.

For each ``Reply`` the sender marks the request's reply as sent (``mark_reply_sent``, true only the first
time) and sends the Telegram message inside one database transaction (``all_or_nothing``): the mark commits
only after Telegram took the message. A redelivered reply finds the mark set and sends nothing; a send that
fails rolls the mark back and is tried again. Transient failures (Telegram or the database unreachable) are
retried in place with backoff, so a good reply never burns through the queue's delivery limit; a reply
Telegram refuses for good (the user blocked the bot, the chat is gone) is logged and acknowledged.
"""

from __future__ import annotations

import asyncio
import logging

from aio_pika.abc import AbstractIncomingMessage
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import ReplyParameters
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.amqp import safely
from services.common.contracts import CryResult, Reply
from services.gateway.replies import render_result
from services.gateway.transactions import all_or_nothing
from services.store import repository

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


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
            reply = Reply.model_validate_json(delivery.body)
        except ValidationError as error:
            log.error("poison reply %s goes to the dead-letter queue: %s", delivery.message_id, error)
            await safely(delivery.reject(requeue=False), "reject")
            return
        backoff_s = 1.0
        while True:
            try:
                await self.send_once(reply.result)
                break
            except TelegramRetryAfter as error:
                wait_s = float(error.retry_after)
            except Exception as error:  # Telegram or PostgreSQL unreachable: both come back
                log.warning(
                    "reply %s not sent yet (%s: %s)", reply.result.request_id, type(error).__name__, error
                )
                wait_s, backoff_s = backoff_s, min(2 * backoff_s, MAX_BACKOFF_S)
            if await self._stopping_within(wait_s):
                await safely(delivery.nack(requeue=True), "nack")
                return
        await safely(delivery.ack(), "ack")

    async def send_once(self, result: CryResult) -> bool:
        """Send the reply unless it was sent before; True when this call sent it."""
        async with all_or_nothing(self._engine) as session:
            if not await repository.mark_reply_sent(session, result.request_id):
                log.info("reply for %s was already sent", result.request_id)
                return False
            try:
                await self._bot.send_message(
                    result.chat_id,
                    render_result(result),
                    reply_parameters=ReplyParameters(
                        message_id=result.message_id, allow_sending_without_reply=True
                    ),
                )
            except (TelegramForbiddenError, TelegramBadRequest) as error:
                log.warning("Telegram refused the reply for %s for good: %s", result.request_id, error)
                return False
        return True

    async def _stopping_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True
