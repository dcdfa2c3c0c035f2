"""Answers are cached per (track, model version, voice): a new model scans again, a repeat does not.

The gateway runs in-process, the store and the kws worker as real programs. An answer of an "older model" is
put in the store the way one was stored before: a claim of the scan for that version and its result.
"""

from __future__ import annotations

import uuid

import httpx
import soundfile

from services.common.blobs import sha256_hex
from services.common.contracts import KwsResult, SkipInterval, scan_key, utc_now
from services.common.topology import KWS_RESULT_KEY, KWS_SCAN_QUEUE, RESULTS_EXCHANGE, STORE_RESULTS_QUEUE
from services.kws.spotter import KeywordSpotter
from services.store import repository
from tests.audio_files import encode
from tests.services.gateway.test_voices import PLAYBACK_DIR, start_stack
from tests.services.harness import eventually

OLDER_MODEL = "0.9.0+older"


def unique_keyword_track() -> bytes:
    """The committed keyword clip with one sample changed: bytes no other test of the run has posted."""
    samples = soundfile.read(PLAYBACK_DIR / "keyword.flac", dtype="float32")[0]
    samples[0] = uuid.uuid4().int % 1000 / 1e6
    return encode(samples, 16000, "wav")


async def test_a_track_answered_by_an_older_model_is_scanned_again_then_answered_from_the_store(
    start_gateway, start_service, store_url, broker, api_key, sessions, database
) -> None:
    gateway = await start_stack(start_gateway, start_service, store_url, broker)
    track = unique_keyword_track()
    track_id = sha256_hex(track)
    async with sessions() as session:
        await repository.claim_track(session, track_id, len(track), None)
        await repository.claim_scan(session, track_id, None, OLDER_MODEL)
    stale = KwsResult(
        track_id=track_id,
        status="done",
        duration_ms=6600,
        intervals=[SkipInterval(start_ms=0, end_ms=10, score=0.5)],
        model_version=OLDER_MODEL,
        threshold=0.5,
        received_at=utc_now(),
    )
    key = scan_key(track_id, None, OLDER_MODEL)
    await broker.publish(stale, RESULTS_EXCHANGE, KWS_RESULT_KEY, message_id=key)
    headers = {"X-API-Key": api_key}
    url = f"{store_url}/v1/tracks/{track_id}/skip-kws"
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:

        async def older_served() -> bool:
            return (await client.get(url)).status_code == 200

        await eventually(older_served, 20, "the older model's answer to be stored")
        assert (await client.get(url)).json()["model_version"] == OLDER_MODEL

        posted = await client.post(f"{gateway.url}/v1/tracks", content=track)
        assert (posted.status_code, posted.json()["status"]) == (202, "accepted"), "scanned again"
        fresh = await client.get(url, params={"wait": 30})
        assert fresh.status_code == 200, fresh.text
        current = KeywordSpotter.load().scan(track)
        assert fresh.json()["model_version"] == current.model_version != OLDER_MODEL
        assert fresh.json()["skip_kws"] == current.to_json_dict()["intervals"]

        repeat = await client.post(f"{gateway.url}/v1/tracks", content=track)
        assert (repeat.status_code, repeat.json()["status"]) == (202, "duplicate")

    async def settled() -> bool:
        ready, _ = await broker.ready_and_consumers(STORE_RESULTS_QUEUE)
        return ready == broker.unacked(STORE_RESULTS_QUEUE) == 0

    await eventually(settled, 20, "the store to take every result")
    assert await broker.drain(KWS_SCAN_QUEUE) == [], "the repeat made no job"
    rows = await database.rows(
        "SELECT model_version FROM kws_results WHERE track_id = :t ORDER BY stored_at", t=track_id
    )
    assert [row["model_version"] for row in rows] == [OLDER_MODEL, current.model_version]
