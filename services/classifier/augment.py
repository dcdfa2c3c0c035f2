"""Training-time augmentation on band-limited audio: codec round trips, random crops and added noise.

Applied alike to cries and non-cries, so that neither the codec nor the clip length nor the noise
floor tells the classes apart. Everything draws from the generator it is given (fixed seeds).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from services.classifier.features import PHONE_SAMPLE_RATE
from services.common.audio import decode_audio, encode_audio

MIN_CROP_SECONDS = 1.5
WINDOW_SECONDS_AT_PHONE_RATE = 5 * PHONE_SAMPLE_RATE
OPUS = ("ogg", "libopus", 12000)
CODECS = (OPUS, ("mp3", "libmp3lame", 16000))
# The codec match of the platform-confound evaluation: every clip as an Android upload (AMR-NB 12.2 kbit/s,
# SoX's compression mode 7) and then as a voice note (Opus), so that the codec no longer tells the platform.
AMR_NB_MODE = 7
CODEC_MATCH = f"amrnb-12.2k+opus-{OPUS[2] // 1000}k"


def codec_round_trip(samples: np.ndarray, container: str, codec: str, bit_rate: int) -> np.ndarray:
    """Encode at PHONE_SAMPLE_RATE with a lossy phone codec and decode again through the upload path."""
    encoded = encode_audio(samples, PHONE_SAMPLE_RATE, container, codec, bit_rate)
    return decode_audio(encoded, PHONE_SAMPLE_RATE).samples


def amr_nb_round_trip(samples: np.ndarray) -> np.ndarray:
    """Encode at PHONE_SAMPLE_RATE as AMR-NB 12.2 kbit/s with SoX (FFmpeg here decodes AMR but cannot
    write it) and decode through the upload path; raises when SoX or its AMR-NB writer is missing."""
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError(
            "sox is not installed; the AMR-NB round trip needs sox and libsox-fmt-all (make apt)"
        )
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    raw = ["-t", "raw", "-r", str(PHONE_SAMPLE_RATE), "-e", "signed", "-b", "16", "-c", "1"]
    command = [sox, *raw, "-", "-t", "amr-nb", "-C", str(AMR_NB_MODE), "-"]
    encoded = subprocess.run(command, input=pcm, capture_output=True, check=False)
    if encoded.returncode != 0 or not encoded.stdout.startswith(b"#!AMR\n"):
        raise RuntimeError(
            f"sox could not write AMR-NB ({encoded.stderr.decode(errors='replace').strip()}); "
            "install libsox-fmt-all with libopencore-amrnb0 (make apt)"
        )
    return decode_audio(encoded.stdout, PHONE_SAMPLE_RATE).samples


def codec_match(samples: np.ndarray) -> np.ndarray:
    """The CODEC_MATCH round trip (AMR-NB, then Opus), trimmed or zero-padded to the input's length."""
    matched = codec_round_trip(amr_nb_round_trip(samples), *OPUS)
    matched = matched[: len(samples)]
    return np.pad(matched, (0, len(samples) - len(matched))).astype(np.float32, copy=False)


def random_view(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One augmented view (at most one window long) of a band-limited clip."""
    view = _random_crop(samples, rng)
    if rng.random() < 0.5:
        container, codec, bit_rate = CODECS[rng.integers(len(CODECS))]
        view = codec_round_trip(view, container, codec, bit_rate)
    if rng.random() < 0.3:
        view = _add_noise(view, rng)
    return view.astype(np.float32, copy=False)


def _random_crop(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    length = WINDOW_SECONDS_AT_PHONE_RATE
    if rng.random() < 0.3:
        length = int(rng.uniform(MIN_CROP_SECONDS, 5.0) * PHONE_SAMPLE_RATE)
    length = min(length, len(samples))
    start = int(rng.integers(0, len(samples) - length + 1))
    return samples[start : start + length]


def _add_noise(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White or pink-ish noise at 10-30 dB SNR."""
    noise = rng.standard_normal(len(samples)).astype(np.float32)
    if rng.random() < 0.5:
        noise = np.cumsum(noise) * 0.05
        noise -= noise.mean()
    signal_power = float(np.mean(samples**2)) + 1e-10
    noise_power = float(np.mean(noise**2)) + 1e-10
    snr_db = rng.uniform(10, 30)
    return np.clip(samples + noise * np.sqrt(signal_power / noise_power / 10 ** (snr_db / 10)), -1, 1)
