"""Streaming skip_kws under load: ``python -m benchmarks.streams [--streams 50] [--runs 3]``.

Starts a gateway and a store of their own (database and vhost ``earshot_bench_streams``, HTTP on
8096/8097), then, ``--runs`` times, streams ``--streams`` copies of a composed track (the committed clips,
``--keywords`` keyword occurrences) at once, each at real-time pace (one 20 ms chunk every 20 ms), over
``WS /v1/streams``. Each copy differs in one sample, so each has its own track_id and is stored.

Per keyword occurrence it measures the delay from sending the chunk that holds the keyword's last sample
to the arrival of its interval (``services.kws.playback.judge``), and the pre-buffer a player would have
needed for the interval to arrive before playback reached its start. Printed per run, then the medians
over runs. The client and the gateway share this machine's cores, as do the broker and the database.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from dataclasses import replace

import numpy as np

from services.kws.playback import (
    DOCUMENTED_PREBUFFER_MS,
    ScaledClock,
    StreamRun,
    Track,
    composed_track,
    judge,
    own_gateway,
    stream_track,
)
from services.stack import cancelled_by_signals

BENCH_NAME = "earshot_bench_streams"


def copies(track: Track, count: int, run: int) -> list[Track]:
    """``count`` copies of ``track`` with distinct bytes (one sample changed), so distinct track_ids."""
    tracks = []
    for index in range(count):
        pcm = bytearray(track.pcm)
        pcm[0:4] = (run * 1000 + index).to_bytes(4, "little", signed=False)
        tracks.append(replace(track, pcm=bytes(pcm)))
    return tracks


async def one_run(url: str, key: str, track: Track, streams: int, run: int, chunk_ms: int) -> list[StreamRun]:
    clock = ScaledClock(1.0)
    return list(
        await asyncio.gather(
            *(stream_track(copy, url, key, clock, chunk_ms) for copy in copies(track, streams, run))
        )
    )


def summarise(runs: list[StreamRun]) -> dict[str, float]:
    verdicts = [verdict for run in runs for verdict in judge(run, DOCUMENTED_PREBUFFER_MS)]
    delays = [verdict.delay_ms for verdict in verdicts if verdict.delay_ms is not None]
    needed = [DOCUMENTED_PREBUFFER_MS - v.margin_ms for v in verdicts if v.margin_ms is not None]
    p50, p95, p99 = np.percentile(delays, [50, 95, 99]) if delays else (float("nan"),) * 3
    return {
        "keywords": len(verdicts),
        "missed": sum(verdict.interval_ms is None for verdict in verdicts),
        "in_time": sum(verdict.in_time for verdict in verdicts),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": max(delays, default=float("nan")),
        "prebuffer_max": max(needed, default=float("nan")),
        "behind_max": max(run.behind_ms for run in runs),
    }


async def bench(streams: int, runs: int, keywords: int, chunk_ms: int) -> None:
    track = composed_track(keywords)
    print(
        f"{streams} concurrent streams of {track.duration_ms / 1000:.1f} s ({keywords} keywords), "
        f"{chunk_ms} ms chunks at real-time pace, {runs} runs"
    )
    async with own_gateway(BENCH_NAME, 8096, 8097, {"EARSHOT_STREAM_MAX_PER_KEY": str(streams)}) as (
        url,
        key,
    ):
        summaries = []
        for run in range(runs):
            summary = summarise(await one_run(url, key, track, streams, run, chunk_ms))
            summaries.append(summary)
            print(
                f"  run {run + 1}: keyword -> interval delay p50 {summary['p50']:.0f} ms, "
                f"p95 {summary['p95']:.0f} ms, p99 {summary['p99']:.0f} ms, max {summary['max']:.0f} ms "
                f"(n={summary['keywords']}, missed {summary['missed']}); "
                f"pre-buffer needed {summary['prebuffer_max']:.0f} ms; sender behind at most "
                f"{summary['behind_max']:.0f} ms"
            )
    median = {name: statistics.median(s[name] for s in summaries) for name in ("p50", "p95", "p99", "max")}
    prebuffer = statistics.median(s["prebuffer_max"] for s in summaries)
    in_time = sum(s["in_time"] for s in summaries)
    total = sum(s["keywords"] for s in summaries)
    print(
        f"Streams, {streams} concurrent at real time: keyword -> interval delay, median of {runs} runs: "
        f"p50 {median['p50']:.0f} ms, p95 {median['p95']:.0f} ms, p99 {median['p99']:.0f} ms, "
        f"max {median['max']:.0f} ms"
    )
    print(
        f"Smallest player pre-buffer that had every interval in time (median of runs' worst case): "
        f"{prebuffer:.0f} ms; with the documented {DOCUMENTED_PREBUFFER_MS:.0f} ms, {in_time}/{total} in time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streams", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keywords", type=int, default=2)
    parser.add_argument("--chunk-ms", type=int, default=20)
    args = parser.parse_args()
    try:
        asyncio.run(cancelled_by_signals(bench(args.streams, args.runs, args.keywords, args.chunk_ms)))
    except asyncio.CancelledError:
        print("Interrupted; the stack is stopped.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
