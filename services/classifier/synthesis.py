"""Negatives the corpus lacks, made locally: adult speech (espeak-ng, many voices) and synthetic noise.

The shared data has no adult speech, no music and few noises, yet parents' recordings are full of
them. espeak-ng (GPL-3 voice data, output free to use) reads a few sentences written for this project
and Russian sayings from Debian's fortunes-ru; noise is generated with numpy. All of it may train
shipped weights.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from services.classifier.features import PHONE_SAMPLE_RATE, band_limit
from services.common.audio import AudioLimits, AudioRejected, decode_audio

if TYPE_CHECKING:
    from services.classifier.dataset import Clip

SPEECH_CLIPS = 240
NOISE_CLIPS = 120
_SPEECH_LIMITS = AudioLimits(max_duration_s=600.0)
ESPEAK_VOICES = ("en-us", "en-gb", "ru", "de", "fr-fr", "es", "it", "pt", "uk", "pl", "tr", "cmn", "ja", "hi")
ESPEAK_VARIANTS = (
    "",
    "+f1",
    "+f2",
    "+f3",
    "+f4",
    "+f5",
    "+m1",
    "+m3",
    "+m5",
    "+m7",
    "+klatt",
    "+whisper",
    "+croak",
)
PROJECT_SENTENCES = (
    "Hello darling, are you hungry again? Let me warm the bottle for you.",
    "Shh, shh, it is all right, mummy is here, go back to sleep now.",
    "Can you turn the music down a little, the baby has just fallen asleep.",
    "I think he needs a new nappy, could you pass me the wipes please?",
    "We are leaving for the doctor at nine, do not forget the blue bag.",
    "Look at the little duck, can you say duck? Duck, duck, duck!",
    "The weather will be cold tomorrow with some rain in the afternoon.",
    "Please call me back when you get this message, it is about the car.",
    "Where are my keys? I put them on the table a minute ago.",
    "One, two, three, four, five, six, seven, eight, nine, ten.",
    "Good night, sweet dreams, see you in the morning my love.",
    "Marusya, what is the weather like today in Moscow?",
)


def synthesise_negatives(seed: int) -> list[Clip]:
    """Speech and noise clips at PHONE_SAMPLE_RATE, each its own group, licence 'synthesised'."""
    from services.classifier.dataset import Clip

    rng = np.random.default_rng(seed)
    sayings = _russian_sayings()
    clips = []
    for index in range(SPEECH_CLIPS):
        voice = ESPEAK_VOICES[index % len(ESPEAK_VOICES)] + str(rng.choice(ESPEAK_VARIANTS))
        texts = sayings if voice.startswith(("ru", "uk")) and sayings else PROJECT_SENTENCES
        samples = _speech_clip(voice, texts, rng)
        clips.append(
            Clip(
                f"synth/speech/{index:03d}-{voice}",
                "synth-speech",
                "speech",
                False,
                f"synth-speech-{index}",
                "synthesised",
                samples,
            )
        )
    for index in range(NOISE_CLIPS):
        kind = NOISE_KINDS[index % len(NOISE_KINDS)]
        samples = band_limit(_noise_clip(kind, rng), 16000)
        clips.append(
            Clip(
                f"synth/noise/{index:03d}-{kind}",
                "synth-noise",
                kind,
                False,
                f"synth-noise-{index}",
                "synthesised",
                samples,
            )
        )
    return clips


def _russian_sayings() -> list[str]:
    """Short sayings from Debian's fortunes-ru, when it is installed."""
    directory = Path("/usr/share/games/fortunes/ru")
    sayings: list[str] = []
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        if path.suffix or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        sayings += [s.split("--")[0].strip() for s in text.split("\n%\n") if 20 < len(s) < 200]
    return sayings[:400]


def speak(text: str, voice: str, pitch: int, speed: int) -> np.ndarray:
    """espeak-ng speech for ``text`` at PHONE_SAMPLE_RATE."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(
            ["espeak-ng", "-w", wav.name, "-v", voice, "-p", str(pitch), "-s", str(speed), text],
            check=True,
            capture_output=True,
        )
        return decode_audio(Path(wav.name).read_bytes(), PHONE_SAMPLE_RATE, _SPEECH_LIMITS).samples


def _speech_clip(voice: str, texts: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    target = rng.uniform(2.0, 8.0) * PHONE_SAMPLE_RATE
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < target:
        text = str(texts[rng.integers(len(texts))])
        try:
            parts.append(speak(text, voice, int(rng.integers(20, 99)), int(rng.integers(110, 220))))
        except AudioRejected:  # espeak-ng says nothing for some punctuation-only sayings
            continue
        parts.append(np.zeros(int(rng.uniform(0.1, 0.6) * PHONE_SAMPLE_RATE), dtype=np.float32))
    return np.concatenate(parts)[: int(target)]


NOISE_KINDS = ("white", "pink", "brown", "hum", "fan", "tones", "clicks", "chirps")


def _noise_clip(kind: str, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    """A few seconds of one kind of household-like synthetic noise at ``rate``, peak about 0.5."""
    n = int(rng.uniform(2.0, 8.0) * rate)
    t = np.arange(n) / rate
    white = rng.standard_normal(n)
    if kind == "white":
        signal = white
    elif kind in ("pink", "brown", "fan"):
        spectrum = np.fft.rfft(white)
        frequencies = np.maximum(np.fft.rfftfreq(n, 1 / rate), 1.0)
        exponent = {"pink": 0.5, "brown": 1.0, "fan": 0.0}[kind]
        shaped = spectrum / frequencies**exponent
        if kind == "fan":
            centre = rng.uniform(200, 2000)
            shaped *= np.exp(-0.5 * ((frequencies - centre) / (centre / 3)) ** 2)
        signal = np.fft.irfft(shaped, n)
    elif kind == "hum":
        base = rng.choice([50.0, 60.0, 100.0, 120.0])
        signal = sum(np.sin(2 * np.pi * base * k * t) / k for k in range(1, 8)) + 0.05 * white
    elif kind == "tones":
        signal = np.zeros(n)
        for start in rng.uniform(0, t[-1], 6):
            mask = (t >= start) & (t < start + rng.uniform(0.1, 0.8))
            signal[mask] += np.sin(2 * np.pi * rng.uniform(300, 3000) * t[mask])
        signal += 0.01 * white
    elif kind == "clicks":
        signal = 0.02 * white
        for position in rng.integers(0, n - 200, int(rng.integers(5, 40))):
            signal[position : position + 200] += rng.standard_normal(200) * np.exp(-np.arange(200) / 30)
    else:  # chirps: rising and falling sweeps, tonal like a cry but not one
        f0, f1 = rng.uniform(200, 800), rng.uniform(800, 3500)
        sweep = f0 + (f1 - f0) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 2.0) * t))
        signal = np.sin(2 * np.pi * np.cumsum(sweep) / rate) + 0.02 * white
    signal = signal / (np.abs(signal).max() + 1e-9) * rng.uniform(0.1, 0.7)
    return signal.astype(np.float32)
