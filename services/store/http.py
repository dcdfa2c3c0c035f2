"""The store's HTTP API (port 8081): ``skip_kws`` results for client apps, request lookups, health.

Authentication: ``GET /v1/tracks/{track_id}/skip-kws`` and ``GET /v1/requests/{id}`` require the same
``X-API-Key`` a client uses for ``POST /v1/tracks`` on the gateway. A track id is the sha256 of public
playback audio, so anyone holding the audio could otherwise read its result, and request ids are guessable
(``tg:<chat_id>:<message_id>``) while their results concern a family. Any live key may read any track: the
result depends only on the audio, never on who posted it. ``/healthz`` and ``/readyz`` are open.

``?voice_id=`` reads the track's scan with that enrolled voice; voices (``GET``/``DELETE /v1/voices/{id}``)
belong to the key that enrolled them, and another key gets 404, as for a voice that does not exist.

``skip-kws`` answers:
- 200 with the intervals once done; results are immutable, so the answer carries an ``ETag`` and
  ``Cache-Control: immutable``, and a request with a matching ``If-None-Match`` gets 304;
- 202 while pending (after long-polling up to ``?wait=`` seconds, capped by ``EARSHOT_MAX_WAIT_S``);
- 404 for a track nobody posted; 422 when the track was rejected (the error says why: empty, corrupt…);
- 500 when the worker gave up on the track after its retries.
"""

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.contracts import VOICE_ID_PATTERN
from services.common.metrics import instrument_app
from services.store import repository
from services.store.models import ApiKey, Voice
from services.store.ops import ops_router
from services.store.results import DatabaseHealth, TrackSignals
from services.store.settings import StoreSettings

# While long-polling, the store re-reads the database at least this often: a result stored by another store
# process does not wake this process's waiters.
POLL_INTERVAL_S = 1.0
IMMUTABLE_CACHE = "private, max-age=31536000, immutable"
TrackId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="sha256 of the track's audio bytes")]
VoiceIdPath = Annotated[str, Path(pattern=VOICE_ID_PATTERN, description="from POST /v1/voices")]


def create_app(
    sessions: async_sessionmaker[AsyncSession],
    settings: StoreSettings,
    health: DatabaseHealth,
    signals: TrackSignals,
    broker_ready: Callable[[], bool] = lambda: True,
) -> FastAPI:
    """The FastAPI app; ``broker_ready`` tells ``/readyz`` whether the results consumer is connected."""
    app = FastAPI(title="Earshot store", version="1")
    instrument_app(app, "store")
    app.include_router(ops_router(sessions, settings))

    # Each database read takes a pooled connection only for its own duration, so a long-poll does not
    # hold a connection while it waits.
    async def api_key(x_api_key: Annotated[str | None, Header()] = None) -> ApiKey:
        if not x_api_key:
            raise HTTPException(401, "Send your API key in the X-API-Key header.")
        async with sessions() as db:
            key = await repository.find_api_key(db, x_api_key)
        if key is None:
            raise HTTPException(401, "This API key is not valid.")
        return key

    async def track_status(track_id: str, voice_id: str | None) -> repository.TrackStatus:
        async with sessions() as db:
            return await repository.track_status(db, track_id, voice_id)

    async def owned_voice(voice_id: str, key: ApiKey) -> Voice:
        async with sessions() as db:
            voice = await repository.find_voice(db, voice_id, key.id)
        if voice is None:
            raise HTTPException(404, f"No voice {voice_id} for this API key.")
        return voice

    @app.get("/v1/tracks/{track_id}/skip-kws")
    async def skip_kws(
        track_id: TrackId,
        request: Request,
        key: Annotated[ApiKey, Depends(api_key)],
        wait: Annotated[float, Query(ge=0, description="seconds to long-poll while pending")] = 0.0,
        voice_id: Annotated[str | None, Query(pattern=VOICE_ID_PATTERN)] = None,
    ) -> Response:
        if voice_id is not None:
            await owned_voice(voice_id, key)
        deadline = time.monotonic() + min(wait, settings.max_wait_s)
        status = await track_status(track_id, voice_id)
        while status.state == "pending" and (remaining := deadline - time.monotonic()) > 0:
            await signals.wait(track_id, min(remaining, POLL_INTERVAL_S))
            status = await track_status(track_id, voice_id)
        return track_response(track_id, status, request.headers.get("if-none-match"))

    @app.get("/v1/voices/{voice_id}")
    async def get_voice(voice_id: VoiceIdPath, key: Annotated[ApiKey, Depends(api_key)]) -> dict:
        """Status of an enrollment and, once ready, its validation figures (base against adapted)."""
        return repository.voice_summary(await owned_voice(voice_id, key))

    @app.delete("/v1/voices/{voice_id}", status_code=204)
    async def delete_voice(voice_id: VoiceIdPath, key: Annotated[ApiKey, Depends(api_key)]) -> Response:
        """Delete the voice's artefact and every result cached for it."""
        async with sessions() as db:
            deleted = await repository.delete_voice(db, voice_id, key.id)
        if not deleted:
            raise HTTPException(404, f"No voice {voice_id} for this API key.")
        return Response(status_code=204)

    @app.get("/v1/requests/{request_id}")
    async def get_request(request_id: str, _key: Annotated[ApiKey, Depends(api_key)]) -> dict:
        async with sessions() as db:
            summary = await repository.request_summary(db, request_id)
        if summary is None:
            raise HTTPException(404, f"No request {request_id}.")
        return summary

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        problems = []
        if not await database_answers(sessions):
            problems.append("database unreachable")
        elif not health.reachable:
            problems.append(f"results consumer cannot write: {health.last_error}")
        if not broker_ready():
            problems.append("not connected to RabbitMQ")
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app


async def database_answers(sessions: async_sessionmaker[AsyncSession], timeout_s: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(timeout_s), sessions() as db:
            await db.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def track_response(track_id: str, status: repository.TrackStatus, if_none_match: str | None) -> Response:
    """The HTTP answer for a track in ``status`` (see the module docstring for the codes)."""
    if status.state == "unknown":
        return JSONResponse(
            {"detail": f"No track {track_id}. POST it to the gateway first."}, status_code=404
        )
    if status.state == "pending":
        return JSONResponse(
            {"track_id": track_id, "status": "pending"}, status_code=202, headers={"Retry-After": "1"}
        )
    if status.state == "failed":
        error = status.error
        body = {
            "track_id": track_id,
            "status": "failed",
            "error": {"code": error.error_code, "message": error.error_message},
        }
        return JSONResponse(body, status_code=500)
    result = status.result
    if status.state == "rejected":
        body = {
            "track_id": track_id,
            "status": "rejected",
            "error": {"code": result.error_code, "message": result.error_message},
        }
        return JSONResponse(body, status_code=422)
    body = {
        "track_id": track_id,
        "status": "done",
        "duration_ms": result.duration_ms,
        "skip_kws": result.intervals,
        "model_version": result.model_version,
        "threshold": result.threshold,
    }
    content = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE_CACHE}
    if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)
