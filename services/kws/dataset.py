"""Training and evaluation material built from the cached speech: composed utterances with exact spans.

A positive is ``[carrier] + keyword + [carrier]`` from one voice, each part trimmed and joined with a
short pause, so the keyword's span is known to the sample. Confusables are composed the same way.
In training a share of them is run on (no pause, or a few ms) into the carrier phrases, as a keyword
said mid-sentence is. Sayings are keyword-free speech. Training windows are then augmented (speed,
room, band, codec, noise, gain) and turned into log-mel features, most of them warped to another
vocal tract length, with frame labels.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np
import soundfile
import soxr

from services.common.settings import SHARED_DATA_DIR
from services.common.tunes import random_tune
from services.kws import augment
from services.kws.detector import FrameTiming
from services.kws.features import SAMPLE_RATE, log_mel
from services.kws.network import SCORE_STRIDE
from services.kws.speech_plan import VoicePlan
from services.kws.synthesis import SpeechCache

WINDOW_S = 3.0
SCORE_HOP_MS = 10.0 * SCORE_STRIDE
SCORE_OFFSET_MS = 12.5  # centre of the first 25 ms feature frame
TRAINING_TIMING = FrameTiming(hop_ms=SCORE_HOP_MS, offset_ms=SCORE_OFFSET_MS)
MUSIC_SHARE = 1 / 3  # of the noise under a window, when the augmenter has music
WARP_RANGE = (0.84, 1.19)  # vocal tract length factors, drawn log-uniformly: about a man's to a child's


@dataclass
class VoiceAudio:
    """One voice's trimmed takes, by role."""

    key: str
    natural: bool
    keywords: list[np.ndarray]
    confusables: list[np.ndarray]
    carriers: list[np.ndarray]
    sayings: list[np.ndarray]


def load_voice_audio(plans: list[VoicePlan], cache: SpeechCache) -> list[VoiceAudio]:
    def trimmed(requests) -> list[np.ndarray]:
        return [augment.trim_silence(cache.load(request)) for request in requests]

    return [
        VoiceAudio(
            key=plan.voice.key,
            natural=plan.voice.engine != "espeak",
            keywords=trimmed(plan.keywords),
            confusables=trimmed(plan.confusables),
            carriers=trimmed(plan.carriers),
            sayings=[cache.load(request) for request in plan.sayings],
        )
        for plan in plans
    ]


def compose(
    middle: np.ndarray,
    voice: VoiceAudio,
    rng: np.random.Generator,
    speed: float = 1.0,
    run_on: bool = False,
) -> tuple[np.ndarray, tuple[int, int]]:
    """``[carrier] pause middle pause [carrier]`` played ``speed`` times faster; the span of ``middle``.

    Pauses last 30–350 ms, or 0–30 ms when ``run_on``; the random draws are the same either way, so
    evaluation tracks (never run on) do not change with it."""
    parts: list[np.ndarray] = []
    if rng.random() < 0.65:
        parts += [voice.carriers[rng.integers(len(voice.carriers))], _pause(rng, run_on)]
    start = sum(len(part) for part in parts)
    parts.append(middle)
    if rng.random() < 0.7:
        parts += [_pause(rng, run_on), voice.carriers[rng.integers(len(voice.carriers))]]
    joined = np.concatenate(parts).astype(np.float32)
    audio = augment.change_speed(joined, speed)
    if len(audio) == len(joined):
        speed = 1.0  # change_speed leaves factors within 0.1% of 1 alone: so must the span
    return audio, (int(round(start / speed)), int(round((start + len(middle)) / speed)))


def keyword_speed(middle: np.ndarray, voice: VoiceAudio, rng: np.random.Generator) -> float:
    """A speed-up factor: natural voices are jittered by ±10%; espeak-ng words are brought to 0.4–0.75 s,
    the keyword's length in natural voices (espeak-ng says it faster)."""
    if voice.natural:
        return float(rng.uniform(0.9, 1.1))
    return float(np.clip(len(middle) / SAMPLE_RATE / rng.uniform(0.4, 0.75), 0.7, 1.45))


def place(
    audio: np.ndarray, spans: list[tuple[int, int]], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``audio`` cut or zero-padded to ``n`` samples at a random offset that keeps every span whole."""
    if len(audio) <= n:
        offset = int(rng.integers(0, n - len(audio) + 1))
        window = np.zeros(n, np.float32)
        window[offset : offset + len(audio)] = audio
        return window, [(start + offset, end + offset) for start, end in spans]
    lowest = max([0] + [end - n for _, end in spans])
    highest = min([len(audio) - n] + [start for start, _ in spans])
    cut = int(rng.integers(lowest, max(lowest, highest) + 1))
    return audio[cut : cut + n], [(start - cut, end - cut) for start, end in spans]


def _pause(rng: np.random.Generator, run_on: bool = False) -> np.ndarray:
    low, high = (0.0, 0.03) if run_on else (0.03, 0.35)
    return np.zeros(int(rng.uniform(low, high) * SAMPLE_RATE), np.float32)


@dataclass(frozen=True)
class OverMusic:
    """A channel: the track over a random stretch of ``music`` at ``snr_db`` (by RMS over the track, its
    pauses included), as speech over a music bed in a podcast or an advert."""

    music: np.ndarray
    snr_db: float

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mixed = augment.mix_at_snr(audio, augment.fit_length(self.music, len(audio), rng), self.snr_db)
        return (mixed / max(1.0, float(np.abs(mixed).max()))).astype(np.float32)


def load_background_clips() -> list[np.ndarray]:
    """ESC-10 clips (CC BY 3.0, which allows training shipped weights) at 16 kHz."""
    clips = []
    with open(SHARED_DATA_DIR / "manifest.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["licence"] == "CC-BY-3.0":
                samples, rate = soundfile.read(SHARED_DATA_DIR / row["path"], dtype="float32")
                clips.append(soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32))
    return clips


@dataclass
class Augmenter:
    """Random channel effects: room, band, codec, noise, gain; each with its own probability.

    With ``device_probability`` a window is also played as a device hears itself: an overdriven
    loudspeaker (a random curve of ``augment.SATURATION_CURVES``) before the room and an automatic gain
    control after the noise, so the model keeps its scores on distorted echo of its own playback. With
    ``music`` (random tunes, ``services.common.tunes``) a share ``MUSIC_SHARE`` of the noise drawn is a
    tune instead: playback is often speech over a music bed (podcasts, adverts, radio).
    """

    rirs: list[np.ndarray]
    backgrounds: list[np.ndarray]
    noises: list[np.ndarray]  # coloured noise, long enough to crop from (cheaper than making it each time)
    codec_probability: float = 0.05
    device_probability: float = 0.0
    music: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def create(
        cls, rng: np.random.Generator, rirs: int, device_probability: float = 0.0, music_beds: int = 0
    ) -> Augmenter:
        augmenter = cls(
            rirs=[augment.room_impulse_response(rng) for _ in range(rirs)],
            backgrounds=load_background_clips(),
            noises=[
                augment.coloured_noise(30 * SAMPLE_RATE, rng, exponent) for exponent in np.linspace(0, 2, 9)
            ],
            device_probability=device_probability,
        )
        if music_beds:  # no draw when off, so augmenters made without music stay as they were
            tunes = np.random.default_rng(int(rng.integers(2**32)))
            augmenter.music = [
                augment.trim_silence(random_tune(tunes, SAMPLE_RATE)) for _ in range(music_beds)
            ]
        return augmenter

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # no draw when off, so windows made without device effects stay as they were
        device = self.device_probability > 0 and bool(rng.random() < self.device_probability)
        if device:
            curve = str(rng.choice(augment.SATURATION_CURVES))
            audio = augment.saturate(audio, curve, float(np.exp(rng.uniform(np.log(1.2), np.log(6.0)))))
        if rng.random() < 0.5:
            audio = augment.reverberate(audio, self.rirs[rng.integers(len(self.rirs))])
        if rng.random() < 0.4:
            audio = augment.band_limit(audio, rng.uniform(80, 500), rng.uniform(3000, 8000))
        if rng.random() < 0.1:
            audio = _telephone(audio)
        elif rng.random() < self.codec_probability:
            codec = str(rng.choice(["mp3", "opus"]))
            audio = augment.codec_round_trip(audio, codec, int(rng.choice([12000, 24000, 48000])))
        if rng.random() < 0.75:
            audio = augment.mix_at_snr(audio, self.noise(len(audio), rng), float(rng.uniform(0, 30)))
        if device:
            audio = augment.automatic_gain(
                audio / (np.abs(audio).max() + 1e-9) * 10 ** (rng.uniform(-50, -20) / 20),
                target_db=float(rng.uniform(-32, -20)),
                max_gain_db=float(rng.uniform(12, 30)),
                attack_s=float(rng.uniform(0.005, 0.05)),
                release_s=float(rng.uniform(0.1, 1.0)),
            )
        floor = self.coloured(len(audio), rng) * 10 ** (rng.uniform(-90, -60) / 20)
        peak = np.abs(audio).max() + 1e-9
        return (audio / peak * 10 ** (rng.uniform(-35, -1) / 20) + floor).astype(np.float32)

    def noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.music and rng.random() < MUSIC_SHARE:
            return augment.fit_length(self.music[rng.integers(len(self.music))], n, rng)
        if rng.random() < 0.5:
            return augment.fit_length(self.backgrounds[rng.integers(len(self.backgrounds))], n, rng)
        return self.coloured(n, rng)

    def coloured(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return augment.fit_length(self.noises[rng.integers(len(self.noises))], n, rng)


def _telephone(audio: np.ndarray) -> np.ndarray:
    """8 kHz µ-law round trip: a cheap stand-in for narrow-band codecs."""
    narrow = soxr.resample(audio, SAMPLE_RATE, 8000)
    peak = np.abs(narrow).max() + 1e-9
    mu = 255.0
    encoded = (
        np.round(np.sign(narrow / peak) * np.log1p(mu * np.abs(narrow / peak)) / np.log1p(mu) * 127) / 127
    )
    decoded = np.sign(encoded) * np.expm1(np.abs(encoded) * np.log1p(mu)) / mu * peak
    return soxr.resample(decoded.astype(np.float32), 8000, SAMPLE_RATE)[: len(audio)].astype(np.float32)


def training_window(
    voices: list[VoiceAudio], augmenter: Augmenter, rng: np.random.Generator, run_on_probability: float
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One augmented WINDOW_S window and the keyword spans (ms) inside it; keywords and confusables are
    run on into their carriers (no real pause) with ``run_on_probability``."""
    n = int(WINDOW_S * SAMPLE_RATE)
    kind = rng.choice(["keyword", "confusable", "saying", "background"], p=[0.35, 0.3, 0.25, 0.1])
    natural = [voice for voice in voices if voice.natural]
    pool = natural if (natural and rng.random() < 0.5) else voices
    voice = pool[rng.integers(len(pool))]
    spans: list[tuple[int, int]] = []
    if kind in ("keyword", "confusable"):
        takes = voice.keywords if kind == "keyword" else voice.confusables
        middle = takes[rng.integers(len(takes))]
        run_on = run_on_probability > 0 and bool(rng.random() < run_on_probability)  # no draw when off
        audio, span = compose(middle, voice, rng, keyword_speed(middle, voice, rng), run_on)
        audio, spans = place(audio, [span] if kind == "keyword" else [], n, rng)
    elif kind == "saying":
        audio, spans = place(voice.sayings[rng.integers(len(voice.sayings))], [], n, rng)
    else:
        audio = augmenter.noise(n, rng) * 0.1
    audio = augmenter(audio, rng)
    return audio, [(start * 1000 / SAMPLE_RATE, end * 1000 / SAMPLE_RATE) for start, end in spans]


def training_features(audio: np.ndarray, rng: np.random.Generator, warp_probability: float) -> np.ndarray:
    """Log-mel features of a training window, warped to a random vocal tract length (``WARP_RANGE``)
    with ``warp_probability``: the synthetic voices are few, the speakers the model must hear are many."""
    features = log_mel(audio)
    if rng.random() < warp_probability:
        alpha = float(np.exp(rng.uniform(np.log(WARP_RANGE[0]), np.log(WARP_RANGE[1]))))
        features = augment.vocal_tract_warp(features, alpha)
    return features
