"""CryClassifier.analyse end to end: every format, every kind of bad input, and the gate on non-cries."""

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from services.classifier.analysis import CryClassifier
from services.classifier.settings import ClassifierSettings
from services.common.audio import decode_audio
from tests.audio_files import FORMATS, encode, tone

CRY_SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "cry" / "hungry-donateacry.ogg"
ANSWER_KEYS = {"status", "label", "probabilities", "quality", "model_version", "message"}


def cry_samples(rate: int) -> np.ndarray:
    return decode_audio(CRY_SAMPLE.read_bytes(), rate).samples


@pytest.mark.parametrize("container", sorted(FORMATS))
def test_every_format_is_judged(classifier: CryClassifier, container: str) -> None:
    rate = 16000 if container == "ogg" else 22050
    analysis = classifier.analyse(encode(cry_samples(rate), rate, container))
    assert analysis.status in {"ok", "not_sure"}, analysis.to_json_dict()
    assert set(analysis.probabilities) == set(classifier.metadata.labels)
    assert abs(sum(analysis.probabilities.values()) - 1) < 1e-3
    assert analysis.quality["reason"] is None
    assert set(analysis.to_json_dict()) == ANSWER_KEYS


@pytest.mark.parametrize(
    ("audio", "reason"),
    [
        (b"", "empty"),
        (b"%PDF-1.7 this is a document, not a recording" * 10, "not_audio"),
        (b"OggS" + bytes(range(256)) * 8, "corrupt"),
    ],
)
def test_bad_bytes_are_an_answer_not_an_exception(
    classifier: CryClassifier, audio: bytes, reason: str
) -> None:
    analysis = classifier.analyse(audio)
    assert (analysis.status, analysis.quality["reason"]) == ("bad_audio", reason)
    assert analysis.label is None and analysis.probabilities == {}
    assert analysis.message


def test_truncated_file_is_corrupt(classifier: CryClassifier) -> None:
    wav = encode(tone(5.0), 16000, "wav")
    assert classifier.analyse(wav[:40]).quality["reason"] in {"corrupt", "too_short"}


def test_oversized_and_overlong_are_rejected() -> None:
    small = CryClassifier.load(ClassifierSettings(max_audio_bytes=10_000))
    oversized = small.analyse(encode(tone(2.0), 16000, "wav"))
    assert (oversized.status, oversized.quality["reason"]) == ("bad_audio", "too_large")
    brief = CryClassifier.load(ClassifierSettings(max_audio_seconds=3.0))
    overlong = brief.analyse(encode(tone(4.0), 16000, "ogg"))
    assert (overlong.status, overlong.quality["reason"]) == ("bad_audio", "too_long")


def test_short_quiet_and_clipped_recordings(classifier: CryClassifier) -> None:
    cry = cry_samples(16000)
    cases = {
        "too_short": cry[:16000],
        "too_quiet": np.zeros(5 * 16000, dtype=np.float32),
        "clipped": np.clip(cry / (np.abs(cry).max() + 1e-9) * 20, -1, 1),
    }
    for reason, samples in cases.items():
        analysis = classifier.analyse(encode(samples, 16000, "wav"))
        assert (analysis.status, analysis.quality["reason"]) == ("bad_audio", reason)


def espeak(text: str, voice: str) -> bytes:
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-w", wav.name, "-v", voice, text], check=True, capture_output=True)
        return Path(wav.name).read_bytes()


@pytest.mark.parametrize(
    ("text", "voice"),
    [
        (
            "Hello, this is a voice message about the meeting tomorrow, please call me back when you can.",
            "en-us",
        ),
        ("Привет, это голосовое сообщение. Перезвони мне, пожалуйста, когда сможешь, я буду дома.", "ru+f3"),
    ],
)
def test_gate_rejects_speech(classifier: CryClassifier, text: str, voice: str) -> None:
    analysis = classifier.analyse(espeak(text, voice))
    assert analysis.status == "not_a_cry", analysis.quality
    assert analysis.quality["reason"] == "not_a_cry"


@pytest.mark.parametrize("colour", ["white", "brown"])
def test_gate_rejects_noise(classifier: CryClassifier, colour: str) -> None:
    noise = np.random.default_rng(7).standard_normal(6 * 16000)
    if colour == "brown":
        noise = np.cumsum(noise)
        noise -= noise.mean()
    noise = (noise / np.abs(noise).max() * 0.5).astype(np.float32)
    analysis = classifier.analyse(encode(noise, 16000, "ogg"))
    assert analysis.status == "not_a_cry", analysis.quality


def test_long_recording_uses_every_window(classifier: CryClassifier) -> None:
    """A cry after 6 s of faint room noise must still be found: the first 5 s are not all we look at."""
    cry = cry_samples(16000)[: 5 * 16000]
    quiet = (np.random.default_rng(3).standard_normal(6 * 16000) * 0.002).astype(np.float32)
    analysis = classifier.analyse(encode(np.concatenate([quiet, cry, cry]), 16000, "wav"))
    assert analysis.quality["duration_s"] > 15
    assert analysis.status in {"ok", "not_sure"}, analysis.quality
