"""Both flows through the gateway, the real workers and the store, with the committed samples."""

from __future__ import annotations

import json

import httpx

from services.common.settings import REPO_ROOT
from services.common.topology import CRY_CLASSIFY_QUEUE, KWS_SCAN_QUEUE
from services.gateway import replies
from tests.services.harness import wait_until_serving

CRY_SAMPLE = REPO_ROOT / "samples" / "cry" / "hungry-donateacry.ogg"
PLAYBACK_DIR = REPO_ROOT / "samples" / "playback"


async def test_voice_note_and_playback_track_come_back_answered(
    start_gateway, start_service, store_url, broker, api_key
) -> None:
    store = start_service("store")
    start_service("classifier")
    start_service("kws")
    await wait_until_serving(store_url, store)
    await broker.wait_for_consumers(CRY_CLASSIFY_QUEUE, timeout_s=60)
    await broker.wait_for_consumers(KWS_SCAN_QUEUE, timeout_s=60)
    gateway = await start_gateway(max_upload_bytes=20_000_000, max_voice_duration_s=120.0)
    standin = gateway.standin

    audio = CRY_SAMPLE.read_bytes()
    await standin.deliver(standin.media_message("voice", audio, chat_id=5150, message_id=1, duration_s=7))
    sent = await standin.wait_for_sent(2, timeout=60)

    assert sent[0].text == replies.ACCEPTED["ru"]
    answer = sent[1].text
    assert answer.endswith(replies.DISCLAIMER["ru"])
    assert any(answer.startswith(h.split("{")[0]) for h in replies.HEADLINES["ru"].values())

    track = (PLAYBACK_DIR / "keyword.flac").read_bytes()
    expected_start_ms, expected_end_ms = json.loads((PLAYBACK_DIR / "spans.json").read_text())["keyword.flac"]
    headers = {"X-API-Key": api_key}
    async with httpx.AsyncClient(timeout=60) as client:
        posted = await client.post(f"{gateway.url}/v1/tracks", content=track, headers=headers)
        track_id = posted.json()["track_id"]
        result = await client.get(f"{store_url}/v1/tracks/{track_id}/skip-kws?wait=30", headers=headers)

    assert posted.status_code == 202 and result.status_code == 200
    intervals = result.json()["skip_kws"]
    assert any(i["start_ms"] <= expected_end_ms and i["end_ms"] >= expected_start_ms for i in intervals)
