"""Run an ASGI app with uvicorn inside a running event loop, next to the gateway's other tasks.

uvicorn's own ``serve`` installs signal handlers and re-raises the signal on exit; the gateway handles
SIGTERM/SIGINT itself (to drain in-flight uploads first), so this wrapper leaves signals alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

# Messages a WebSocket may have waiting for the app before its socket stops being read.
WS_QUEUED_MESSAGES_MAX = 16


class QueueingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, pausing the socket only once ``WS_QUEUED_MESSAGES_MAX`` messages wait.

    The stock protocol stops reading after every message and starts again when the app takes it: two
    epoll system calls per message, about a quarter of the gateway's event loop with 50 streams of 20 ms
    chunks (py-spy). A client that sends faster than the app reads is still held back, a few messages
    later; reading resumes, as before, once the app has taken every waiting message.
    """

    def send_receive_event_to_app(self) -> None:
        paused = self.read_paused
        self.read_paused = True  # the stock method pauses reading unless it is paused already
        super().send_receive_event_to_app()
        self.read_paused = paused
        if not paused and self.queue.qsize() >= WS_QUEUED_MESSAGES_MAX:
            self.read_paused = True
            self.transport.pause_reading()


class _EmbeddedServer(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class BackgroundServer:
    """An HTTP server bound on start (port 0 picks a free one) and stopped gracefully on ``stop``."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        # No permessage-deflate on WebSockets: audio does not compress, and inflating every chunk of
        # every stream would cost the gateway more than scanning it.
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=10,
            log_config=None,
            ws_per_message_deflate=False,
            ws=QueueingWebSocketProtocol,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task  # surfaces the start-up error
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting connections and wait for the requests in flight."""
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
        self._socket.close()
