"""``WS /v1/streams``: skip_kws intervals sent while a track streams in (protocol: ``docs/protocol.md``).

One connection is one stream. The client authenticates with ``X-API-Key``, declares the format in a
``start`` message, sends audio as binary messages and ends with ``end``; the gateway answers ``started``,
then an ``interval`` message as soon as the streaming detector decides one, then ``final`` with every
interval and the stream's ``track_id`` (sha256 of all audio bytes), and closes. The final result is claimed
and published to the store exactly like a kws worker's, so ``GET skip-kws`` and a later ``POST /v1/tracks``
of the same bytes are answered from the store.

Decoding and the model run in one bounded thread pool shared by all streams, one scan at a time per
stream, so the event loop only moves bytes; scans that wait for a thread go to it together
(``ScanBatcher``), so a busy gateway pays one thread handoff per batch, not one per stream. Nothing of
the audio is kept: the bytes are hashed as they pass. Every limit ends the stream with a close code and a
reason; a client that vanishes loses its stream and nothing is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.audio import AudioRejected
from services.common.contracts import VOICE_ID_PATTERN, VoiceModel, utc_now
from services.common.stream_audio import StreamFormat, UnsupportedFormat, open_decoder
from services.gateway.jobs import JobSubmitter
from services.gateway.settings import GatewaySettings
from services.kws.enrollment import VoiceHead
from services.kws.intervals import SkipInterval
from services.kws.spotter import KeywordSpotter, KwsScan
from services.kws.streaming import StreamingDetector
from services.store import repository

log = logging.getLogger(__name__)
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

STREAMS_PATH = "/v1/streams"
PROTOCOL_VERSION = 1

# Close codes (docs/protocol.md lists them with their reasons).
CLOSE_DONE = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_BAD_AUDIO = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_UNAUTHORISED = 4401
CLOSE_UNKNOWN_VOICE = 4404
CLOSE_IDLE = 4408
CLOSE_VOICE_NOT_READY = 4409
CLOSE_TOO_MANY_STREAMS = 4429


class StreamClosed(Exception):
    """Ends a stream with a WebSocket close code and a reason a client developer can act on."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class StartMessage(BaseModel):
    """The client's first message: the format of the bytes that follow."""

    model_config = ConfigDict(extra="forbid")

    type: str
    format: str
    sample_rate: int | None = None
    channels: int = 1


class VoiceUnusable(Exception):
    """A ``voice_id`` a scan cannot use: unknown to this key (404), or not ready to scan with (409)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class ScanModel:
    """What one scan runs with: the spotter (the base model, or with a voice's head) and that voice."""

    spotter: KeywordSpotter
    voice: VoiceModel | None = None

    @property
    def version(self) -> str:
        """The version its answers are stored under: the base model's, plus the voice head's fingerprint."""
        return self.spotter.model_version

    @property
    def voice_id(self) -> str | None:
        return self.voice.voice_id if self.voice else None


@dataclass
class KwsModels:
    """The base spotter, loaded once from its ONNX file, and enrolled voices' heads on top of it.

    ``POST /v1/tracks`` and ``WS /v1/streams`` both choose their model here, so a ``voice_id`` follows one
    set of rules: another key's voice is as unknown as no voice, and a voice is used only when it is ready
    and was fitted on the base model this gateway runs.
    """

    spotter: KeywordSpotter

    @property
    def base(self) -> ScanModel:
        return ScanModel(self.spotter)

    async def for_voice(self, sessions: Sessions, voice_id: str, api_key_id: int) -> ScanModel:
        async with sessions() as session:
            voice = await repository.find_voice(session, voice_id, api_key_id)
        if voice is None:
            raise VoiceUnusable(404, "unknown_voice", f"No voice {voice_id} for this API key.")
        if voice.status != "ready" or voice.head is None:
            raise VoiceUnusable(
                409, "voice_not_ready", f"Voice {voice_id} is {voice.status}; see GET /v1/voices/{voice_id}."
            )
        head = VoiceHead.from_json_dict(voice.head)
        if head.base_model_version != self.spotter.metadata.version:
            raise VoiceUnusable(
                409,
                "voice_outdated",
                f"Voice {voice_id} was fitted on model {head.base_model_version}, not "
                f"{self.spotter.metadata.version}: enroll it again.",
            )
        return ScanModel(self.spotter.with_voice(head), VoiceModel(voice_id=voice_id, head=voice.head))


Outcome = tuple[bool, Any]  # (True, the value) or (False, the exception)


def _run_each(works: list[Callable[[], Any]]) -> list[Outcome]:
    """Run every work in turn, in one pool thread, and say how each ended."""
    outcomes: list[Outcome] = []
    for work in works:
        try:
            outcomes.append((True, work()))
        except Exception as failure:
            outcomes.append((False, failure))
    return outcomes


@dataclass
class ScanBatcher:
    """The streams' decoding and model calls in the pool: at once while a thread is free, else in batches.

    A scan submitted while every inference thread is busy waits, and all that waited go to the next free
    thread as one job. Handing work to a thread and its result back costs the event loop more than a
    short scan (a future, a self-pipe wake-up, callbacks); under load one handoff now serves many streams.
    """

    executor: ThreadPoolExecutor
    threads: int
    waiting: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = field(default_factory=list)
    running: int = 0

    async def run(self, work: Callable[[], T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.waiting.append((work, future))
        self._start_next()
        return await future

    def _start_next(self) -> None:
        if not self.waiting or self.running >= self.threads:
            return
        batch, self.waiting = self.waiting, []
        self.running += 1
        job = asyncio.get_running_loop().run_in_executor(
            self.executor, _run_each, [work for work, _ in batch]
        )
        job.add_done_callback(partial(self._finished, [future for _, future in batch]))

    def _finished(self, futures: list[asyncio.Future[Any]], job: asyncio.Future[list[Outcome]]) -> None:
        self.running -= 1
        if job.cancelled():  # the pool shut down with the gateway
            outcomes: list[Outcome] = [(False, RuntimeError("the gateway is stopping"))] * len(futures)
        elif (failure := job.exception()) is not None:
            outcomes = [(False, failure)] * len(futures)
        else:
            outcomes = job.result()
        for future, (ok, value) in zip(futures, outcomes, strict=True):
            if future.done():  # its stream went away meanwhile
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self._start_next()


@dataclass
class StreamService:
    """What every stream of one gateway shares: the model, the inference threads and the per-key counts."""

    settings: GatewaySettings
    models: KwsModels
    executor: ThreadPoolExecutor
    scans: ScanBatcher
    open_per_key: Counter[int] = field(default_factory=Counter)

    @classmethod
    def start(cls, settings: GatewaySettings) -> StreamService:
        threads = settings.stream_inference_threads
        executor = ThreadPoolExecutor(threads, thread_name_prefix="stream-kws")
        return cls(settings, KwsModels(KeywordSpotter.load()), executor, ScanBatcher(executor, threads))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


@dataclass
class StreamScan:
    """One stream's pure state: decoder, detector, byte count and hash. Its methods run in the pool."""

    stream_format: StreamFormat
    detector: StreamingDetector
    decoder: Any = None
    bytes_received: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)

    def __post_init__(self) -> None:
        self.decoder = open_decoder(self.stream_format, self.detector.spotter.metadata.sample_rate)

    @property
    def next_scan_bytes(self) -> int:
        """Raw PCM bytes the detector waits for before its next model run; 0 for compressed formats, whose
        duration is not known before decoding."""
        if self.stream_format.name != "pcm_s16le" or self.stream_format.sample_rate is None:
            return 0
        frames = self.stream_format.sample_rate * self.detector.next_scan_samples
        return frames // self.detector.spotter.metadata.sample_rate * 2 * self.stream_format.channels

    def push(self, data: bytes) -> list[SkipInterval]:
        self.bytes_received += len(data)
        self.sha256.update(data)
        return self.detector.push(self.decoder.push(data))

    def finish(self) -> KwsScan:
        tail: np.ndarray = self.decoder.finish()
        self.detector.push(tail)
        if self.detector.samples_seen == 0:
            raise AudioRejected("empty", "the stream ended without audio samples")
        return self.detector.finish()


@dataclass
class StreamInbox:
    """Audio received and not yet scanned; ``ready`` is set once the detector's next model run's worth is
    here (``wake_bytes``), or at the end.

    ``ended`` is True after the client's ``end``, or the exception that ended the stream.
    """

    wake_bytes: int
    held: bytearray = field(default_factory=bytearray)
    received: int = 0
    ended: bool | BaseException | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, chunk: bytes) -> None:
        self.held += chunk
        self.received += len(chunk)
        if len(self.held) >= self.wake_bytes:
            self.ready.set()

    def expect(self, wake_bytes: int) -> None:
        """The detector's next run needs ``wake_bytes`` (it scans less often while nothing is near)."""
        self.wake_bytes = wake_bytes
        if self.held and len(self.held) >= wake_bytes:
            self.ready.set()

    def end(self, why: bool | BaseException) -> None:
        self.ended = why
        self.ready.set()

    def take(self) -> bytes:
        audio = bytes(self.held)
        self.held.clear()
        return audio


def interval_message(interval: SkipInterval) -> dict[str, object]:
    return {"type": "interval", **interval.to_json_dict()}


def add_stream_route(
    app: FastAPI, streams: StreamService, sessions: Sessions, submitter: JobSubmitter
) -> None:
    """Register ``WS /v1/streams`` on the gateway's app."""

    @app.websocket(STREAMS_PATH)
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await StreamSession(websocket, streams, sessions, submitter).run()
        except StreamClosed as closed:
            log.info("stream closed %d: %s", closed.code, closed.reason)
            await _close(websocket, closed.code, closed.reason)
        except WebSocketDisconnect:
            log.info("stream client went away; nothing stored")
        except Exception:
            log.exception("stream failed")
            await _close(websocket, CLOSE_SERVER_ERROR, "internal error; the stream was not stored")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):  # the client closed first
        await websocket.close(code, reason[:120])  # a close reason must fit in 123 bytes


class StreamSession:
    """One connection from ``start`` to ``final`` (see the module docstring)."""

    def __init__(
        self, websocket: WebSocket, streams: StreamService, sessions: Sessions, submitter: JobSubmitter
    ) -> None:
        self.websocket = websocket
        self.streams = streams
        self.settings = streams.settings
        self.sessions = sessions
        self.submitter = submitter

    async def run(self) -> None:
        api_key_id = await self._authenticate()
        model = await self._scan_model(api_key_id)
        if self.streams.open_per_key[api_key_id] >= self.settings.stream_max_per_key:
            raise StreamClosed(
                CLOSE_TOO_MANY_STREAMS,
                f"this key already has {self.settings.stream_max_per_key} open streams; end one first",
            )
        self.streams.open_per_key[api_key_id] += 1
        try:
            await self._stream(api_key_id, model)
        finally:
            self.streams.open_per_key[api_key_id] -= 1
            if self.streams.open_per_key[api_key_id] <= 0:
                del self.streams.open_per_key[api_key_id]

    async def _authenticate(self) -> int:
        raw_key = self.websocket.headers.get("x-api-key")
        if not raw_key:
            raise StreamClosed(CLOSE_UNAUTHORISED, "send your API key in the X-API-Key header")
        async with self.sessions() as session:
            api_key = await repository.find_api_key(session, raw_key)
        if api_key is None:
            raise StreamClosed(CLOSE_UNAUTHORISED, "this API key is not valid")
        return api_key.id

    async def _scan_model(self, api_key_id: int) -> ScanModel:
        """The base model, or the ``?voice_id=`` voice's; a voice that cannot be used closes the stream
        before any audio is taken."""
        voice_id = self.websocket.query_params.get("voice_id")
        if voice_id is None:
            return self.streams.models.base
        if re.fullmatch(VOICE_ID_PATTERN, voice_id) is None:
            raise StreamClosed(CLOSE_POLICY, "voice_id must be a voice_id as POST /v1/voices returned it")
        try:
            return await self.streams.models.for_voice(self.sessions, voice_id, api_key_id)
        except VoiceUnusable as unusable:
            code = CLOSE_UNKNOWN_VOICE if unusable.status == 404 else CLOSE_VOICE_NOT_READY
            raise StreamClosed(code, unusable.message) from None

    async def _stream(self, api_key_id: int, model: ScanModel) -> None:
        received_at = utc_now()
        spotter = model.spotter
        scan = StreamScan(
            self._declared_format(await self._receive_start()),
            StreamingDetector.with_lookahead_ms(
                spotter,
                self.settings.stream_lookahead_ms,
                self.settings.stream_scan_hop_ms,
                self.settings.stream_confirm_ms,
                self.settings.stream_idle_scan_hop_ms,
            ),
        )
        await self._send(
            {
                "type": "started",
                "protocol": PROTOCOL_VERSION,
                "model_version": model.version,
                "voice_id": model.voice_id,
                "sample_rate": spotter.metadata.sample_rate,
                "limits": {
                    "max_duration_s": self.settings.stream_max_duration_s,
                    "max_bytes": self.settings.stream_max_bytes,
                    "max_message_bytes": self.settings.stream_max_message_bytes,
                    "idle_timeout_s": self.settings.stream_idle_timeout_s,
                },
            }
        )
        await self._scan_as_received(scan)
        result = await self._in_pool(scan.finish, scan)
        track_id = scan.sha256.hexdigest()
        outcome = await self.submitter.submit_stream_result(
            result.to_result(track_id, received_at, model.voice_id), scan.bytes_received, api_key_id
        )
        answer = result.to_json_dict()
        await self._send(
            {
                "type": "final",
                "track_id": track_id,
                "duration_ms": answer["duration_ms"],
                "intervals": answer["intervals"],
                "model_version": answer["model_version"],
                "voice_id": model.voice_id,
                "threshold": answer["threshold"],
                "stored": outcome == "accepted",
            }
        )
        log.info("stream %s: %d ms, %d interval(s), %s", track_id, answer["duration_ms"],
                 len(answer["intervals"]), outcome)  # fmt: skip
        await _close(self.websocket, CLOSE_DONE, "done")

    async def _scan_as_received(self, scan: StreamScan) -> None:
        """Receive and scan side by side until ``end``; audio that arrives meanwhile is scanned together.

        The receiver only appends to ``inbox`` (no per-message queue item or wake-up) and wakes the scanner
        once a model run's worth has gathered. Under load a stream's audio piles up while it waits for an
        inference thread, and the next scan takes it all at once: one model call instead of many, so a busy
        gateway sheds per-call overhead instead of falling further behind. The inbox is bounded by the
        stream's byte limit.
        """
        inbox = StreamInbox(scan.next_scan_bytes)
        receiver = asyncio.create_task(self._receive_into(inbox))
        try:
            while True:
                await inbox.ready.wait()
                inbox.ready.clear()
                ended, audio = inbox.ended, inbox.take()  # what arrives during the scan waits for the next
                if audio:
                    for interval in await self._in_pool(partial(scan.push, audio), scan):
                        await self._send(interval_message(interval))
                    inbox.expect(scan.next_scan_bytes)
                if isinstance(ended, BaseException):
                    raise ended
                if ended:
                    return
        finally:
            receiver.cancel()

    async def _receive_into(self, inbox: StreamInbox) -> None:
        """Audio chunks into ``inbox`` until ``end``, or the error that ended the stream."""
        try:
            while (chunk := await self._receive_audio()) is not None:
                if inbox.received + len(chunk) > self.settings.stream_max_bytes:
                    limit_mb = self.settings.stream_max_bytes / 1e6
                    raise StreamClosed(
                        CLOSE_TOO_BIG, f"the stream is larger than the limit of {limit_mb:.1f} MB"
                    )
                inbox.add(chunk)
            inbox.end(True)
        except Exception as ended:  # a close, a disconnect, or a failure the scanning side reports
            inbox.end(ended)

    async def _in_pool(self, work: Callable[[], T], scan: StreamScan) -> T:
        """Run decoding and the model off the event loop; a bad chunk or a limit becomes a close."""
        try:
            result = await self.streams.scans.run(work)
        except AudioRejected as rejected:
            raise StreamClosed(CLOSE_BAD_AUDIO, f"{rejected.code}: {rejected.detail}") from rejected
        limit_s = self.settings.stream_max_duration_s
        if scan.detector.received_ms > limit_s * 1000:
            raise StreamClosed(CLOSE_TOO_BIG, f"the stream is longer than the limit of {limit_s:.0f} s")
        return result

    async def _receive(self) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self.settings.stream_idle_timeout_s):  # no task per message
                message = await self.websocket.receive()
        except TimeoutError:
            raise StreamClosed(
                CLOSE_IDLE, f"nothing received for {self.settings.stream_idle_timeout_s:.0f} s"
            ) from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        return message

    async def _receive_start(self) -> StartMessage:
        message = await self._receive()
        if message.get("text") is None:
            raise StreamClosed(CLOSE_POLICY, "the first message must be a JSON 'start' message, not audio")
        try:
            start = StartMessage.model_validate_json(message["text"])
        except ValidationError as error:
            raise StreamClosed(CLOSE_POLICY, f"bad start message: {error.errors()[0]['msg']}") from None
        if start.type != "start":
            raise StreamClosed(CLOSE_POLICY, f"expected a 'start' message, got {start.type!r}")
        return start

    def _declared_format(self, start: StartMessage) -> StreamFormat:
        stream_format = StreamFormat(start.format, start.sample_rate, start.channels)  # type: ignore[arg-type]
        try:
            stream_format.check()
        except UnsupportedFormat as unsupported:
            raise StreamClosed(CLOSE_UNSUPPORTED, str(unsupported)) from None
        return stream_format

    async def _receive_audio(self) -> bytes | None:
        """The next audio chunk, or None at the client's ``end``."""
        message = await self._receive()
        if message.get("bytes") is not None:
            chunk: bytes = message["bytes"]
            if len(chunk) > self.settings.stream_max_message_bytes:
                raise StreamClosed(
                    CLOSE_TOO_BIG, f"an audio message is over {self.settings.stream_max_message_bytes} bytes"
                )
            return chunk
        try:
            control = json.loads(message.get("text") or "")
        except json.JSONDecodeError:
            raise StreamClosed(CLOSE_POLICY, "a text message must be JSON") from None
        if not isinstance(control, dict) or control.get("type") != "end":
            raise StreamClosed(CLOSE_POLICY, "after 'start' send binary audio messages, then {'type': 'end'}")
        return None

    async def _send(self, message: dict[str, object]) -> None:
        """Send, but give up on a client that stops reading (its buffer would grow without bound)."""
        try:
            async with asyncio.timeout(self.settings.stream_idle_timeout_s):
                await self.websocket.send_json(message)
        except TimeoutError:
            raise StreamClosed(CLOSE_IDLE, "the client stopped reading") from None
