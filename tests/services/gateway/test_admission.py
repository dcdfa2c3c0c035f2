"""The gateway's edge checks: declared size, duration and type before download; a probe of the bytes after."""

from __future__ import annotations

import hashlib

import pytest

from services.common.audio import AudioLimits, AudioRejected
from services.gateway.admission import (
    check_declared,
    check_declared_type,
    cry_request_id,
    probe_duration,
    track_id_of,
)
from tests.audio_files import encode, tone

LIMITS = AudioLimits(max_bytes=1_000_000, max_duration_s=10.0)


def test_declared_size_and_duration_within_limits_pass() -> None:
    check_declared(1_000_000, 10.0, LIMITS)
    check_declared(None, None, LIMITS)


@pytest.mark.parametrize(
    ("size", "duration", "code"),
    [(1_000_001, None, "too_large"), (None, 10.5, "too_long"), (2_000_000, 99, "too_large")],
)
def test_declared_facts_over_the_limits_are_refused(size, duration, code) -> None:
    with pytest.raises(AudioRejected) as refused:
        check_declared(size, duration, LIMITS)
    assert refused.value.code == code


@pytest.mark.parametrize(
    "mime_type", [None, "audio/ogg", "audio/mpeg", "video/mp4", "application/ogg", "application/octet-stream"]
)
def test_types_that_can_hold_audio_pass(mime_type) -> None:
    check_declared_type(mime_type)


@pytest.mark.parametrize("mime_type", ["application/pdf", "image/jpeg", "text/plain"])
def test_types_that_cannot_hold_audio_are_refused_unread(mime_type) -> None:
    with pytest.raises(AudioRejected) as refused:
        check_declared_type(mime_type)
    assert refused.value.code == "not_audio"


def test_probe_measures_duration_and_refuses_an_overlong_stream() -> None:
    assert probe_duration(encode(tone(3.0, 16000), 16000, "ogg"), LIMITS) == pytest.approx(3.0, abs=0.1)
    with pytest.raises(AudioRejected) as refused:
        probe_duration(encode(tone(11.0, 8000), 8000, "wav"), LIMITS)
    assert refused.value.code == "too_long"


def test_keys() -> None:
    assert track_id_of(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert cry_request_id(-100123, 45) == "tg:-100123:45"
