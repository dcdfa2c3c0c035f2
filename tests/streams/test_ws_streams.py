"""``WS /v1/streams`` through a real gateway (real RabbitMQ vhost and PostgreSQL database of the run).

The client is the repository's own ``earshot_client``; the store runs as a real process where a test needs
the stored result.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets
from earshot_client import Interval, MicGate, StreamError, skip_kws, stream

from services.common.audio import decode_audio
from services.common.topology import STORE_RESULTS_QUEUE
from services.gateway.streams import (
    CLOSE_BAD_AUDIO,
    CLOSE_IDLE,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TOO_MANY_STREAMS,
    CLOSE_UNAUTHORISED,
    CLOSE_UNSUPPORTED,
)
from services.kws.playback import (
    DOCUMENTED_PREBUFFER_MS,
    PLAYBACK_DIR,
    ScaledClock,
    committed_tracks,
    judge,
    stream_track,
)
from services.kws.spotter import KeywordSpotter
from tests.audio_files import encode
from tests.services.harness import BrokerProbe, DatabaseProbe, wait_until_serving

KEYWORD = committed_tracks()[0]
CHUNK = 640  # 20 ms of 16 kHz mono s16le


async def stream_all(url: str, key: str, data: bytes, chunk: int = 4096, **declared):
    async with stream(url, key, **({"format": "pcm_s16le", "sample_rate": 16000} | declared)) as live:
        for at in range(0, len(data), chunk):
            await live.send(data[at : at + chunk])
        return await live.end()


async def close_of(
    url: str, headers: dict[str, str], *messages: str | bytes, query: str = ""
) -> tuple[int, str]:
    """Send raw messages on a raw connection and return the server's close code and reason."""
    ws_url = url.replace("http://", "ws://") + "/v1/streams" + query
    async with websockets.connect(ws_url, additional_headers=headers) as connection:
        with pytest.raises(websockets.ConnectionClosed):  # the server may close before the last send
            for message in messages:
                await connection.send(message)
            while True:
                await asyncio.wait_for(connection.recv(), 10)
        return connection.close_code, connection.close_reason


START_PCM = json.dumps({"type": "start", "format": "pcm_s16le", "sample_rate": 16000})


async def test_a_stream_answers_like_the_batch_scan(start_gateway, api_key):
    gateway = await start_gateway()
    final = await stream_all(gateway.url, api_key, KEYWORD.pcm, chunk=CHUNK)
    expected = KeywordSpotter.load().scan_samples(np.frombuffer(KEYWORD.pcm, "<i2") / np.float32(32768))
    assert [(i.start_ms, i.end_ms) for i in final.intervals] == [
        (i.start_ms, i.end_ms) for i in expected.intervals
    ]
    assert final.duration_ms == expected.duration_ms and final.stored


async def test_an_interval_arrives_before_a_player_with_the_documented_prebuffer(start_gateway, api_key):
    gateway = await start_gateway()
    run = await stream_track(KEYWORD, gateway.url, api_key, ScaledClock(speed=2.0), chunk_ms=20)
    (verdict,) = judge(run, DOCUMENTED_PREBUFFER_MS)
    assert verdict.in_time, verdict
    gate = MicGate(sample_rate=16000)
    for arrival in run.arrivals:
        gate.add(Interval(arrival.start_ms, arrival.end_ms, 1.0))
    keyword_start, keyword_end = KEYWORD.keyword_spans_ms[0]
    assert gate.update(gate.position_ms(gate.byte_offset(keyword_start))) == "mute"
    assert gate.update(keyword_end) is None and gate.update(run.arrivals[0].end_ms) == "unmute"


async def test_the_stored_result_is_served_and_a_later_post_is_answered_from_the_store(
    start_gateway, api_key, start_service, broker: BrokerProbe, store_url: str, database: DatabaseProbe
):
    store = start_service("store")
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE, started=store)
    await wait_until_serving(store_url, store)
    gateway = await start_gateway()
    clip = decode_audio((PLAYBACK_DIR / "keyword.flac").read_bytes(), 16000).samples
    ogg = encode(clip, 16000, "ogg")
    final = await stream_all(gateway.url, api_key, ogg, chunk=1000, format="ogg_opus")
    assert final.stored and final.intervals

    async with httpx.AsyncClient(headers={"X-API-Key": api_key}, timeout=30) as client:
        served = await client.get(f"{store_url}/v1/tracks/{final.track_id}/skip-kws", params={"wait": 20})
        assert served.status_code == 200, served.text
        assert [(i["start_ms"], i["end_ms"]) for i in served.json()["skip_kws"]] == [
            (i.start_ms, i.end_ms) for i in final.intervals
        ]
        posted = await client.post(f"{gateway.url}/v1/tracks", content=ogg)
    assert posted.json() == posted.json() | {"track_id": final.track_id, "status": "duplicate"}
    # The client library's batch call is answered from the store too (no kws worker runs here).
    answered = await skip_kws(ogg, gateway_url=gateway.url, api_key=api_key, store_url=store_url)
    assert (answered.track_id, answered.intervals) == (final.track_id, final.intervals)
    assert await database.count("kws_results", "track_id = :t", t=final.track_id) == 1


async def test_a_client_that_disconnects_mid_stream_leaves_nothing_and_frees_its_slot(
    start_gateway, api_key, database: DatabaseProbe
):
    gateway = await start_gateway(stream_max_per_key=1)
    tracks_before = await database.count("tracks")
    async with stream(gateway.url, api_key, format="pcm_s16le", sample_rate=16000) as live:
        await live.send(KEYWORD.pcm[:32000])
    # The slot is free again once the gateway has seen the disconnect (a moment later, not at once), and
    # nothing was claimed.
    final = await asyncio.wait_for(_stream_once_a_slot_is_free(gateway.url, api_key, KEYWORD.pcm[:64000]), 20)
    assert final.duration_ms == 2000
    assert await database.count("tracks") == tracks_before + 1


async def _stream_once_a_slot_is_free(url: str, api_key: str, pcm: bytes):
    while True:
        try:
            return await stream_all(url, api_key, pcm)
        except StreamError as refused:
            if refused.code != CLOSE_TOO_MANY_STREAMS:
                raise
            await asyncio.sleep(0.1)


async def test_idle_timeout_closes_the_stream(start_gateway, api_key):
    gateway = await start_gateway(stream_idle_timeout_s=0.5)
    code, reason = await close_of(gateway.url, {"X-API-Key": api_key}, START_PCM, b"\0" * 640)
    assert code == CLOSE_IDLE and "nothing received" in reason


async def test_oversize_streams_and_messages_are_closed_with_1009(start_gateway, api_key):
    gateway = await start_gateway(stream_max_bytes=20_000, stream_max_message_bytes=8_000)
    headers = {"X-API-Key": api_key}
    code, reason = await close_of(gateway.url, headers, START_PCM, *[b"\0" * 6000] * 4)
    assert code == CLOSE_TOO_BIG and "MB" in reason
    code, reason = await close_of(gateway.url, headers, START_PCM, b"\0" * 9000)
    assert code == CLOSE_TOO_BIG and "audio message" in reason
    gateway = await start_gateway(stream_max_duration_s=1.0)
    code, reason = await close_of(gateway.url, headers, START_PCM, *[b"\0" * 16000] * 3)
    assert code == CLOSE_TOO_BIG and "longer" in reason


async def test_malformed_frames_and_unknown_formats_get_clear_close_codes(start_gateway, api_key):
    gateway = await start_gateway()
    headers = {"X-API-Key": api_key}
    assert (await close_of(gateway.url, headers, b"\0\0"))[0] == CLOSE_POLICY
    assert (await close_of(gateway.url, headers, "{not json"))[0] == CLOSE_POLICY
    assert (await close_of(gateway.url, headers, START_PCM, "hello"))[0] == CLOSE_POLICY
    code, reason = await close_of(gateway.url, headers, json.dumps({"type": "start", "format": "aac"}))
    assert code == CLOSE_UNSUPPORTED and "pcm_s16le" in reason
    start_ogg = json.dumps({"type": "start", "format": "ogg_opus"})
    code, reason = await close_of(gateway.url, headers, start_ogg, b"RIFF" + b"\0" * 200)
    assert code == CLOSE_BAD_AUDIO and "corrupt" in reason


async def test_a_wrong_or_missing_key_and_too_many_streams_are_refused(start_gateway, api_key):
    gateway = await start_gateway(stream_max_per_key=1)
    assert (await close_of(gateway.url, {"X-API-Key": "ek_wrong"}, START_PCM))[0] == CLOSE_UNAUTHORISED
    assert (await close_of(gateway.url, {}, START_PCM))[0] == CLOSE_UNAUTHORISED
    async with stream(gateway.url, api_key, format="pcm_s16le", sample_rate=16000) as first:
        with pytest.raises(StreamError) as refused:
            async with stream(gateway.url, api_key, format="pcm_s16le", sample_rate=16000):
                pass
        assert refused.value.code == CLOSE_TOO_MANY_STREAMS
        await first.send(KEYWORD.pcm[:3200])
        assert (await first.end()).duration_ms == 100


async def test_the_server_closing_a_stream_raises_in_the_client(start_gateway, api_key):
    gateway = await start_gateway(stream_idle_timeout_s=0.5)
    async with stream(gateway.url, api_key, format="pcm_s16le", sample_rate=16000) as live:
        await asyncio.sleep(1.0)
        with pytest.raises(StreamError) as dropped:
            await live.end()
    assert dropped.value.code == CLOSE_IDLE
