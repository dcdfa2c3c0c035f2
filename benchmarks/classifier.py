"""Speed of the cry classifier on one core: `python -m benchmarks.classifier` (part of `make bench`).

Medians of several runs for a 5 s voice note (OGG/Opus, 48 kHz like Telegram): decoding (with the 8 kHz
band limit), features (upsampling + numpy log-mel for the reasons, the sound spectrogram for the gate), ONNX
inference of each branch of the one model (reasons of one window, given no gate blocks; the gate's
pretrained embedding of one block, given no windows) and of the whole note, the whole analyse() call, and
batched throughput of the reason branch. Targets: features <= 5 ms, inference <= 5 ms.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from services.classifier.analysis import CryClassifier  # noqa: E402
from services.classifier.features import PHONE_SAMPLE_RATE, log_mel, split_windows, to_model_rate  # noqa: E402
from services.classifier.inference import CryModelSession  # noqa: E402
from services.classifier.settings import ClassifierSettings  # noqa: E402
from services.classifier.sound_features import sound_blocks  # noqa: E402
from services.common.audio import decode_audio  # noqa: E402
from services.common.settings import REPO_ROOT  # noqa: E402
from tests.audio_files import encode  # noqa: E402

RUNS = 30
BATCH_SIZES = (1, 8, 32)


def median_ms(action: Callable[[], object], runs: int = RUNS) -> float:
    action()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def voice_note() -> bytes:
    """5.0 s of a committed cry sample, re-encoded as 48 kHz Opus."""
    cry = decode_audio((REPO_ROOT / "samples" / "cry" / "hungry-donateacry.ogg").read_bytes(), 48000).samples
    return encode(np.resize(cry, 5 * 48000), 48000, "ogg")


def main() -> None:
    settings = ClassifierSettings(inference_threads=1)
    audio = voice_note()
    phone = decode_audio(audio, PHONE_SAMPLE_RATE).samples
    window = split_windows(to_model_rate(phone))[0]
    features = log_mel(window)[None]
    blocks = sound_blocks(phone)
    session = CryModelSession(settings.model_path, threads=1)
    classifier = CryClassifier.load(settings)
    print(f"cry classifier, one core, medians of {RUNS} runs, 5 s OGG/Opus 48 kHz voice note")
    no_windows, no_blocks = features[:0], blocks[:0]
    timings = {
        "decode + 8 kHz band limit": lambda: decode_audio(audio, PHONE_SAMPLE_RATE),
        "upsample to 22050 Hz": lambda: to_model_rate(phone),
        "log-mel, one window (target <= 5 ms)": lambda: log_mel(window),
        "gate sound spectrogram + blocks": lambda: sound_blocks(phone),
        "inference, reasons of one window": lambda: session.run(features, no_blocks),
        "inference, gate of one 2.3 s block": lambda: session.run(no_windows, blocks[:1]),
        f"inference, the note (1 window, {len(blocks)} blocks)": lambda: session.run(features, blocks),
        "analyse() end to end": lambda: classifier.analyse(audio),
    }
    for name, action in timings.items():
        print(f"  {name:40s} {median_ms(action):8.2f} ms")
    for batch_size in BATCH_SIZES:
        batch = np.repeat(features, batch_size, axis=0)
        per_batch = median_ms(lambda b=batch: session.run(b, no_blocks), runs=10)
        name = f"inference, reasons, batch of {batch_size}"
        print(f"  {name:40s} {per_batch:8.2f} ms  {batch_size / per_batch * 1000:6.0f} windows/s")


if __name__ == "__main__":
    main()
