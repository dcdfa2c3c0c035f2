"""The two ways to get ``skip_kws`` intervals: post a whole track, or stream one (``docs/protocol.md``).

Nothing here retries or reconnects on its own: a refused track raises ``TrackError``, a stream the server
closes with an error (or a dropped connection) raises ``StreamError`` with the close code and reason, and
the caller decides whether to start again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets
from websockets.exceptions import ConnectionClosed

API_KEY_HEADER = "X-API-Key"
STREAMS_PATH = "/v1/streams"


@dataclass(frozen=True)
class Interval:
    """Mute the microphone from ``start_ms`` to ``end_ms`` of the track."""

    start_ms: int
    end_ms: int
    score: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Interval:
        return cls(int(data["start_ms"]), int(data["end_ms"]), float(data["score"]))


@dataclass(frozen=True)
class TrackResult:
    track_id: str
    duration_ms: int
    intervals: list[Interval]
    model_version: str


@dataclass(frozen=True)
class FinalResult:
    """The stream's whole answer: what the batch scan gives for the same audio, and whether it was stored."""

    track_id: str
    duration_ms: int
    intervals: list[Interval]
    model_version: str
    stored: bool
    voice_id: str | None = None


class TrackError(Exception):
    """The service refused a track or could not scan it; ``code`` is stable, ``message`` is for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class StreamError(Exception):
    """The stream ended without a final answer: ``code`` and ``reason`` are the WebSocket close's."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"stream closed ({code}): {reason}")
        self.code, self.reason = code, reason


async def skip_kws(
    track: bytes,
    *,
    gateway_url: str,
    api_key: str,
    store_url: str | None = None,
    content_type: str = "application/octet-stream",
    timeout_s: float = 60.0,
    voice_id: str | None = None,
) -> TrackResult:
    """Post ``track`` to ``POST /v1/tracks`` and wait (long-polling the store) for its intervals; with
    ``voice_id`` (an enrolled voice of this key) the track is scanned with that voice."""
    headers = {API_KEY_HEADER: api_key}
    voice = {"voice_id": voice_id} if voice_id else {}
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(headers=headers, timeout=timeout_s + 5) as client:
        posted = await client.post(
            f"{gateway_url.rstrip('/')}/v1/tracks",
            content=track,
            headers={"Content-Type": content_type},
            params=voice,
        )
        if posted.status_code != 202:
            raise _track_error(posted)
        answer = posted.json()
        url, params = answer["skip_kws_url"], {}
        if store_url is not None:
            url, params = f"{store_url.rstrip('/')}/v1/tracks/{answer['track_id']}/skip-kws", voice
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TrackError(504, "timeout", f"no result for {answer['track_id']} in {timeout_s:.0f} s")
            response = await client.get(url, params={**params, "wait": min(remaining, 20.0)})
            if response.status_code == 200:
                body = response.json()
                return TrackResult(
                    track_id=answer["track_id"],
                    duration_ms=body["duration_ms"],
                    intervals=[Interval.from_json(item) for item in body["skip_kws"]],
                    model_version=body["model_version"],
                )
            if response.status_code != 202:
                raise _track_error(response)


def _track_error(response: httpx.Response) -> TrackError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("error") or body.get("error_code") or body.get("status") or "error"
    message = body.get("message") or body.get("error_message") or body.get("detail") or response.text
    return TrackError(response.status_code, str(code), str(message))


@dataclass
class LiveStream:
    """An open stream: ``send`` audio, read intervals as they come, ``end`` for the final answer."""

    connection: Any
    started: dict[str, Any]
    _messages: asyncio.Queue = field(default_factory=asyncio.Queue)
    final: FinalResult | None = None
    _reader: asyncio.Task | None = None
    _ended: bool = False

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                await self._messages.put(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            await self._messages.put(None)  # the connection is closed: ``_closed_error`` says how

    async def send(self, chunk: bytes) -> None:
        """Send one audio chunk (any size up to the server's ``max_message_bytes``)."""
        try:
            await self.connection.send(chunk)
        except ConnectionClosed:
            raise self._closed_error() from None

    def ready(self) -> list[Interval]:
        """The intervals that have arrived since the last call, without waiting."""
        intervals = []
        while not self._messages.empty():
            message = self._messages.get_nowait()
            if message is None or message.get("type") != "interval":
                self._messages.put_nowait(message)  # leave the end of the stream for ``end``/iteration
                break
            intervals.append(Interval.from_json(message))
        return intervals

    async def __aiter__(self) -> AsyncIterator[Interval]:
        """Intervals as they are decided, until the stream's final message (then ``final`` holds it)."""
        while True:
            message = await self._messages.get()
            if message is None:
                raise self._closed_error()
            if message.get("type") == "final":
                self.final = _final(message)
                return
            yield Interval.from_json(message)

    async def end(self, wait: bool = True) -> FinalResult | None:
        """Say the audio is complete; with ``wait``, read on to the final answer (it holds every interval).

        A caller that reads intervals with ``async for`` passes ``wait=False``: its loop ends at the final
        message and ``final`` holds it.
        """
        if not self._ended:
            self._ended = True
            try:
                await self.connection.send(json.dumps({"type": "end"}))
            except ConnectionClosed:
                raise self._closed_error() from None
        while wait and self.final is None:
            message = await self._messages.get()
            if message is None:
                raise self._closed_error()
            if message.get("type") == "final":
                self.final = _final(message)
        return self.final

    def _closed_error(self) -> StreamError:
        return StreamError(self.connection.close_code, self.connection.close_reason or "connection lost")

    async def close(self) -> None:
        await self.connection.close()
        if self._reader is not None:
            await self._reader


def _final(message: dict[str, Any]) -> FinalResult:
    return FinalResult(
        track_id=message["track_id"],
        duration_ms=message["duration_ms"],
        intervals=[Interval.from_json(item) for item in message["intervals"]],
        model_version=message["model_version"],
        stored=message["stored"],
        voice_id=message.get("voice_id"),
    )


@asynccontextmanager
async def stream(
    gateway_url: str,
    api_key: str,
    *,
    format: str = "pcm_s16le",
    sample_rate: int | None = None,
    channels: int = 1,
    open_timeout_s: float = 10.0,
    voice_id: str | None = None,
) -> AsyncIterator[LiveStream]:
    """Open ``WS /v1/streams`` (``gateway_url`` may be http(s):// or ws(s)://) and declare the format;
    with ``voice_id`` (an enrolled voice of this key) the stream is scanned with that voice."""
    url = gateway_url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    query = "?" + urlencode({"voice_id": voice_id}) if voice_id else ""
    connection = await websockets.connect(
        url + STREAMS_PATH + query,
        additional_headers={API_KEY_HEADER: api_key},
        open_timeout=open_timeout_s,
        compression=None,  # audio does not compress; deflate would only cost CPU on both ends
    )
    start = {"type": "start", "format": format, "sample_rate": sample_rate, "channels": channels}
    try:
        await connection.send(json.dumps(start))
        started = json.loads(await asyncio.wait_for(connection.recv(), open_timeout_s))
    except ConnectionClosed:
        raise StreamError(connection.close_code, connection.close_reason or "connection lost") from None
    live = LiveStream(connection, started)
    live.start_reading()
    try:
        yield live
    finally:
        await live.close()
