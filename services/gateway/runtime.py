"""The running gateway: wires the broker, the database, the HTTP app and (with a token) the Telegram bot.

Start-up declares the AMQP topology, opens a confirming publisher and serves HTTP. With
``EARSHOT_TELEGRAM_TOKEN`` it also runs the bot (long polling, or webhook mode through the HTTP app) and
consumes ``gateway.replies``; without one it serves HTTP only and says so.

Shutdown on SIGTERM/SIGINT: stop taking new work (HTTP, polling, replies), wait for uploads and replies
already in flight, then close the connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.types import BotCommand, TelegramObject
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.amqp import Consumer, Publisher, connect, declare_topology, shutdown_event
from services.common.topology import GATEWAY_REPLIES_QUEUE
from services.gateway.asgi_server import BackgroundServer
from services.gateway.backlog import BacklogMeter
from services.gateway.bot import build_bot, build_dispatcher
from services.gateway.http import GatewayHttp, TelegramWebhook, create_app
from services.gateway.jobs import JobSubmitter
from services.gateway.replies import COMMANDS
from services.gateway.reply_sender import ReplySender
from services.gateway.settings import GatewaySettings
from services.gateway.streams import StreamService
from services.store.db import make_engine, make_session_factory

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 30.0


class UpdatesInFlight(BaseMiddleware):
    """Counts updates being handled, so shutdown can wait for them instead of cutting a publish in half."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.count += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def wait_idle(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("%d update(s) still in flight after %.0f s; stopping anyway", self.count, timeout)


class TelegramSide:
    """The bot's half of the gateway: polling or webhook, and the replies consumer."""

    def __init__(
        self, settings: GatewaySettings, submitter: JobSubmitter, engine: AsyncEngine, backlog: BacklogMeter
    ) -> None:
        self.settings = settings
        self.bot: Bot = build_bot(settings)
        self.dispatcher: Dispatcher = build_dispatcher(
            submitter, settings, make_session_factory(engine), backlog
        )
        self.in_flight = UpdatesInFlight()
        self.dispatcher.update.outer_middleware(self.in_flight)
        self.reply_sender = ReplySender(self.bot, engine)
        self._polling: asyncio.Task[None] | None = None
        self._replies: Consumer | None = None

    def webhook(self) -> TelegramWebhook | None:
        if self.settings.telegram_mode != "webhook":
            return None
        if not self.settings.telegram_webhook_secret:
            raise ValueError("webhook mode needs EARSHOT_TELEGRAM_WEBHOOK_SECRET")
        return TelegramWebhook(self.bot, self.dispatcher, self.settings.telegram_webhook_secret)

    async def start(self, connection) -> None:
        me = await self.bot.get_me()
        await self._register_commands()
        if self.settings.telegram_mode == "webhook":
            await self._register_webhook()
        else:
            await self.bot.delete_webhook()
            self._polling = asyncio.create_task(
                self.dispatcher.start_polling(
                    self.bot,
                    polling_timeout=self.settings.telegram_polling_timeout,
                    handle_signals=False,
                    close_bot_session=False,
                    tasks_concurrency_limit=self.settings.prefetch * 2,
                )
            )
        self._replies = await Consumer.start(
            connection, GATEWAY_REPLIES_QUEUE, self.reply_sender.handle, self.settings.prefetch
        )
        log.info(
            "Telegram bot @%s is on (%s, API at %s)",
            me.username,
            self.settings.telegram_mode,
            self.settings.telegram_api_base,
        )

    async def _register_commands(self) -> None:
        """The command menu: Russian for everyone, English for English-speaking users."""
        for language, language_code in (("ru", None), ("en", "en")):
            commands = [
                BotCommand(command=name, description=text) for name, text in COMMANDS[language].items()
            ]
            await self.bot.set_my_commands(commands, language_code=language_code)

    async def _register_webhook(self) -> None:
        if not self.settings.telegram_webhook_url:
            log.warning("webhook mode without EARSHOT_TELEGRAM_WEBHOOK_URL: not registering it with Telegram")
            return
        await self.bot.set_webhook(
            self.settings.telegram_webhook_url,
            secret_token=self.settings.telegram_webhook_secret,
            allowed_updates=self.dispatcher.resolve_used_update_types(),
        )

    async def stop(self) -> None:
        if self._polling is not None:
            await self.dispatcher.stop_polling()
            await self._polling
        await self.in_flight.wait_idle(SHUTDOWN_GRACE_S)
        self.reply_sender.stop_retrying()
        if self._replies is not None:
            await self._replies.stop()
        await self.bot.session.close()


async def serve(settings: GatewaySettings, stop: asyncio.Event | None = None) -> None:
    """Run the gateway until ``stop`` is set (by default: until SIGTERM or SIGINT)."""
    stop = stop or shutdown_event()
    async with AsyncExitStack() as resources:
        connection = await connect(settings, name="earshot-gateway")
        resources.push_async_callback(connection.close)
        async with connection.channel() as channel:
            await declare_topology(channel)
        publisher = await Publisher.open(connection)
        resources.push_async_callback(publisher.close)
        engine = make_engine(settings)
        resources.push_async_callback(engine.dispose)
        submitter = JobSubmitter(publisher, engine, inline_audio_max_bytes=settings.inline_audio_max_bytes)

        streams = StreamService.start(settings)
        resources.callback(streams.close)
        backlog = BacklogMeter(connection, make_session_factory(engine), settings.backlog_rate_window_s)
        telegram = TelegramSide(settings, submitter, engine, backlog) if settings.telegram_token else None
        if telegram is not None:
            resources.push_async_callback(telegram.stop)
        http_app = create_app(
            GatewayHttp(
                settings=settings,
                submitter=submitter,
                sessions=make_session_factory(engine),
                broker=connection,
                webhook=telegram.webhook() if telegram else None,
                streams=streams,
            )
        )
        server = BackgroundServer(http_app, settings.http_host, settings.http_port)
        await server.start()
        resources.push_async_callback(server.stop)  # first to stop: no new uploads
        log.info("gateway HTTP on %s (POST /v1/tracks, WS /v1/streams, /healthz, /readyz)", server.url)
        if telegram is None:
            log.warning(
                "EARSHOT_TELEGRAM_TOKEN is not set: the Telegram bot is off, the gateway serves HTTP only"
            )
        else:
            await telegram.start(connection)

        await stop.wait()
        log.info("gateway stopping: finishing uploads and replies in flight")
    log.info("gateway stopped")
