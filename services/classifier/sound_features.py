"""Input of the pretrained sound-event embedding the cry gate stands on, computed with numpy alone.

The gate's embedding is aiSFX (Ma & Lerch, ISMIR 2022, CC BY 4.0): a CNN trained on professional sound-effect
libraries, so it has heard cats, hens, vacuum cleaners, water and far more kinds of sound than the clips we
may train on. It expects 44.1 kHz audio scaled to a peak of 1, as a 96-band HTK mel spectrogram (filters
normalised to unit sum, 2048-sample frames every 1024 samples) compressed as log10(1 + 10^4 power) and
divided by the package's training maximum, cut into blocks of 100 frames (about 2.3 s) every 50 frames.
Every recording still passes through the 8 kHz band limit first (features.PHONE_SAMPLE_RATE), like every
other input.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import soxr

from services.classifier.features import N_FFT, PHONE_SAMPLE_RATE, power_spectrogram

SOUND_SAMPLE_RATE = 44100
SOUND_HOP_LENGTH = 1024
SOUND_N_MELS = 96
SOUND_LOG_GAIN = 10000.0
SOUND_LOG_MAXIMUM = 9.457798957824707  # aiSFX's "original" normalisation constant
BLOCK_FRAMES = 100
BLOCK_HOP_FRAMES = 50
# Blocks spread over a long recording: a 60 s note costs the gate what a 15 s one does.
MAX_BLOCKS = 12


def sound_feature_parameters() -> dict[str, float | int | str]:
    """What the ONNX metadata records about the gate's input."""
    return {
        "sample_rate": SOUND_SAMPLE_RATE,
        "n_fft": N_FFT,
        "hop_length": SOUND_HOP_LENGTH,
        "n_mels": SOUND_N_MELS,
        "mel_scale": "htk, unit-sum filters",
        "compression": f"log10(1 + {SOUND_LOG_GAIN:g} * power) / {SOUND_LOG_MAXIMUM!r}",
        "block_frames": BLOCK_FRAMES,
        "block_hop_frames": BLOCK_HOP_FRAMES,
        "max_blocks": MAX_BLOCKS,
    }


def _hz_to_htk_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _htk_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@lru_cache(maxsize=1)
def sound_mel_filterbank() -> np.ndarray:
    """(SOUND_N_MELS, N_FFT // 2 + 1) triangular HTK filters, each summing to 1 (librosa htk=True, norm=1)."""
    fft_frequencies = np.linspace(0, SOUND_SAMPLE_RATE / 2, N_FFT // 2 + 1)
    top = _hz_to_htk_mel(np.float64(SOUND_SAMPLE_RATE / 2))
    mel_points = _htk_mel_to_hz(np.linspace(0.0, top, SOUND_N_MELS + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_frequencies[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    sums = weights.sum(axis=1, keepdims=True)
    # The lowest filters are narrower than one FFT bin and stay empty, as in librosa.
    return (weights / np.where(sums > np.finfo(np.float32).tiny, sums, 1.0)).astype(np.float32)


def sound_spectrogram(phone_samples: np.ndarray) -> np.ndarray:
    """(frames, SOUND_N_MELS) float32 input spectrogram of band-limited audio at PHONE_SAMPLE_RATE."""
    samples = soxr.resample(phone_samples, PHONE_SAMPLE_RATE, SOUND_SAMPLE_RATE, quality="HQ")
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    samples = samples / peak if peak > 0 else samples
    mel = power_spectrogram(samples.astype(np.float32), SOUND_HOP_LENGTH) @ sound_mel_filterbank().T
    return (np.log10(mel * SOUND_LOG_GAIN + 1.0) / SOUND_LOG_MAXIMUM).astype(np.float32)


def block_starts(n_frames: int) -> list[int]:
    """Starts of the whole blocks the recording holds (at most MAX_BLOCKS, evenly spread)."""
    starts = list(range(0, max(n_frames, BLOCK_FRAMES) - BLOCK_FRAMES + 1, BLOCK_HOP_FRAMES))
    if len(starts) <= MAX_BLOCKS:
        return starts
    picked = np.unique(np.round(np.linspace(0, len(starts) - 1, MAX_BLOCKS)).astype(int))
    return [starts[i] for i in picked]


def sound_blocks(phone_samples: np.ndarray) -> np.ndarray:
    """(blocks, BLOCK_FRAMES, SOUND_N_MELS) gate input; a recording under one block is zero-padded."""
    spectrogram = sound_spectrogram(phone_samples)
    if len(spectrogram) < BLOCK_FRAMES:
        spectrogram = np.pad(spectrogram, ((0, BLOCK_FRAMES - len(spectrogram)), (0, 0)))
    return np.stack([spectrogram[s : s + BLOCK_FRAMES] for s in block_starts(len(spectrogram))])
