"""Voice enrollment through the running stack: POST /v1/voices → kws.enroll → store → scans with the voice.

The gateway runs in-process, the store and the kws worker as real programs, against this run's vhost and
database. Enrollment limits are lowered (settings a deployment can set too) so the committed samples suffice.
"""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import numpy as np
import soundfile
from earshot_client import stream
from sqlalchemy import text

from services.common.blobs import blob_path, sha256_hex
from services.common.settings import REPO_ROOT
from services.common.topology import KWS_ENROLL_QUEUE, KWS_SCAN_QUEUE
from services.gateway.streams import CLOSE_POLICY, CLOSE_UNKNOWN_VOICE, CLOSE_VOICE_NOT_READY
from tests.audio_files import encode
from tests.services.gateway.conftest import TEST_INLINE_MAX_BYTES
from tests.services.harness import eventually, wait_until_serving
from tests.streams.test_ws_streams import close_of

PLAYBACK_DIR = REPO_ROOT / "samples" / "playback"
KEYWORD_SPAN = tuple(json.loads((PLAYBACK_DIR / "spans.json").read_text())["keyword.flac"])
LIMITS = {
    "EARSHOT_ENROLL_MIN_KEYWORD_CLIPS": "6",
    "EARSHOT_ENROLL_MIN_FREE_SPEECH_S": "8",
    "EARSHOT_ENROLL_MAX_CLIP_S": "20",
}
GATEWAY_LIMITS = {"enroll_min_keyword_clips": 6, "enroll_min_free_speech_s": 8.0, "enroll_max_clip_s": 20.0}


def enrollment_set(keyword_clips: int = 6) -> tuple[list[dict], dict[str, bytes]]:
    """The committed keyword sample at several shifts and gains, and the two keyword-free samples."""
    keyword, rate = soundfile.read(PLAYBACK_DIR / "keyword.flac", dtype="float32")
    manifest, files = [], {}
    for index in range(keyword_clips):
        lead = int(rate * 0.1 * index)
        audio = np.concatenate([np.zeros(lead, np.float32), keyword * (0.5 + 0.08 * index)])
        name = f"kw{index}.wav"
        files[name] = encode(audio, rate, "wav")
        shift = lead * 1000 // rate
        entry = {"file": name, "keyword": True, "span_ms": [KEYWORD_SPAN[0] + shift, KEYWORD_SPAN[1] + shift]}
        manifest.append(entry if index else {"file": name, "keyword": True})  # the first one is aligned
    for name in ("neither.flac", "confusable.flac"):
        files[name] = (PLAYBACK_DIR / name).read_bytes()
        manifest.append({"file": name, "keyword": False})
    return manifest, files


def multipart(manifest: list[dict], files: dict[str, bytes]) -> dict:
    return {
        "data": {"manifest": json.dumps({"clips": manifest, "seed": 1})},
        "files": [(name, (name, data, "application/octet-stream")) for name, data in files.items()],
    }


async def start_stack(start_gateway, start_service, store_url, broker):
    store = start_service("store")
    start_service("kws", **LIMITS)
    await wait_until_serving(store_url, store)
    await broker.wait_for_consumers(KWS_ENROLL_QUEUE, timeout_s=60)
    await broker.wait_for_consumers(KWS_SCAN_QUEUE, timeout_s=60)
    return await start_gateway(max_upload_bytes=20_000_000, **GATEWAY_LIMITS)


async def wait_for_voice(client: httpx.AsyncClient, voice_id: str, key: str) -> dict:
    answer: dict = {}

    async def settled() -> bool:
        nonlocal answer
        response = await client.get(f"/v1/voices/{voice_id}", headers={"X-API-Key": key})
        answer = response.json()
        return response.status_code == 200 and answer["status"] != "pending"

    await eventually(settled, 120, f"voice {voice_id} to be enrolled")
    return answer


async def test_enroll_then_scan_then_delete(
    start_gateway, start_service, store_url, broker, api_key, sessions, blob_dir
) -> None:
    gateway = await start_stack(start_gateway, start_service, store_url, broker)
    manifest, files = enrollment_set()
    headers = {"X-API-Key": api_key}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as front:
        posted = await front.post("/v1/voices", headers=headers, **multipart(manifest, files))
        assert posted.status_code == 202, posted.text
        voice_id = posted.json()["voice_id"]
        async with httpx.AsyncClient(base_url=store_url, timeout=60) as store:
            voice = await wait_for_voice(store, voice_id, api_key)
            assert voice["status"] == "ready", voice
            assert {"base", "adapted", "hold", "false_budget_per_hour"} <= set(voice["validation"])
            assert "+voice." in voice["model_version"]

            track = (PLAYBACK_DIR / "keyword.flac").read_bytes()
            base = await front.post("/v1/tracks", content=track, headers=headers)
            adapted = await front.post(
                "/v1/tracks", params={"voice_id": voice_id}, content=track, headers=headers
            )
            assert (base.status_code, adapted.status_code) == (202, 202), adapted.text
            track_id = adapted.json()["track_id"]
            base_answer = await store.get(
                f"/v1/tracks/{track_id}/skip-kws", params={"wait": 30}, headers=headers
            )
            voice_answer = await store.get(
                f"/v1/tracks/{track_id}/skip-kws", params={"wait": 30, "voice_id": voice_id}, headers=headers
            )
            assert (base_answer.status_code, voice_answer.status_code) == (200, 200), voice_answer.text
            assert voice_answer.json()["model_version"] == voice["model_version"]
            assert base_answer.json()["model_version"] != voice["model_version"]
            start, end = KEYWORD_SPAN
            assert any(i["start_ms"] <= start and i["end_ms"] >= end for i in voice_answer.json()["skip_kws"])

            deleted = await store.delete(f"/v1/voices/{voice_id}", headers=headers)
            assert deleted.status_code == 204
            assert (await store.get(f"/v1/voices/{voice_id}", headers=headers)).status_code == 404
            again = await front.post(
                "/v1/tracks", params={"voice_id": voice_id}, content=track, headers=headers
            )
            assert again.status_code == 404
    async with sessions() as session:
        voices = await session.scalar(
            text("SELECT count(*) FROM voices WHERE voice_id = :v"), {"v": voice_id}
        )
        cached = await session.execute(
            text("SELECT voice_id FROM kws_results WHERE track_id = :t OR voice_id = :v"),
            {"t": track_id, "v": voice_id},
        )
        assert (voices, [row.voice_id for row in cached]) == (0, [""]), "only the base model's answer is left"
    sent = files | {"track": track}
    left = [name for name, data in sent.items() if blob_path(sha256_hex(data), blob_dir).exists()]
    assert not left, "every clip and track blob is deleted once its result is stored"


async def test_one_keys_voice_is_invisible_to_another(
    start_gateway, start_service, store_url, broker, api_key, sessions
) -> None:
    from services.store import repository

    gateway = await start_stack(start_gateway, start_service, store_url, broker)
    async with sessions() as session:
        other_key = await repository.create_api_key(session, "another client")
    manifest, files = enrollment_set()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as front:
        posted = await front.post("/v1/voices", headers={"X-API-Key": api_key}, **multipart(manifest, files))
        voice_id = posted.json()["voice_id"]
        async with httpx.AsyncClient(base_url=store_url, timeout=60) as store:
            await wait_for_voice(store, voice_id, api_key)
            other = {"X-API-Key": other_key}
            assert (await store.get(f"/v1/voices/{voice_id}", headers=other)).status_code == 404
            assert (await store.delete(f"/v1/voices/{voice_id}", headers=other)).status_code == 404
            track = (PLAYBACK_DIR / "neither.flac").read_bytes()
            scan = await front.post("/v1/tracks", params={"voice_id": voice_id}, content=track, headers=other)
            assert (scan.status_code, scan.json()["error"]) == (404, "unknown_voice")
            read = await store.get(
                f"/v1/tracks/{'0' * 64}/skip-kws", params={"voice_id": voice_id}, headers=other
            )
            assert read.status_code == 404
            assert (
                await store.get(f"/v1/voices/{voice_id}", headers={"X-API-Key": api_key})
            ).status_code == 200


def zipped(manifest: list[dict], files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", json.dumps({"clips": manifest}))
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_bad_enrollment_sets_get_clear_errors_and_make_no_job(
    start_gateway, start_service, store_url, broker, api_key, database
) -> None:
    await wait_until_serving(store_url, start_service("store"))
    gateway = await start_gateway(max_upload_bytes=20_000_000, **GATEWAY_LIMITS)
    manifest, files = enrollment_set()
    headers = {"X-API-Key": api_key}
    too_few = enrollment_set(keyword_clips=3)
    wrong_span = [dict(entry) for entry in manifest]
    wrong_span[1]["span_ms"] = [5000, 90000]
    non_audio = dict(files) | {"kw2.wav": b"%PDF-1.4 this is no audio"}
    cases = {
        "too_few_keyword_clips": multipart(*too_few),
        "bad_span": multipart(wrong_span, files),
        "clip_not_audio": multipart(manifest, non_audio),
        "missing_clip": multipart(manifest + [{"file": "absent.wav", "keyword": False}], files),
    }
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as front:
        for code, body in cases.items():
            response = await front.post("/v1/voices", headers=headers, **body)
            assert (response.status_code // 100, response.json()["error"]) == (4, code), response.text
            assert response.json()["message"]
        oversize = await front.post(
            "/v1/voices",
            headers=headers | {"Content-Type": "application/zip"},
            content=zipped(manifest, files) + b"\0" * (gateway.settings.enroll_max_total_bytes + 1),
        )
        assert (oversize.status_code, oversize.json()["error"]) == (413, "too_large")
        good_zip = await front.post(
            "/v1/voices",
            headers=headers | {"Content-Type": "application/zip"},
            content=zipped(manifest, files),
        )
        assert good_zip.status_code == 202, good_zip.text
    assert len(await broker.drain(KWS_ENROLL_QUEUE)) == 1

    async def refusals_recorded() -> bool:
        return await database.count("errors", "job_kind = 'kws.enroll'") == len(cases) + 1

    await eventually(refusals_recorded, 20, "an errors row per refused set")


async def enrolled_voice(front: httpx.AsyncClient, store: httpx.AsyncClient, key: str) -> dict:
    manifest, files = enrollment_set()
    posted = await front.post("/v1/voices", headers={"X-API-Key": key}, **multipart(manifest, files))
    assert posted.status_code == 202, posted.text
    voice = await wait_for_voice(store, posted.json()["voice_id"], key)
    assert voice["status"] == "ready", voice
    return voice


async def test_a_stream_with_a_voice_is_scanned_and_stored_with_that_voice(
    start_gateway, start_service, store_url, broker, api_key, database
) -> None:
    gateway = await start_stack(start_gateway, start_service, store_url, broker)
    headers = {"X-API-Key": api_key}
    clip = soundfile.read(PLAYBACK_DIR / "keyword.flac", dtype="float32")[0]
    ogg = encode(clip, 16000, "ogg")
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=60) as front,
        httpx.AsyncClient(base_url=store_url, timeout=60) as store,
    ):
        voice = await enrolled_voice(front, store, api_key)
        voice_id = voice["voice_id"]
        async with stream(gateway.url, api_key, format="ogg_opus", voice_id=voice_id) as live:
            assert (live.started["voice_id"], live.started["model_version"]) == (
                voice_id,
                voice["model_version"],
            )
            for at in range(0, len(ogg), 1000):
                await live.send(ogg[at : at + 1000])
            final = await live.end()
        assert (final.voice_id, final.model_version, final.stored) == (voice_id, voice["model_version"], True)
        start, end = KEYWORD_SPAN
        assert any(i.start_ms <= start and i.end_ms >= end for i in final.intervals)

        served = await store.get(
            f"/v1/tracks/{final.track_id}/skip-kws",
            params={"wait": 20, "voice_id": voice_id},
            headers=headers,
        )
        assert served.status_code == 200, served.text
        assert served.json()["model_version"] == voice["model_version"]
        assert served.json()["skip_kws"] == [
            {"start_ms": i.start_ms, "end_ms": i.end_ms, "score": i.score} for i in final.intervals
        ]
        base = await store.get(f"/v1/tracks/{final.track_id}/skip-kws", headers=headers)
        assert base.status_code == 404, "the stream was scanned with the voice only, not with the base model"
        again = await front.post("/v1/tracks", params={"voice_id": voice_id}, content=ogg, headers=headers)
        assert (again.status_code, again.json()["status"]) == (202, "duplicate")
    assert await broker.drain(KWS_SCAN_QUEUE) == [], "the stored stream answered the POST: no job"
    rows = await database.rows("SELECT voice_id FROM kws_results WHERE track_id = :t", t=final.track_id)
    assert rows == [{"voice_id": voice_id}]


async def test_a_voice_a_stream_cannot_use_closes_it_before_any_audio(
    start_gateway, start_service, store_url, broker, api_key, sessions, database
) -> None:
    from services.store import repository

    gateway = await start_stack(start_gateway, start_service, store_url, broker)
    async with sessions() as session:
        other_key = await repository.create_api_key(session, "another client")
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=60) as front,
        httpx.AsyncClient(base_url=store_url, timeout=60) as store,
    ):
        voice = await enrolled_voice(front, store, api_key)
    voice_id = voice["voice_id"]
    async with sessions() as session:
        pending_id = "v_" + "1" * 32
        owner = await repository.find_api_key(session, api_key)
        await repository.claim_voice(session, pending_id, owner.id, 6, 8.0)
        outdated_id = await outdated_copy(session, voice_id)
    tracks_before = await database.count("tracks")
    start_pcm = json.dumps({"type": "start", "format": "pcm_s16le", "sample_rate": 16000})
    audio = b"\0" * 6400

    async def close(key: str, query: str) -> tuple[int, str]:
        return await close_of(gateway.url, {"X-API-Key": key}, start_pcm, audio, query=query)

    code, reason = await close(other_key, f"?voice_id={voice_id}")
    assert (code, reason) == (CLOSE_UNKNOWN_VOICE, f"No voice {voice_id} for this API key.")
    assert (await close(api_key, "?voice_id=v_" + "0" * 32))[0] == CLOSE_UNKNOWN_VOICE
    code, reason = await close(api_key, f"?voice_id={pending_id}")
    assert code == CLOSE_VOICE_NOT_READY and "pending" in reason
    code, reason = await close(api_key, f"?voice_id={outdated_id}")
    assert code == CLOSE_VOICE_NOT_READY and "enroll it again" in reason
    assert (await close(api_key, "?voice_id=marusya"))[0] == CLOSE_POLICY
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as front:
        posted = await front.post(
            "/v1/tracks",
            params={"voice_id": outdated_id},
            content=(PLAYBACK_DIR / "neither.flac").read_bytes(),
            headers={"X-API-Key": api_key},
        )
    assert (posted.status_code, posted.json()["error"]) == (409, "voice_outdated")
    assert await database.count("tracks") == tracks_before, "no audio was taken"
    final = await stream_pcm(gateway.url, api_key, voice_id, audio)
    assert final.voice_id == voice_id, "the voice's own key streams with it"


async def outdated_copy(session, voice_id: str) -> str:
    """A ready copy of the voice whose head says it was fitted on another base model."""
    copy_id = "v_" + "2" * 32
    await session.execute(
        text(
            "INSERT INTO voices (voice_id, api_key_id, status, keyword_clips, free_speech_s, head, "
            "model_version) SELECT :copy, api_key_id, status, keyword_clips, free_speech_s, "
            "jsonb_set(head, '{base_model_version}', '\"0.0.1+older\"'), model_version "
            "FROM voices WHERE voice_id = :v"
        ),
        {"copy": copy_id, "v": voice_id},
    )
    await session.commit()
    return copy_id


async def stream_pcm(url: str, key: str, voice_id: str, pcm: bytes):
    async with stream(url, key, format="pcm_s16le", sample_rate=16000, voice_id=voice_id) as live:
        await live.send(pcm)
        return await live.end()


async def test_a_rejected_enrollment_leaves_no_clip_blobs(
    start_gateway, start_service, store_url, broker, api_key, blob_dir
) -> None:
    gateway = await start_stack(start_gateway, start_service, store_url, broker)
    manifest, files = enrollment_set()
    manifest.append({"file": "neither.flac", "keyword": True})  # no keyword to align in it
    manifest = [entry for entry in manifest if not (entry["file"] == "neither.flac" and not entry["keyword"])]
    files["silence.wav"] = encode(np.zeros(16000 * 9, np.float32), 16000, "wav")
    manifest.append({"file": "silence.wav", "keyword": False})
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=60) as front,
        httpx.AsyncClient(base_url=store_url, timeout=60) as store,
    ):
        posted = await front.post("/v1/voices", headers={"X-API-Key": api_key}, **multipart(manifest, files))
        assert posted.status_code == 202, posted.text
        assert min(map(len, files.values())) > TEST_INLINE_MAX_BYTES, "each clip goes as a blob"
        voice = await wait_for_voice(store, posted.json()["voice_id"], api_key)
    assert (voice["status"], voice["error"]["code"]) == ("rejected", "keyword_not_found"), voice
    assert not clip_blobs_left(files, blob_dir)


async def test_an_enrollment_given_up_after_its_attempts_leaves_no_clip_blobs(
    start_gateway, start_service, store_url, broker, api_key, blob_dir, database
) -> None:
    await wait_until_serving(store_url, start_service("store"))
    gateway = await start_gateway(max_upload_bytes=20_000_000, **GATEWAY_LIMITS)
    manifest, files = enrollment_set()
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=60) as front,
        httpx.AsyncClient(base_url=store_url, timeout=60) as store,
    ):
        posted = await front.post("/v1/voices", headers={"X-API-Key": api_key}, **multipart(manifest, files))
        assert posted.status_code == 202, posted.text
        voice_id = posted.json()["voice_id"]
        lost = blob_path(sha256_hex(files["kw3.wav"]), blob_dir)
        lost.unlink()  # a clip the worker cannot read: every attempt fails
        worker = start_service("kws", EARSHOT_MAX_ATTEMPTS="2", EARSHOT_RETRY_DELAY_S="0.2", **LIMITS)
        await broker.wait_for_consumers(KWS_ENROLL_QUEUE, started=worker, timeout_s=60)
        voice = await wait_for_voice(store, voice_id, api_key)
    assert voice["status"] == "failed", voice
    assert await database.count("errors", "job_kind = 'kws.enroll' AND key = :v", v=voice_id) == 1
    assert not clip_blobs_left(files, blob_dir)


def clip_blobs_left(files: dict[str, bytes], blob_dir) -> list[str]:
    return [name for name, data in files.items() if blob_path(sha256_hex(data), blob_dir).exists()]
