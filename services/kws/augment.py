"""Waveform augmentations for training and the simulated echo path (numpy, scipy, pyroomacoustics, PyAV).

Room impulse responses are hybrid: pyroomacoustics' image-source method for the early reflections
(order ≤ 12, fast) plus an exponentially decaying noise tail that reaches the room's RT60, because a
full image-source RIR for a live room is too slow to make hundreds of. Codec round trips go through
FFmpeg (PyAV) and are re-aligned by cross-correlation so keyword spans stay exact. Two augmentations
work on the log-mel features instead: vocal-tract-length warping (another speaker's formants, exactly
and cheaply on the mel axis) and SpecAugment-style masks.
"""

from __future__ import annotations

import numpy as np
import pyroomacoustics as pra
import scipy.signal
import soxr

from services.common.audio import AudioLimits, decode_audio, encode_audio
from services.kws.features import F_MAX, F_MIN, N_MELS, mel_band_centres_hz

SAMPLE_RATE = 16000


def trim_silence(samples: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """``samples`` without leading and trailing 10 ms frames quieter than ``floor_db`` below the peak."""
    frame = SAMPLE_RATE // 100
    n_frames = len(samples) // frame
    if n_frames == 0:
        return samples
    energy = (samples[: n_frames * frame].reshape(n_frames, frame) ** 2).mean(axis=1)
    loud = np.flatnonzero(10 * np.log10(energy + 1e-12) >= 10 * np.log10(energy.max() + 1e-12) + floor_db)
    return samples[loud[0] * frame : (loud[-1] + 1) * frame]


def change_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch moves with it), by resampling."""
    if abs(factor - 1.0) < 1e-3:
        return samples
    return soxr.resample(samples, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ").astype(np.float32)


def room_impulse_response(rng: np.random.Generator) -> np.ndarray:
    """A random shoebox room's RIR, direct path at sample 0, unit peak."""
    dims = rng.uniform([2.5, 2.5, 2.3], [9.0, 8.0, 3.6])
    rt60 = float(rng.uniform(0.15, 0.9))
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 12))
    room.add_source(rng.uniform([0.4, 0.4, 0.4], dims - 0.4))
    room.add_microphone(rng.uniform([0.4, 0.4, 0.4], dims - 0.4))
    room.compute_rir()
    early = np.asarray(room.rir[0][0], dtype=np.float64)
    early = early[max(0, int(np.argmax(np.abs(early))) - 8) :]
    length = int(rt60 * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    tail_start = min(len(early), length) // 2
    tail[:tail_start] = 0.0
    tail *= np.sqrt(np.mean(early[tail_start:] ** 2) + 1e-12) / (
        np.sqrt(np.mean(tail[tail_start:] ** 2)) + 1e-12
    )
    rir = np.zeros(max(len(early), length))
    rir[: len(early)] += early
    rir[:length] += tail
    return (rir / np.abs(rir).max()).astype(np.float32)


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with ``rir`` and keep the input's length and RMS."""
    wet = scipy.signal.fftconvolve(samples, rir)[: len(samples)]
    return (wet * rms(samples) / (rms(wet) + 1e-9)).astype(np.float32)


def band_limit(samples: np.ndarray, low_hz: float, high_hz: float, order: int = 4) -> np.ndarray:
    """Butterworth band-pass, e.g. a small speaker or a telephone channel."""
    high_hz = min(high_hz, SAMPLE_RATE / 2 * 0.98)
    sos = scipy.signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return scipy.signal.sosfilt(sos, samples).astype(np.float32)


# Memoryless curves of an overdriven small loudspeaker or amplifier, for training. The echo path's tanh is
# left out on purpose, so the self-trigger simulation hears a curve the model did not train on.
SATURATION_CURVES = ("arctan", "cubic", "asymmetric", "hard")


def saturate(samples: np.ndarray, curve: str, drive: float) -> np.ndarray:
    """``samples`` through ``curve`` with the peak driven to ``drive`` (1: barely bent), RMS kept."""
    x = drive * samples.astype(np.float64) / (np.abs(samples).max() + 1e-9)
    if curve == "arctan":
        y = np.arctan(x)
    elif curve == "cubic":
        clipped = np.clip(x, -1.0, 1.0)
        y = 1.5 * clipped - 0.5 * clipped**3
    elif curve == "asymmetric":  # a cone that moves out more easily than in: even harmonics as well
        y = np.where(x >= 0, x / (1 + x), x / (1 - 0.5 * x))
    elif curve == "hard":
        y = np.clip(x, -1.0, 1.0)
    else:
        raise ValueError(f"unknown saturation curve {curve!r}; one of {SATURATION_CURVES}")
    return (y * rms(samples) / rms(y)).astype(np.float32)


def automatic_gain(
    samples: np.ndarray,
    target_db: float,
    max_gain_db: float,
    attack_s: float,
    release_s: float,
) -> np.ndarray:
    """A device's AGC: a gain that follows the 10 ms frame level towards ``target_db`` (dBFS), capped at
    ``max_gain_db``; the result is clipped to full scale.

    The level follower rises within ``attack_s`` and falls over ``release_s``, as device AGCs and
    limiters do (WebRTC's AGC2 limiter follows a rising level at once): a loud onset after silence pulls
    the gain down at once, and the gain creeps back up through pauses. A follower as slow upwards as
    downwards plays the first half-second after every pause at up to the full gain, hard-clipped, which
    an AGC is built to avoid.
    """
    frame = SAMPLE_RATE // 100
    n_frames = -(-len(samples) // frame)
    padded = np.zeros(n_frames * frame)
    padded[: len(samples)] = samples
    level_db = 10 * np.log10((padded.reshape(n_frames, frame) ** 2).mean(axis=1) + 1e-12)
    rising, falling = (1 - np.exp(-0.01 / seconds) for seconds in (attack_s, release_s))
    followed = np.empty_like(level_db)
    current = level_db[0]
    for index, level in enumerate(level_db):
        current += (rising if level > current else falling) * (level - current)
        followed[index] = current
    gain_db = np.minimum(target_db - followed, max_gain_db)
    gain = np.repeat(10 ** (gain_db / 20), frame)[: len(samples)]
    return np.clip(samples * gain, -1.0, 1.0).astype(np.float32)


_CODECS = {"mp3": ("mp3", "libmp3lame", 16000), "opus": ("ogg", "libopus", 16000)}


def codec_round_trip(samples: np.ndarray, codec: str, bitrate: int) -> np.ndarray:
    """Encode with ``codec`` at ``bitrate`` bit/s and decode, re-aligned to the input by cross-correlation."""
    container_format, codec_name, rate = _CODECS[codec]
    if rate != SAMPLE_RATE:
        raise ValueError(f"{codec} runs at {rate} Hz, the spotter at {SAMPLE_RATE} Hz")
    encoded = encode_audio(samples, rate, container_format, codec_name, bitrate)
    # our own encoding of a track of any length (evaluation joins minutes of speech), not a client's upload
    own_track = AudioLimits(max_bytes=len(encoded) + 1, max_duration_s=len(samples) / SAMPLE_RATE + 60)
    return align_to(decode_audio(encoded, SAMPLE_RATE, own_track).samples, samples)


def align_to(candidate: np.ndarray, reference: np.ndarray, max_lag: int = 3000) -> np.ndarray:
    """``candidate`` shifted to best match ``reference`` (lag within ±max_lag), cut to its length."""
    n = len(reference)
    padded = np.zeros(n + 2 * max_lag, np.float32)
    usable = candidate[: n + max_lag]
    padded[max_lag : max_lag + len(usable)] = usable
    correlation = scipy.signal.fftconvolve(padded, reference[::-1], mode="valid")
    lag = int(np.argmax(correlation))
    return padded[lag : lag + n].astype(np.float32)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)) + 1e-12))


def coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power ∝ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n)
    frequencies[0] = frequencies[1]
    noise = np.fft.irfft(spectrum / frequencies ** (exponent / 2), n)
    return (noise / (rms(noise) + 1e-12)).astype(np.float32)


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal`` plus ``noise`` scaled so the signal-to-noise ratio (by RMS) is ``snr_db``."""
    scale = rms(signal) / (rms(noise) + 1e-12) / (10 ** (snr_db / 20))
    return (signal + scale * noise[: len(signal)]).astype(np.float32)


def fit_length(samples: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample crop of ``samples``, looped when it is shorter."""
    if len(samples) < n:
        samples = np.tile(samples, n // max(1, len(samples)) + 1)
    start = int(rng.integers(0, len(samples) - n + 1))
    return samples[start : start + n]


def vocal_tract_warp(features: np.ndarray, alpha: float, boundary: float = 0.8) -> np.ndarray:
    """Log-mel ``features`` (frames, N_MELS) as a vocal tract ``alpha`` times shorter would give them.

    VTLP's piecewise-linear warp f → alpha·f up to ``boundary`` of the band (scaled so nothing leaves
    it), then linear to F_MAX, applied by reading each band at its source frequency, interpolated
    between bands. alpha > 1 moves formants up (a smaller speaker), alpha < 1 down.
    """
    centres = mel_band_centres_hz()
    knee = boundary * F_MAX * min(1.0, 1.0 / alpha)
    source = np.where(
        centres <= alpha * knee,
        centres / alpha,
        knee + (centres - alpha * knee) * (F_MAX - knee) / (F_MAX - alpha * knee),
    )
    positions = np.interp(np.clip(source, F_MIN, F_MAX), centres, np.arange(N_MELS))
    lower = np.clip(np.floor(positions).astype(int), 0, N_MELS - 1)
    upper = np.clip(lower + 1, 0, N_MELS - 1)
    fraction = (positions - lower).astype(np.float32)
    return (features[:, lower] * (1 - fraction) + features[:, upper] * fraction).astype(features.dtype)


def mask_features(
    features: np.ndarray,
    fill: np.ndarray,
    rng: np.random.Generator,
    masks: int = 2,
    max_bands: int = 5,
    max_frames: int = 8,
) -> np.ndarray:
    """SpecAugment: ``masks`` bands of up to ``max_bands`` mel bands and ``masks`` stretches of up to
    ``max_frames`` frames of each example (batch, frames, N_MELS) set to ``fill`` (per band), a copy.
    Time masks stay short (80 ms) against a keyword of about half a second."""
    masked = features.copy()
    n_frames = features.shape[1]
    for example in masked:
        for _ in range(masks):
            width = int(rng.integers(0, max_bands + 1))
            first = int(rng.integers(0, N_MELS - width + 1))
            example[:, first : first + width] = fill[first : first + width]
            length = int(rng.integers(0, max_frames + 1))
            start = int(rng.integers(0, n_frames - length + 1))
            example[start : start + length] = fill
    return masked
