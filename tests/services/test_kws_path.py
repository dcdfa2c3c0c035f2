"""The kws path through real processes: blob + job → kws worker → store → GET skip-kws, and bad tracks."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.blobs import blob_path, sha256_hex, write_blob
from services.common.contracts import AudioPayload, KwsJob, scan_key
from services.common.topology import JOBS_EXCHANGE, KWS_SCAN_QUEUE, STORE_RESULTS_QUEUE
from services.kws.spotter import KeywordSpotter
from services.store import repository
from tests.audio_files import encode, tone
from tests.services.harness import BrokerProbe, DatabaseProbe, eventually, wait_until_serving
from tests.services.messages import kws_job

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples" / "playback").glob("*.*"))
SAMPLES = [path for path in SAMPLES if path.suffix.lower() in {".wav", ".ogg", ".flac", ".mp3", ".m4a"}]
MODEL_VERSION = KeywordSpotter.load().model_version  # what the worker runs, read from the model


@pytest.fixture(scope="module")
def spotter() -> KeywordSpotter:
    return KeywordSpotter.load()


def playback_track() -> bytes:
    """A committed playback sample when there is one; the answer is compared with the model's own."""
    if SAMPLES:
        return SAMPLES[0].read_bytes()
    return encode(tone(5.0, 16000, frequency=523.0), 16000, "wav")


async def start_kws_path(start_service, broker: BrokerProbe, store_url: str) -> None:
    store = start_service("store")
    worker = start_service("kws")
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE, started=store)
    await broker.wait_for_consumers(KWS_SCAN_QUEUE, started=worker)
    await wait_until_serving(store_url, store)


async def post_track(
    broker: BrokerProbe,
    sessions: async_sessionmaker[AsyncSession],
    blob_dir: Path,
    audio: bytes,
    model_version: str = MODEL_VERSION,
) -> str:
    """What the gateway does for POST /v1/tracks: write the blob, claim the scan, publish the job."""
    track_id = write_blob(audio, blob_dir)
    async with sessions() as session:
        await repository.claim_track(session, track_id, len(audio), None)
        await repository.claim_scan(session, track_id, None, model_version)
    job = kws_job(track_id, len(audio), model_version)
    key = scan_key(track_id, None, model_version)
    await broker.publish(job, JOBS_EXCHANGE, KWS_SCAN_QUEUE, message_id=key)
    return track_id


async def test_a_track_is_scanned_stored_served_and_its_audio_deleted(
    start_service,
    broker: BrokerProbe,
    sessions: async_sessionmaker[AsyncSession],
    blob_dir: Path,
    api_key: str,
    store_url: str,
    spotter: KeywordSpotter,
) -> None:
    await start_kws_path(start_service, broker, store_url)
    audio = playback_track()

    track_id = await post_track(broker, sessions, blob_dir, audio)

    async with httpx.AsyncClient(base_url=store_url, timeout=40) as client:
        response = await client.get(
            f"/v1/tracks/{track_id}/skip-kws", params={"wait": 30}, headers={"X-API-Key": api_key}
        )
    assert response.status_code == 200, response.text
    expected = spotter.scan(audio).to_json_dict()
    answer = response.json()
    assert answer["skip_kws"] == expected["intervals"]
    assert (answer["duration_ms"], answer["model_version"]) == (
        expected["duration_ms"],
        expected["model_version"],
    )

    async def audio_deleted() -> bool:
        return not blob_path(track_id, blob_dir).exists()

    await eventually(audio_deleted, 10, "the track's blob to be deleted")


async def test_a_track_that_is_not_audio_is_rejected_with_a_clear_recorded_error(
    start_service,
    broker: BrokerProbe,
    sessions: async_sessionmaker[AsyncSession],
    database: DatabaseProbe,
    blob_dir: Path,
    api_key: str,
    store_url: str,
) -> None:
    await start_kws_path(start_service, broker, store_url)
    tracks = {
        "not_audio": await post_track(broker, sessions, blob_dir, b"<html>not a song</html>\n" * 40),
        "corrupt": await post_track(broker, sessions, blob_dir, b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(300)),
    }

    async with httpx.AsyncClient(base_url=store_url, timeout=40) as client:
        for code, track_id in tracks.items():
            response = await client.get(
                f"/v1/tracks/{track_id}/skip-kws", params={"wait": 30}, headers={"X-API-Key": api_key}
            )
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == code
            assert len(response.json()["error"]["message"]) > 20
    rows = await database.rows(
        "SELECT error_code FROM kws_results WHERE track_id = ANY(:ids) ORDER BY error_code",
        ids=list(tracks.values()),
    )
    assert [row["error_code"] for row in rows] == ["corrupt", "not_audio"]


async def test_a_scan_delivered_twice_stores_one_answer_and_acks_both(
    start_service,
    broker: BrokerProbe,
    sessions: async_sessionmaker[AsyncSession],
    database: DatabaseProbe,
    blob_dir: Path,
    api_key: str,
    store_url: str,
) -> None:
    await start_kws_path(start_service, broker, store_url)
    audio = playback_track()
    track_id = sha256_hex(audio)
    async with sessions() as session:
        await repository.claim_scan(session, track_id, None, MODEL_VERSION)
    job = KwsJob(
        track_id=track_id,
        audio=AudioPayload(inline=audio, size_bytes=len(audio)),
        model_version=MODEL_VERSION,
    )
    key = scan_key(track_id, None, MODEL_VERSION)
    for _ in range(2):
        await broker.publish(job, JOBS_EXCHANGE, KWS_SCAN_QUEUE, message_id=key)

    async def both_answered() -> bool:
        ready, _ = await broker.ready_and_consumers(STORE_RESULTS_QUEUE)
        scans, _ = await broker.ready_and_consumers(KWS_SCAN_QUEUE)
        stored = await database.count("kws_results", "track_id = :t", t=track_id)
        unacked = broker.unacked(KWS_SCAN_QUEUE) + broker.unacked(STORE_RESULTS_QUEUE)
        return stored == 1 and ready == scans == unacked == 0

    await eventually(both_answered, 30, "both deliveries answered and acked")
    rows = await database.rows("SELECT model_version FROM kws_results WHERE track_id = :t", t=track_id)
    assert rows == [{"model_version": MODEL_VERSION}]
    assert await database.count("errors", "key = :k", k=key) == 0


async def test_a_scan_claimed_for_another_model_version_fails_and_says_why(
    start_service,
    broker: BrokerProbe,
    sessions: async_sessionmaker[AsyncSession],
    blob_dir: Path,
    api_key: str,
    store_url: str,
) -> None:
    store = start_service("store")
    worker = start_service("kws", EARSHOT_MAX_ATTEMPTS="1")
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE, started=store)
    await broker.wait_for_consumers(KWS_SCAN_QUEUE, started=worker)
    await wait_until_serving(store_url, store)
    other = "0.0.1+another-model"
    track_id = await post_track(broker, sessions, blob_dir, playback_track(), model_version=other)

    async with httpx.AsyncClient(base_url=store_url, timeout=40) as client:
        response = await client.get(
            f"/v1/tracks/{track_id}/skip-kws", params={"wait": 30}, headers={"X-API-Key": api_key}
        )
    assert response.status_code == 500, response.text
    message = response.json()["error"]["message"]
    assert other in message and MODEL_VERSION in message, message
