"""Streaming skip_kws under load: ``python -m benchmarks.streams [--streams 50] [--runs 3] [--variant …]``.

Starts a gateway and a store of their own (database and vhost ``earshot_bench_streams``, HTTP on
8096/8097), then, ``--runs`` times, streams ``--streams`` copies of a composed track (the committed clips,
``--keywords`` keyword occurrences) at once, each at real-time pace (one 20 ms chunk every 20 ms), over
``WS /v1/streams``. Each copy differs in one sample, so each has its own track_id and is stored.

Per keyword occurrence it measures the delay from sending the chunk that holds the keyword's last sample
to the arrival of its interval (``services.kws.playback.judge``), and the pre-buffer a player would have
needed for the interval to arrive before playback reached its start; per run also the gateway's CPU
seconds (Linux ``/proc``) and the load average. Printed per run, then the medians over runs. The client
and the gateway share this machine's cores, as do the broker and the database.

``--variant 'name:EARSHOT_X=1,EARSHOT_Y=2'`` (repeatable) compares gateway settings side by side: each run
streams once through a fresh stack per variant, in turn, so a busy machine weighs on all of them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class Variant:
    """Gateway settings under test, by name (``as configured``: the environment's, unchanged)."""

    name: str
    settings: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, _, assignments = text.partition(":")
        settings = dict(item.split("=", 1) for item in assignments.split(",") if item)
        if not name or not all(key.startswith("EARSHOT_") for key in settings):
            raise argparse.ArgumentTypeError(f"expected 'name:EARSHOT_X=1,EARSHOT_Y=2', got {text!r}")
        return cls(name, settings)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux); NaN where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured_run(
    variant: Variant, track: Track, streams: int, run: int, chunk_ms: int
) -> dict[str, float]:
    settings = {"EARSHOT_STREAM_MAX_PER_KEY": str(streams)} | variant.settings
    async with own_gateway(BENCH_NAME, 8096, 8097, settings) as gateway:
        load = os.getloadavg()[0]
        cpu_before = cpu_seconds(gateway.pid)
        summary = summarise(await one_run(gateway.url, gateway.api_key, track, streams, run, chunk_ms))
        summary["gateway_cpu_s"] = cpu_seconds(gateway.pid) - cpu_before
        summary["load"] = load
    return summary


def run_line(summary: dict[str, float]) -> str:
    return (
        f"keyword -> interval delay p50 {summary['p50']:.0f} ms, p95 {summary['p95']:.0f} ms, "
        f"p99 {summary['p99']:.0f} ms, max {summary['max']:.0f} ms "
        f"(n={summary['keywords']}, missed {summary['missed']}); "
        f"pre-buffer needed {summary['prebuffer_max']:.0f} ms; sender behind at most "
        f"{summary['behind_max']:.0f} ms; gateway CPU {summary['gateway_cpu_s']:.1f} s; "
        f"load {summary['load']:.1f}"
    )


async def bench(streams: int, runs: int, keywords: int, chunk_ms: int, variants: list[Variant]) -> None:
    track = composed_track(keywords)
    print(
        f"{streams} concurrent streams of {track.duration_ms / 1000:.1f} s ({keywords} keywords), "
        f"{chunk_ms} ms chunks at real-time pace, {runs} runs"
        + (f" of each of {', '.join(v.name for v in variants)}" if len(variants) > 1 else "")
    )
    summaries: dict[str, list[dict[str, float]]] = {variant.name: [] for variant in variants}
    for run in range(runs):
        for variant in variants:
            summary = await measured_run(variant, track, streams, run, chunk_ms)
            summaries[variant.name].append(summary)
            label = f"{variant.name} " if len(variants) > 1 else ""
            print(f"  {label}run {run + 1}: {run_line(summary)}", flush=True)
    for variant in variants:
        report(variant.name if len(variants) > 1 else None, streams, summaries[variant.name])


def report(name: str | None, streams: int, summaries: list[dict[str, float]]) -> None:
    runs = len(summaries)
    median = {
        key: statistics.median(s[key] for s in summaries)
        for key in ("p50", "p95", "p99", "max", "gateway_cpu_s")
    }
    prebuffer = statistics.median(s["prebuffer_max"] for s in summaries)
    in_time = sum(s["in_time"] for s in summaries)
    total = sum(s["keywords"] for s in summaries)
    label = f" [{name}]" if name else ""
    print(
        f"Streams{label}, {streams} concurrent at real time: keyword -> interval delay, median of {runs} "
        f"runs: p50 {median['p50']:.0f} ms, p95 {median['p95']:.0f} ms, p99 {median['p99']:.0f} ms, "
        f"max {median['max']:.0f} ms; gateway CPU {median['gateway_cpu_s']:.1f} s a run"
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
    parser.add_argument("--variant", type=Variant.parse, action="append", default=[])
    args = parser.parse_args()
    variants = args.variant or [Variant("as configured", {})]
    try:
        asyncio.run(
            cancelled_by_signals(bench(args.streams, args.runs, args.keywords, args.chunk_ms, variants))
        )
    except asyncio.CancelledError:
        print("Interrupted; the stack is stopped.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
