"""The whole stack under load: ``python -m benchmarks.stack [--jobs N] [--clients C]``.

Starts a stack of its own (database and vhost ``earshot_bench``, HTTP on 8092/8093, no Telegram), then:

1. publishes N cry jobs straight to RabbitMQ (as the bot would) and posts N distinct playback tracks through
   ``POST /v1/tracks``, all at once;
2. waits until every result is stored, and reads each job's latency from the database: ``stored_at`` (the
   store's insert) minus ``received_at`` (stamped on the job when it was built, just before publishing);
3. fetches ``GET /v1/tracks/{id}/skip-kws`` from C concurrent clients and times each request.

Throughput is jobs per second from the first publish to the last stored result. Everything runs on this
machine, so the figures include both workers sharing its cores with the broker, the database and the client.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import sys
import time
import uuid

import httpx
import numpy as np
import soundfile
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.amqp import Publisher, connect
from services.common.contracts import AudioPayload, CryJob
from services.common.settings import CACHE_DIR, REPO_ROOT, BrokerSettings
from services.common.topology import CRY_CLASSIFY_QUEUE, JOBS_EXCHANGE
from services.gateway.__main__ import create_api_key
from services.gateway.admission import cry_request_id
from services.gateway.settings import GatewaySettings
from services.stack import Stack, cancelled_by_signals, isolated_env

BENCH_NAME = "earshot_bench"
CRY_SAMPLES = sorted((REPO_ROOT / "samples" / "cry").glob("*.ogg"))
PLAYBACK_SAMPLES = sorted((REPO_ROOT / "samples" / "playback").glob("*.flac"))
UPLOAD_CONCURRENCY = 8


def percentiles(values: list[float]) -> str:
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000, [50, 95, 99])
    return f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   p99 {p99:7.1f} ms   (n={len(values)})"


def distinct_tracks(count: int, salt: int) -> list[bytes]:
    """``count`` WAV tracks made from the playback samples, each with its own sha256 (so its own track_id).

    Two sample values change: the index within this run and ``salt``, which differs between runs, so an
    earlier run's stored results are never found at once.
    """
    tracks = []
    for index in range(count):
        samples, rate = soundfile.read(PLAYBACK_SAMPLES[index % len(PLAYBACK_SAMPLES)], dtype="int16")
        samples = samples.copy()
        samples[0], samples[1] = index, salt
        buffer = io.BytesIO()
        soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
        tracks.append(buffer.getvalue())
    return tracks


async def publish_cry_jobs(amqp_url: str, chat_id: int, count: int) -> None:
    """Cry jobs as the bot publishes them, from one pretend chat; its id is new each run, like its keys."""
    connection = await connect(BrokerSettings(amqp_url=amqp_url), name="earshot-bench")
    publisher = await Publisher.open(connection)
    try:
        for index in range(count):
            audio = CRY_SAMPLES[index % len(CRY_SAMPLES)].read_bytes()
            job = CryJob(
                request_id=cry_request_id(chat_id, index),
                chat_id=chat_id,
                message_id=index,
                audio=AudioPayload(inline=audio, size_bytes=len(audio)),
            )
            await publisher.publish(job, JOBS_EXCHANGE, CRY_CLASSIFY_QUEUE, message_id=job.request_id)
    finally:
        await publisher.close()
        await connection.close()


async def post_tracks(gateway_url: str, api_key: str, tracks: list[bytes]) -> list[str]:
    limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)

    async def post(client: httpx.AsyncClient, audio: bytes) -> str:
        async with limit:
            response = await client.post(
                f"{gateway_url}/v1/tracks", content=audio, headers={"X-API-Key": api_key}
            )
            response.raise_for_status()
            return response.json()["track_id"]

    async with httpx.AsyncClient(timeout=60) as client:
        return list(await asyncio.gather(*(post(client, audio) for audio in tracks)))


async def wait_for_results(
    database_url: str, chat_id: int, cry_jobs: int, track_ids: list[str], stack: Stack, timeout_s: float
):
    """Wait for every result; returns (cry latencies, kws latencies, first publish, last store)."""
    engine = create_async_engine(database_url)
    cry_sql = text(
        "SELECT extract(epoch FROM received_at) AS received, extract(epoch FROM stored_at) AS stored "
        "FROM predictions WHERE request_id LIKE :prefix"
    )
    kws_sql = text(
        "SELECT extract(epoch FROM received_at) AS received, extract(epoch FROM stored_at) AS stored "
        "FROM kws_results WHERE track_id = ANY(:ids)"
    )
    this_chat = cry_request_id(chat_id, 0).removesuffix("0") + "%"  # every request id of the run's chat
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            stack.check_running()
            async with engine.connect() as connection:
                cry = (await connection.execute(cry_sql, {"prefix": this_chat})).all()
                kws = (await connection.execute(kws_sql, {"ids": track_ids})).all()
            if len(kws) == len(track_ids) and len(cry) == cry_jobs:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(cry)} cry and {len(kws)} kws results after {timeout_s:.0f} s")
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    rows = [*cry, *kws]
    first = min(float(r.received) for r in rows)
    last = max(float(r.stored) for r in rows)
    latency = (
        [float(r.stored) - float(r.received) for r in cry],
        [float(r.stored) - float(r.received) for r in kws],
    )
    return latency[0], latency[1], first, last


async def load_skip_kws(store_url: str, api_key: str, track_ids: list[str], clients: int, requests_each: int):
    """Time GET skip-kws from ``clients`` concurrent clients; returns (latencies, wall seconds)."""
    latencies: list[float] = []

    async def client_loop(seed: int) -> None:
        chooser = random.Random(seed)
        async with httpx.AsyncClient(
            base_url=store_url, headers={"X-API-Key": api_key}, timeout=30
        ) as client:
            for _ in range(requests_each):
                started = time.perf_counter()
                response = await client.get(f"/v1/tracks/{chooser.choice(track_ids)}/skip-kws")
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(seed) for seed in range(clients)))
    return latencies, time.perf_counter() - started


async def run(jobs: int, clients: int, requests_each: int) -> None:
    env = await isolated_env(BENCH_NAME, 8092, 8093)
    stack = Stack(env, log_dir=CACHE_DIR / BENCH_NAME / "logs")
    run_id = uuid.uuid4().int
    chat_id = -(run_id % 10**12)  # negative like a group chat's id, so it never meets a real user's
    try:
        print(f"Starting the stack (logs in {stack.log_dir}) ...")
        await stack.prepare()
        await stack.start()
        await stack.wait_ready()
        api_key = await create_api_key("bench", GatewaySettings(database_url=env["EARSHOT_DATABASE_URL"]))
        tracks = distinct_tracks(jobs, salt=run_id % 30000)
        print(f"Submitting {jobs} cry jobs (AMQP) and {jobs} playback tracks (POST /v1/tracks) ...")
        _, track_ids = await asyncio.gather(
            publish_cry_jobs(env["EARSHOT_AMQP_URL"], chat_id, jobs),
            post_tracks(stack.gateway_url, api_key, tracks),
        )
        cry, kws, first, last = await wait_for_results(
            env["EARSHOT_DATABASE_URL"], chat_id, jobs, track_ids, stack, timeout_s=60 + 5 * jobs
        )
        print(
            f"\nThroughput: {2 * jobs} jobs in {last - first:.2f} s = {2 * jobs / (last - first):.1f} jobs/s"
        )
        print(f"Latency, publish -> stored result, cry.classify: {percentiles(cry)}")
        print(f"Latency, publish -> stored result, kws.scan:     {percentiles(kws)}")
        latencies, wall = await load_skip_kws(stack.store_url, api_key, track_ids, clients, requests_each)
        print(
            f"GET skip-kws, {clients} concurrent clients x {requests_each} requests: "
            f"{percentiles(latencies)}, {len(latencies) / wall:.0f} requests/s"
        )
    finally:
        await stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stack", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs of each kind (default 40)")
    parser.add_argument(
        "--clients", type=int, default=16, help="concurrent GET skip-kws clients (default 16)"
    )
    parser.add_argument("--requests", type=int, default=50, help="GET requests per client (default 50)")
    args = parser.parse_args()
    try:
        asyncio.run(cancelled_by_signals(run(args.jobs, args.clients, args.requests)))
    except asyncio.CancelledError:
        print("Interrupted; the stack is stopped.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
