"""POST /v1/tracks over real HTTP against the real broker and database."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from services.common.blobs import read_blob
from services.common.contracts import JobFailed, KwsJob
from services.common.topology import KWS_SCAN_QUEUE, STORE_RESULTS_QUEUE
from tests.audio_files import encode, tone

from .conftest import TEST_INLINE_MAX_BYTES, TEST_MAX_UPLOAD_BYTES

TRACK = encode(tone(2.0, 16000, frequency=523.0), 16000, "ogg")


async def post_track(gateway, content=None, *, key: str | None, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["X-API-Key"] = key
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        return await client.post("/v1/tracks", content=content, headers=headers, **kwargs)


async def test_api_key_missing_wrong_and_right(start_gateway, broker, api_key) -> None:
    gateway = await start_gateway(telegram_token=None)

    missing = await post_track(gateway, TRACK, key=None)
    wrong = await post_track(gateway, TRACK, key="ek_not-a-real-key")
    right = await post_track(gateway, TRACK, key=api_key)

    assert (missing.status_code, missing.json()["error"]) == (401, "missing_api_key")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_api_key")
    assert right.status_code == 202
    assert right.json()["track_id"] == hashlib.sha256(TRACK).hexdigest()
    assert len(await broker.drain(KWS_SCAN_QUEUE)) == 1


async def test_same_track_twice_gives_the_same_id_and_one_job(start_gateway, broker, api_key) -> None:
    gateway = await start_gateway(telegram_token=None)
    audio = encode(tone(2.0, 16000, frequency=587.0), 16000, "wav")

    first = await post_track(gateway, audio, key=api_key, headers={"Content-Type": "audio/wav"})
    second = await post_track(gateway, files={"file": ("track.wav", audio, "audio/wav")}, key=api_key)

    assert first.status_code == second.status_code == 202
    assert first.json()["track_id"] == second.json()["track_id"] == hashlib.sha256(audio).hexdigest()
    assert (first.json()["status"], second.json()["status"]) == ("accepted", "duplicate")
    jobs = [KwsJob.model_validate_json(m.body) for m in await broker.drain(KWS_SCAN_QUEUE)]
    assert [job.track_id for job in jobs] == [first.json()["track_id"]]


async def test_small_track_rides_inline_and_large_one_goes_by_blob(start_gateway, broker, api_key) -> None:
    gateway = await start_gateway(telegram_token=None)
    small = encode(tone(0.5, 8000, frequency=300.0), 8000, "wav")
    large = encode(tone(4.0, 16000, frequency=310.0), 16000, "wav")
    assert len(small) <= TEST_INLINE_MAX_BYTES < len(large) <= TEST_MAX_UPLOAD_BYTES

    for audio in (small, large):
        assert (await post_track(gateway, audio, key=api_key)).status_code == 202

    small_job, large_job = (KwsJob.model_validate_json(m.body) for m in await broker.drain(KWS_SCAN_QUEUE))
    assert small_job.audio.inline == small and small_job.audio.blob_sha256 is None
    assert large_job.audio.inline is None and read_blob(large_job.audio.blob_sha256) == large


async def test_size_limit_is_checked_before_the_body_is_read_whole(start_gateway, broker, api_key) -> None:
    gateway = await start_gateway(telegram_token=None)
    too_big = bytes(TEST_MAX_UPLOAD_BYTES + 1)

    async def streamed():  # no Content-Length: the limit must hold while the body streams in
        for start in range(0, len(too_big), 65536):
            yield too_big[start : start + 65536]

    declared = await post_track(gateway, too_big, key=api_key)
    chunked = await post_track(gateway, streamed(), key=api_key)
    multipart = await post_track(gateway, files={"file": ("big.wav", too_big)}, key=api_key)

    for response in (declared, chunked, multipart):
        assert response.status_code == 413
        assert response.json()["error"] == "too_large"
    assert await broker.drain(KWS_SCAN_QUEUE) == []


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("empty", 422, "empty"),
        ("corrupt", 422, "corrupt"),
        ("not_audio", 415, "not_audio"),
        ("overlong", 422, "too_long"),
    ],
)
async def test_bad_audio_is_refused_with_a_clear_json_error_and_recorded(
    start_gateway, broker, api_key, case, status, code
) -> None:
    gateway = await start_gateway(telegram_token=None)
    body = {
        "empty": b"",
        "corrupt": b"RIFF" + bytes(100),
        "not_audio": b"<html>this is a web page</html>",
        "overlong": encode(tone(31.0, 4000), 4000, "wav"),
    }[case]

    response = await post_track(
        gateway, body, key=api_key, headers={"Content-Type": "application/octet-stream"}
    )

    assert response.status_code == status
    assert response.json()["error"] == code and response.json()["message"]
    assert await broker.drain(KWS_SCAN_QUEUE) == []
    failures = [JobFailed.model_validate_json(m.body) for m in await broker.drain(STORE_RESULTS_QUEUE)]
    assert [(f.job_kind, f.key, f.error_code) for f in failures] == [
        ("kws.scan", hashlib.sha256(body).hexdigest(), code)
    ]


async def test_json_body_is_refused_as_unsupported_media_type(start_gateway, broker, api_key) -> None:
    gateway = await start_gateway(telegram_token=None)

    response = await post_track(gateway, key=api_key, json={"audio": "base64..."})

    assert (response.status_code, response.json()["error"]) == (415, "unsupported_media_type")


async def test_health_and_readiness(start_gateway) -> None:
    gateway = await start_gateway(telegram_token=None)

    async with httpx.AsyncClient(base_url=gateway.url) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")

    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"broker": True, "database": True}}
