"""Log-mel features of the reference baseline, computed with numpy alone (no librosa/numba at runtime).

The reference baseline takes 5 s at 22050 Hz, zero-padded, as a 128-band Slaney mel spectrogram in dB
relative to its maximum, 200 frames long. Every recording is first band-limited through 8 kHz (4 kHz
audio bandwidth) because the Donate-a-Cry cries were recorded at 8 kHz: if the model saw wider-band
audio only on non-cries it would learn the microphone instead of the cry.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import soxr

PHONE_SAMPLE_RATE = 8000  # every input passes through this rate first: the common band limit
SAMPLE_RATE = 22050
WINDOW_SECONDS = 5.0
WINDOW_SAMPLES = int(SAMPLE_RATE * WINDOW_SECONDS)  # 110250
N_FFT = 2048
HOP_LENGTH = 552  # with centre padding, 110250 samples give exactly 200 frames
N_MELS = 128
N_FRAMES = 1 + WINDOW_SAMPLES // HOP_LENGTH  # 200
TOP_DB = 80.0
AMIN = 1e-10
# Windows over longer recordings overlap by half, so a cry burst is never split across every window.
WINDOW_HOP_SECONDS = 2.5


def feature_parameters() -> dict[str, float | int | str]:
    """What the ONNX metadata records, so a model is never fed features it was not trained on."""
    return {
        "band_limit_sample_rate": PHONE_SAMPLE_RATE,
        "sample_rate": SAMPLE_RATE,
        "window_seconds": WINDOW_SECONDS,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "n_mels": N_MELS,
        "n_frames": N_FRAMES,
        "top_db": TOP_DB,
        "mel_scale": "slaney",
        "window_hop_seconds": WINDOW_HOP_SECONDS,
    }


def _hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = frequencies / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    above = frequencies >= min_log_hz
    mels[above] = min_log_mel + np.log(frequencies[above] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    frequencies = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    above = mels >= min_log_mel
    frequencies[above] = min_log_hz * np.exp(logstep * (mels[above] - min_log_mel))
    return frequencies


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular Slaney-normalised filters, as librosa.filters.mel builds them."""
    fft_frequencies = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_points = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], N_MELS + 2)
    )
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_frequencies[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2 : N_MELS + 2] - mel_points[:N_MELS]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def _hann_window() -> np.ndarray:
    """Periodic Hann window, as scipy.signal.get_window('hann', N_FFT) and librosa use."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def band_limit(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resample to PHONE_SAMPLE_RATE: the common band limit every clip goes through."""
    if sample_rate == PHONE_SAMPLE_RATE:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, sample_rate, PHONE_SAMPLE_RATE, quality="HQ").astype(np.float32)


def to_model_rate(phone_samples: np.ndarray) -> np.ndarray:
    """Band-limited audio at PHONE_SAMPLE_RATE up to the feature rate."""
    return soxr.resample(phone_samples, PHONE_SAMPLE_RATE, SAMPLE_RATE, quality="HQ").astype(np.float32)


def fit_window(samples: np.ndarray) -> np.ndarray:
    """Exactly WINDOW_SAMPLES: zero-padded at the end when short, cut when long."""
    if len(samples) >= WINDOW_SAMPLES:
        return samples[:WINDOW_SAMPLES]
    return np.pad(samples, (0, WINDOW_SAMPLES - len(samples)))


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Starts of overlapping windows covering the whole recording; the last one ends at the end."""
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def split_windows(samples: np.ndarray) -> np.ndarray:
    """(n_windows, WINDOW_SAMPLES) windows covering the recording (one padded window if short)."""
    hop = int(WINDOW_HOP_SECONDS * SAMPLE_RATE)
    return np.stack(
        [
            fit_window(samples[s : s + WINDOW_SAMPLES])
            for s in window_starts(len(samples), WINDOW_SAMPLES, hop)
        ]
    )


def power_spectrogram(samples: np.ndarray, hop_length: int) -> np.ndarray:
    """(frames, N_FFT // 2 + 1) float32 power of a centred, zero-padded STFT: librosa.stft's framing."""
    padded = np.pad(samples.astype(np.float32, copy=False), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::hop_length]
    spectrum = scipy.fft.rfft(frames * _hann_window(), axis=1, workers=1)  # float32 in, complex64 out
    return spectrum.real**2 + spectrum.imag**2


def log_mel(window: np.ndarray) -> np.ndarray:
    """(N_MELS, N_FRAMES) float32 log-mel of one WINDOW_SAMPLES window at SAMPLE_RATE, librosa-equivalent."""
    power = power_spectrogram(fit_window(window), HOP_LENGTH)
    return power_to_db(mel_filterbank() @ power.T)


def power_to_db(power: np.ndarray) -> np.ndarray:
    """librosa.power_to_db(power, ref=np.max, amin=1e-10, top_db=80)."""
    reference = max(float(power.max()), AMIN)
    decibels = 10.0 * np.log10(np.maximum(power, AMIN)) - 10.0 * np.log10(reference)
    return np.maximum(decibels, decibels.max() - TOP_DB).astype(np.float32)
