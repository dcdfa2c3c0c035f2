"""Scan speed of the wake-word spotter on one core: ``python -m benchmarks.kws``.

Times ``KeywordSpotter.scan_samples`` (log-mel features + one ONNX call + detector) and the whole
``scan`` (with decoding of a FLAC file) on synthetic 60 s tracks, and prints medians and the
real-time factor (seconds of audio per second of wall time).
"""

from __future__ import annotations

import io
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import soundfile  # noqa: E402

from services.kws.model import SpotterModel  # noqa: E402
from services.kws.spotter import KeywordSpotter  # noqa: E402

TRACK_SECONDS = 60.0
REPEATS = 7


def _track(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like test signal: noise bursts with a syllable rhythm (speed does not depend on content)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    envelope = np.repeat(rng.uniform(0, 1, n // 3200 + 1) > 0.4, 3200)[:n]
    return (rng.standard_normal(n) * 0.1 * envelope).astype(np.float32)


def _median_seconds(action, repeats: int = REPEATS) -> float:
    action()  # warm-up
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    spotter = KeywordSpotter(SpotterModel(threads=1))
    samples = _track(TRACK_SECONDS)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16000, format="FLAC")
    flac = buffer.getvalue()
    core = _median_seconds(lambda: spotter.scan_samples(samples))
    whole = _median_seconds(lambda: spotter.scan(flac))
    print(
        f"kws scan_samples, {TRACK_SECONDS:.0f} s track, 1 thread: median {core * 1000:.1f} ms, "
        f"{TRACK_SECONDS / core:.0f}x real time"
    )
    print(
        f"kws scan of a FLAC file (decode + scan): median {whole * 1000:.1f} ms, "
        f"{TRACK_SECONDS / whole:.0f}x real time"
    )


if __name__ == "__main__":
    main()
