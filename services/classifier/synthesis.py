"""Negatives the corpus lacks, made locally: adult speech (espeak-ng, many voices) and synthetic noise.

The shared data has no adult speech, no music and few noises, yet parents' recordings are full of
them. espeak-ng (GPL-3 voice data, output free to use) reads a few sentences written for this project
and Russian sayings from Debian's fortunes-ru; noise is generated with numpy. All of it may train
shipped weights.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from services.classifier.features import PHONE_SAMPLE_RATE, band_limit
from services.common.audio import AudioLimits, AudioRejected, decode_audio
from services.common.tunes import SOUNDFONT, random_tune

if TYPE_CHECKING:
    from services.classifier.dataset import Clip

SPEECH_CLIPS = 240
NOISE_CLIPS = 120
CALL_CLIPS = 240
MUSIC_CLIPS = 60
FESTIVAL_CLIPS = 40
# The festvox-ru voice (BSD-like licence) allows training shipped weights on what it renders; so does the
# soundfont of the tunes (services.common.tunes).
FESTIVAL_RU_VOICE = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
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
    return clips + _tonal_negatives(np.random.default_rng(seed + 1))


def _tonal_negatives(rng: np.random.Generator) -> list[Clip]:
    """The hard negatives: animal-like calls, motors, water, music and natural-sounding Russian speech.

    Drawn from their own generator so that adding them leaves the older synthesised clips unchanged.
    """
    from services.classifier.dataset import Clip

    clips = []
    for index in range(CALL_CLIPS):
        kind = CALL_KINDS[index % len(CALL_KINDS)]
        samples = band_limit(_call_clip(kind, rng), 16000)
        clips.append(
            Clip(
                f"synth/call/{index:03d}-{kind}",
                "synth-call",
                kind,
                False,
                f"synth-call-{index}",
                "synthesised",
                samples,
            )
        )
    _require_tool("fluidsynth", SOUNDFONT)
    for index in range(MUSIC_CLIPS):
        samples = _music_clip(rng)
        clips.append(
            Clip(
                f"synth/music/{index:03d}",
                "synth-music",
                "music",
                False,
                f"synth-music-{index}",
                "synthesised",
                samples,
            )
        )
    _require_tool("text2wave", FESTIVAL_RU_VOICE)
    sayings = _russian_sayings() or list(PROJECT_SENTENCES)
    for index in range(FESTIVAL_CLIPS):
        samples = _festival_clip(sayings, rng)
        clips.append(
            Clip(
                f"synth/festival/{index:03d}",
                "synth-festival",
                "speech",
                False,
                f"synth-festival-{index}",
                "synthesised",
                samples,
            )
        )
    return clips


def _require_tool(program: str, data: Path) -> None:
    """Training must not silently lose a kind of negative because a Debian package is missing."""
    if not shutil.which(program) or not data.exists():
        raise RuntimeError(f"{program} or {data} is missing: run `make setup` (Debian packages)")


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


CALL_KINDS = ("meow", "cluck", "moo", "croak", "whine", "saw", "pour", "vibrato")


def _harmonic(f0: np.ndarray, rate: int, tilt: float, formants: Sequence[float]) -> np.ndarray:
    """Harmonic tone following the pitch contour ``f0`` (Hz per sample), shaped by a few formant peaks."""
    phase = 2 * np.pi * np.cumsum(f0) / rate
    signal = np.zeros(len(f0))
    for k in range(1, int(4000 / max(float(f0.min()), 50.0)) + 1):
        frequency = k * f0
        gain = tilt**k * (0.2 + sum(np.exp(-0.5 * ((frequency - f) / (0.15 * f)) ** 2) for f in formants))
        signal += np.where(frequency < rate / 2, gain, 0.0) * np.sin(k * phase)
    return signal


def _envelope(n: int, attack: float = 0.1) -> np.ndarray:
    ramp = max(1, int(n * attack))
    envelope = np.ones(n)
    envelope[:ramp] = np.linspace(0, 1, ramp)
    envelope[-ramp:] = np.linspace(1, 0, ramp)
    return envelope


def _call(kind: str, rng: np.random.Generator, rate: int) -> np.ndarray:
    """One call or sound event of ``kind``."""
    if kind == "meow":  # rise-fall pitch 400-1000 Hz with a moving formant, 0.4-1.2 s
        n = int(rng.uniform(0.4, 1.2) * rate)
        shape = np.sin(np.pi * np.linspace(0, 1, n))
        f0 = rng.uniform(350, 600) + rng.uniform(100, 400) * shape
        return _harmonic(f0, rate, 0.8, (rng.uniform(700, 1500), rng.uniform(1800, 3000))) * _envelope(n, 0.2)
    if kind == "cluck":  # short harmonic bursts with noise, a hen's clucking
        n = int(rng.uniform(0.06, 0.25) * rate)
        f0 = np.full(n, rng.uniform(250, 700)) * np.linspace(1.1, 0.9, n)
        tone = _harmonic(f0, rate, 0.85, (rng.uniform(900, 2500),))
        return (tone + 0.3 * rng.standard_normal(n)) * _envelope(n, 0.3)
    if kind == "moo":  # long low call with a slow formant change
        n = int(rng.uniform(1.0, 2.5) * rate)
        f0 = rng.uniform(80, 200) * (1 + 0.15 * np.sin(np.pi * np.linspace(0, 1, n)))
        return _harmonic(f0, rate, 0.9, (rng.uniform(300, 800), rng.uniform(1000, 2000))) * _envelope(n, 0.2)
    if kind == "croak":  # a tone pulsed 15-60 times a second, a frog's croak
        n = int(rng.uniform(0.2, 0.8) * rate)
        t = np.arange(n) / rate
        pulses = (np.sin(2 * np.pi * rng.uniform(15, 60) * t) > 0.3).astype(float)
        return _harmonic(np.full(n, rng.uniform(150, 900)), rate, 0.7, (rng.uniform(500, 2000),)) * pulses
    if kind == "whine":  # a motor: drifting harmonic whine in broadband noise (vacuum cleaner, drill)
        n = int(rng.uniform(2.0, 6.0) * rate)
        f0 = rng.uniform(100, 600) * (
            1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.1, 1) * np.arange(n) / rate)
        )
        noise = np.cumsum(rng.standard_normal(n)) * 0.02
        return _harmonic(f0, rate, 0.8, (rng.uniform(500, 3000),)) + rng.uniform(0.5, 3) * (
            noise - noise.mean()
        )
    if kind == "saw":  # strokes of band noise with a resonance, a hand saw
        stroke = int(rng.uniform(0.2, 0.6) * rate)
        noise = np.fft.rfft(rng.standard_normal(stroke))
        frequencies = np.fft.rfftfreq(stroke, 1 / rate)
        centre = rng.uniform(1000, 3500)
        noise *= np.exp(-0.5 * ((frequencies - centre) / rng.uniform(100, 800)) ** 2)
        return np.fft.irfft(noise, stroke) * _envelope(stroke, 0.3)
    if kind == "pour":  # filtered noise with a rising resonance and bubbles, water filling a vessel
        n = int(rng.uniform(2.0, 5.0) * rate)
        t = np.arange(n) / rate
        signal = 0.3 * rng.standard_normal(n)
        for start in rng.uniform(0, t[-1], int(rng.integers(20, 120))):
            mask = (t >= start) & (t < start + 0.05)
            frequency = rng.uniform(300, 2500) * (1 + 2 * (t[mask] - start))
            signal[mask] += np.sin(2 * np.pi * frequency * (t[mask] - start)) * np.exp(
                -(t[mask] - start) * 80
            )
        return signal
    n = int(rng.uniform(0.5, 2.0) * rate)  # vibrato: a sung or whistled tone with vibrato
    t = np.arange(n) / rate
    f0 = rng.uniform(200, 1200) * (1 + rng.uniform(0.01, 0.06) * np.sin(2 * np.pi * rng.uniform(4, 8) * t))
    return _harmonic(f0, rate, rng.uniform(0.3, 0.9), (rng.uniform(500, 3000),)) * _envelope(n, 0.1)


def _call_clip(kind: str, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    """2-8 s of repeated calls of ``kind`` with pauses, over a little background noise, peak about 0.5."""
    n = int(rng.uniform(2.0, 8.0) * rate)
    signal = rng.standard_normal(n) * rng.uniform(0.001, 0.02)
    position = int(rng.uniform(0, 0.5) * rate)
    while position < n:
        call = _call(kind, rng, rate)
        call = call / (np.abs(call).max() + 1e-9) * rng.uniform(0.5, 1.0)
        end = min(n, position + len(call))
        signal[position:end] += call[: end - position]
        position = end + int(rng.uniform(0.05, 1.0) * rate)
    return (signal / (np.abs(signal).max() + 1e-9) * rng.uniform(0.1, 0.7)).astype(np.float32)


def _music_clip(rng: np.random.Generator) -> np.ndarray:
    """A random tune (``services.common.tunes``), 2-8 s of it at PHONE_SAMPLE_RATE."""
    samples = random_tune(rng, PHONE_SAMPLE_RATE)
    start = int(rng.uniform(0, max(0.0, len(samples) / PHONE_SAMPLE_RATE - 2.0)) * PHONE_SAMPLE_RATE)
    excerpt = samples[start : start + int(rng.uniform(2.0, 8.0) * PHONE_SAMPLE_RATE)]
    return (excerpt / (np.abs(excerpt).max() + 1e-9) * rng.uniform(0.1, 0.7)).astype(np.float32)


def _festival_clip(texts: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Russian speech from festival's recorded-unit voice (a natural male voice), 2-8 s."""
    target = int(rng.uniform(2.0, 8.0) * PHONE_SAMPLE_RATE)
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < target:
        with tempfile.TemporaryDirectory() as directory:
            text, wav = Path(directory) / "text.txt", Path(directory) / "speech.wav"
            text.write_text(str(texts[rng.integers(len(texts))]), encoding="utf-8")
            subprocess.run(
                ["text2wave", "-eval", "(voice_msu_ru_nsh_clunits)", str(text), "-o", str(wav)],
                check=True,
                capture_output=True,
            )
            try:
                parts.append(decode_audio(wav.read_bytes(), PHONE_SAMPLE_RATE, _SPEECH_LIMITS).samples)
            except AudioRejected:
                continue
    return np.concatenate(parts)[:target]
