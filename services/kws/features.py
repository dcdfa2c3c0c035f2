"""16 kHz log-mel features in numpy, for the whole track at once or chunk by chunk.

One STFT over the whole track (strided frames, one float32 scipy rfft call, one matrix product with the mel
filterbank) keeps the offline scan far faster than real time without librosa or numba at run time.
Frames are not centred: frame ``k`` covers samples ``[k * hop, k * hop + window)``, so a chunked
extractor that carries the unused tail of the previous chunk produces exactly the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import scipy.fft

from services.kws.detector import FrameTiming

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 40
F_MIN = 40.0
F_MAX = 7800.0
LOG_FLOOR = 1e-6


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def _mel_band_edges_hz() -> np.ndarray:
    """Lower edge, centres and upper edge of the mel bands, equally spaced in mel, shape (N_MELS + 2,)."""
    return _mel_to_hz(np.linspace(_hz_to_mel(np.array(F_MIN)), _hz_to_mel(np.array(F_MAX)), N_MELS + 2))


def mel_band_centres_hz() -> np.ndarray:
    """Centre frequency of each mel band, shape (N_MELS,)."""
    return _mel_band_edges_hz()[1:-1]


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """Triangular HTK-style mel filters, shape (N_FFT // 2 + 1, N_MELS), float32."""
    hz_points = _mel_band_edges_hz()
    bins = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    lower, centre, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(WINDOW + 1)[:-1].astype(np.float32)


def frame_count(n_samples: int) -> int:
    """How many whole frames ``n_samples`` samples give."""
    return 0 if n_samples < WINDOW else 1 + (n_samples - WINDOW) // HOP


def log_mel(samples: np.ndarray) -> np.ndarray:
    """Log-mel features of mono 16 kHz float32 ``samples``, shape (frames, N_MELS), float32."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    n_frames = frame_count(len(samples))
    if n_frames == 0:
        return np.zeros((0, N_MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.as_strided(
        samples,
        shape=(n_frames, WINDOW),
        strides=(HOP * samples.strides[0], samples.strides[0]),
        writeable=False,
    )
    spectrum = scipy.fft.rfft(frames * _window(), n=N_FFT, axis=1, workers=1)  # complex64: stays float32
    power = spectrum.real**2 + spectrum.imag**2
    return np.log(power @ mel_filterbank() + np.float32(LOG_FLOOR))


def frame_levels_db(features: np.ndarray) -> np.ndarray:
    """Each feature frame's level in dB (its mel power summed over bands): where words begin and pause."""
    return (10 * np.log10(np.exp(features.astype(np.float64)).sum(axis=1))).astype(np.float32)


def frame_centre_s(frame: int | np.ndarray) -> float | np.ndarray:
    """Time of the centre of feature frame ``frame``, in seconds."""
    return (frame * HOP + WINDOW / 2) / SAMPLE_RATE


FEATURE_TIMING = FrameTiming(hop_ms=HOP * 1000 / SAMPLE_RATE, offset_ms=WINDOW / 2 * 1000 / SAMPLE_RATE)


@dataclass
class StreamingLogMel:
    """Chunk-by-chunk log-mel with explicit state: the samples not yet covered by a whole frame."""

    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Features of every frame completed by ``chunk``; identical to ``log_mel`` over the whole stream."""
        buffered = np.concatenate([self.pending, np.asarray(chunk, dtype=np.float32)])
        n_frames = frame_count(len(buffered))
        features = log_mel(buffered[: (n_frames - 1) * HOP + WINDOW]) if n_frames else log_mel(buffered[:0])
        self.pending = buffered[n_frames * HOP :]
        return features
