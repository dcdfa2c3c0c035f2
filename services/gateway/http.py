"""HTTP ingest for client apps (FastAPI): ``POST /v1/tracks``, health, and the Telegram webhook when enabled.

A client posts a playback track (the raw audio as the body, or a multipart form with one file) with its
``X-API-Key``. The key is checked before the body is read; the size limit is checked against the declared
``Content-Length`` and again while the body streams in, so an oversized upload is refused without being
read whole. The answer is 202 with the track's sha256 as ``track_id``; the intervals are fetched from the
store (``GET /v1/tracks/{track_id}/skip-kws``). Errors are JSON: ``{"error": <code>, "message": <text>}``.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Annotated

from aio_pika.abc import AbstractRobustConnection
from aiogram import Bot, Dispatcher
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import UploadFile

from services.common.audio import AudioErrorCode
from services.common.contracts import VOICE_ID_PATTERN
from services.common.metrics import instrument_app
from services.gateway.jobs import JobSubmitter
from services.gateway.settings import GatewaySettings
from services.gateway.streams import StreamService, VoiceUnusable, add_stream_route
from services.store import repository
from services.store.models import ApiKey

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 16 * 1024

_STATUS_FOR_REJECTION: dict[AudioErrorCode, int] = {
    "too_large": 413,
    "not_audio": 415,
    "empty": 422,
    "corrupt": 422,
    "too_long": 422,
}


@dataclass
class TelegramWebhook:
    """What the webhook route needs: the bot, its dispatcher and the secret Telegram must echo."""

    bot: Bot
    dispatcher: Dispatcher
    secret: str


@dataclass
class GatewayHttp:
    """The HTTP side's dependencies, built once by the gateway's runtime."""

    settings: GatewaySettings
    submitter: JobSubmitter
    sessions: async_sessionmaker[AsyncSession]
    broker: AbstractRobustConnection
    streams: StreamService  # also the kws model whose version every scan is claimed for
    webhook: TelegramWebhook | None = None


class UploadTooLarge(Exception):
    pass


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def create_app(gateway: GatewayHttp) -> FastAPI:
    app = FastAPI(title="Earshot gateway", summary="Playback tracks in, skip_kws jobs out.")
    instrument_app(app, "gateway")
    settings = gateway.settings
    limit = settings.max_upload_bytes

    @app.post("/v1/tracks", status_code=202)
    async def post_track(
        request: Request, voice_id: Annotated[str | None, Query(pattern=VOICE_ID_PATTERN)] = None
    ) -> JSONResponse:
        """Accept a playback track for a wake-word scan; the same audio twice gives the same ``track_id``.
        With ``voice_id`` (an enrolled, ready voice of this key) the track is scanned with that voice."""
        api_key = await authenticate(gateway, request)
        if isinstance(api_key, JSONResponse):
            return api_key
        models = gateway.streams.models
        try:
            model = (
                models.base
                if voice_id is None
                else await models.for_voice(gateway.sessions, voice_id, api_key.id)
            )
        except VoiceUnusable as unusable:
            return error(unusable.status, unusable.code, unusable.message)
        try:
            audio = await read_upload(request, limit)
        except UploadTooLarge:
            return error(413, "too_large", f"The upload is larger than the limit of {limit / 1e6:.1f} MB.")
        except UnsupportedUpload as unsupported:
            return error(unsupported.status, unsupported.code, unsupported.message)
        admission = await gateway.submitter.submit_track(
            audio, api_key.id, settings.track_limits, model.version, model.voice
        )
        log.info("track %s: %s", admission.key, admission.outcome)
        if admission.rejection is not None:
            rejection = admission.rejection
            return error(_STATUS_FOR_REJECTION[rejection.code], rejection.code, rejection.message)
        return JSONResponse(
            {
                "track_id": admission.key,
                "status": admission.outcome,
                "skip_kws_url": f"{settings.store_public_url}/v1/tracks/{admission.key}/skip-kws"
                + (f"?voice_id={voice_id}" if voice_id else ""),
            },
            status_code=202,
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = {
            "broker": not gateway.broker.is_closed,
            "database": await database_reachable(gateway.sessions),
        }
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    add_stream_route(app, gateway.streams, gateway.sessions, gateway.submitter)
    if gateway.webhook is not None:
        add_webhook_route(app, settings.telegram_webhook_path, gateway.webhook)
    from services.gateway.voices import add_voice_routes  # that module builds on this one

    add_voice_routes(app, gateway)
    return app


async def authenticate(gateway: GatewayHttp, request: Request) -> ApiKey | JSONResponse:
    """The request's live API key, or the 401 answer to send."""
    raw_key = request.headers.get(API_KEY_HEADER)
    if not raw_key:
        return error(401, "missing_api_key", f"Send your API key in the {API_KEY_HEADER} header.")
    async with gateway.sessions() as session:
        api_key = await repository.find_api_key(session, raw_key)
    if api_key is None:
        return error(401, "invalid_api_key", "This API key is not valid.")
    return api_key


def add_webhook_route(app: FastAPI, path: str, webhook: TelegramWebhook) -> None:
    """Telegram posts updates here; only requests carrying the secret token are believed."""

    @app.post(path, include_in_schema=False)
    async def telegram_update(request: Request) -> JSONResponse:
        offered = request.headers.get(TELEGRAM_SECRET_HEADER, "")
        if not hmac.compare_digest(offered.encode(), webhook.secret.encode()):
            return error(401, "bad_secret_token", f"The {TELEGRAM_SECRET_HEADER} header does not match.")
        # An exception propagates as a 500, so Telegram delivers the update again later.
        await webhook.dispatcher.feed_webhook_update(webhook.bot, await request.json())
        return JSONResponse({"ok": True})


class UnsupportedUpload(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def read_upload(request: Request, limit: int) -> bytes:
    """The uploaded audio, from a raw body or a multipart form; raises ``UploadTooLarge`` past ``limit``."""
    content_type = request.headers.get("content-type", "").lower()
    declared_length = request.headers.get("content-length")
    if content_type.startswith("multipart/form-data"):
        if declared_length is None:
            raise UnsupportedUpload(
                411, "length_required", "A multipart upload needs a Content-Length header."
            )
        if int(declared_length) > limit + MULTIPART_OVERHEAD_BYTES:
            raise UploadTooLarge
        return await read_multipart_file(request, limit)
    if content_type.startswith(("application/json", "text/", "application/x-www-form-urlencoded")):
        raise UnsupportedUpload(
            415,
            "unsupported_media_type",
            "Send the audio bytes as the body (e.g. Content-Type: audio/ogg) or as multipart/form-data "
            "with one file field.",
        )
    if declared_length is not None and int(declared_length) > limit:
        raise UploadTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise UploadTooLarge
    return bytes(body)


async def read_multipart_file(request: Request, limit: int) -> bytes:
    async with request.form(max_files=1, max_fields=8) as form:
        files = [value for value in form.values() if isinstance(value, UploadFile)]
        if not files:
            raise UnsupportedUpload(422, "missing_file", "The multipart form has no file field.")
        data = await files[0].read(limit + 1)
    if len(data) > limit:
        raise UploadTooLarge
    return data


async def database_reachable(sessions: async_sessionmaker[AsyncSession]) -> bool:
    try:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as failure:
        log.warning("database not reachable: %s", failure)
        return False
    return True
