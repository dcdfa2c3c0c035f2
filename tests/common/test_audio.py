"""Decoding untrusted bytes: every supported container, and each kind of bad input with its own code."""

import numpy as np
import pytest

from services.common.audio import AudioLimits, AudioRejected, decode_audio
from tests.audio_files import FORMATS, encode, tone


@pytest.mark.parametrize("container", sorted(FORMATS))
def test_each_container_decodes_to_mono_at_the_requested_rate(container: str) -> None:
    data = encode(tone(3.0, 16000), 16000, container)

    audio = decode_audio(data, sample_rate=22050)

    assert audio.sample_rate == 22050
    assert audio.source_sample_rate == 16000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration_s == pytest.approx(3.0, abs=0.1)
    assert 0.25 < np.abs(audio.samples).max() < 0.35


def test_stereo_is_mixed_to_mono() -> None:
    import io

    import soundfile

    left = tone(1.0, 8000)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([left, -left], axis=1), 8000, format="WAV")

    audio = decode_audio(buffer.getvalue(), sample_rate=8000)

    assert audio.source_channels == 2
    assert np.abs(audio.samples).max() < 1e-3


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"this is a text file, not a recording\n" * 20, "not_audio"),
        (bytes(2048), "not_audio"),
        (b"OggS" + bytes(200), "corrupt"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(100), "corrupt"),
    ],
)
def test_bad_input_gets_its_own_code_and_a_message_for_people(data: bytes, code: str) -> None:
    with pytest.raises(AudioRejected) as rejected:
        decode_audio(data, sample_rate=16000)

    assert rejected.value.code == code
    assert "Please" in rejected.value.message


def test_oversized_input_is_rejected_before_decoding() -> None:
    data = encode(tone(2.0), 16000, "wav")

    with pytest.raises(AudioRejected) as rejected:
        decode_audio(data, 16000, AudioLimits(max_bytes=len(data) - 1))

    assert rejected.value.code == "too_large"


@pytest.mark.parametrize("container", ["wav", "m4a", "ogg"])
def test_overlong_input_is_rejected(container: str) -> None:
    data = encode(tone(5.0), 16000, container)

    with pytest.raises(AudioRejected) as rejected:
        decode_audio(data, 16000, AudioLimits(max_duration_s=4.0))

    assert rejected.value.code == "too_long"
