"""Decoding untrusted audio bytes into mono float32 at the rate a model wants.

Both models take uploads from strangers (Telegram voice notes, app playback tracks), so decoding is the
first place where bad input must turn into an error a person can act on. Limits are checked before
the expensive work: byte size before anything, declared duration before reading samples, and the
running duration while a stream is decoded, so an overlong file is never decoded whole.

libsndfile (via soundfile) reads WAV, FLAC, Ogg Vorbis/Opus and MP3 directly from memory; anything it
cannot read (m4a/AAC, video notes, AMR, WebM) goes through PyAV, FFmpeg's bindings.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
import soundfile
import soxr

AudioErrorCode = Literal["empty", "too_large", "too_long", "not_audio", "corrupt"]

# Leading bytes of the containers we expect. A file that starts like one of these but does not decode
# is "corrupt"; anything else that does not decode is "not audio".
_AUDIO_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"RIFF"),
    (0, b"fLaC"),
    (0, b"OggS"),
    (0, b"ID3"),
    (0, b"#!AMR"),
    (0, b"caff"),
    (0, b"FORM"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (4, b"ftyp"),  # MP4 / M4A / 3GP
)

_MESSAGES: dict[AudioErrorCode, str] = {
    "empty": "The file is empty. Please record again and send the recording itself.",
    "too_large": "The file is too large ({detail}). Please send a shorter recording.",
    "too_long": "The recording is too long ({detail}). Please send a shorter recording.",
    "not_audio": "This does not look like audio ({detail}). Please send a voice message or an audio file "
    "(OGG/Opus, MP3, M4A, WAV or FLAC).",
    "corrupt": "The audio file is damaged and could not be decoded ({detail}). Please record again.",
}


class AudioRejected(ValueError):
    """Input that cannot be turned into audio; ``code`` is stable for machines, ``message`` is for people."""

    def __init__(self, code: AudioErrorCode, detail: str) -> None:
        self.code: AudioErrorCode = code
        self.detail = detail
        self.message = _MESSAGES[code].format(detail=detail)
        super().__init__(self.message)


@dataclass(frozen=True)
class AudioLimits:
    """The most a service accepts; checked before decoding work grows with the input."""

    max_bytes: int = 20 * 1024 * 1024
    max_duration_s: float = 120.0


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples in [-1, 1] at ``sample_rate``, plus what the source was."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def decode_audio(data: bytes, sample_rate: int, limits: AudioLimits | None = None) -> DecodedAudio:
    """Decode ``data`` (any supported container) to mono float32 at ``sample_rate``.

    Raises ``AudioRejected`` for empty, oversized, overlong, non-audio and corrupt input.
    """
    limits = limits or AudioLimits()
    if not data:
        raise AudioRejected("empty", "0 bytes")
    if len(data) > limits.max_bytes:
        limit_mb = limits.max_bytes / 1e6
        raise AudioRejected("too_large", f"{len(data) / 1e6:.1f} MB, the limit is {limit_mb:.1f} MB")
    try:
        samples, source_rate, channels = _decode_with_soundfile(data, limits)
    except soundfile.LibsndfileError:
        samples, source_rate, channels = _decode_with_pyav(data, limits)
    if samples.size == 0:
        raise AudioRejected("corrupt", "no audio samples in the file")
    if not np.all(np.isfinite(samples)):
        raise AudioRejected("corrupt", "the decoded samples are not finite numbers")
    if source_rate != sample_rate:
        samples = soxr.resample(samples, source_rate, sample_rate, quality="HQ").astype(np.float32)
    return DecodedAudio(
        samples=np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False),
        sample_rate=sample_rate,
        source_sample_rate=source_rate,
        source_channels=channels,
    )


def encode_audio(
    samples: np.ndarray, sample_rate: int, container: str, codec: str, bit_rate: int | None = None
) -> bytes:
    """Encode mono float32 ``samples`` with FFmpeg's ``codec`` into ``container`` (PyAV format names).

    Training uses it for codec round trips (what a phone upload does to audio), tests to make every format.
    """
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=sample_rate, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def looks_like_audio_container(data: bytes) -> bool:
    """True when the bytes start like a container we decode (used to tell corrupt from not-audio)."""
    if data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xf1", b"\xff\xf9"):  # MPEG / ADTS frames
        return True
    return any(data[offset : offset + len(magic)] == magic for offset, magic in _AUDIO_SIGNATURES)


def _check_duration(duration_s: float, limits: AudioLimits) -> None:
    if duration_s > limits.max_duration_s:
        raise AudioRejected("too_long", f"{duration_s:.0f} s, the limit is {limits.max_duration_s:.0f} s")


def _decode_with_soundfile(data: bytes, limits: AudioLimits) -> tuple[np.ndarray, int, int]:
    with soundfile.SoundFile(io.BytesIO(data)) as sound:
        if sound.samplerate <= 0:
            raise AudioRejected("corrupt", "the file declares no sample rate")
        if sound.frames > 0:
            _check_duration(sound.frames / sound.samplerate, limits)
        max_frames = int(limits.max_duration_s * sound.samplerate) + 1
        try:
            frames = sound.read(frames=max_frames, dtype="float32", always_2d=True)
        except soundfile.LibsndfileError as error:
            raise AudioRejected("corrupt", str(error)) from error
        _check_duration(len(frames) / sound.samplerate, limits)
        return frames.mean(axis=1), sound.samplerate, sound.channels


def _decode_with_pyav(data: bytes, limits: AudioLimits) -> tuple[np.ndarray, int, int]:
    is_known_container = looks_like_audio_container(data)
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
        code: AudioErrorCode = "corrupt" if is_known_container else "not_audio"
        raise AudioRejected(code, "unrecognised format") from error
    with container:
        if not container.streams.audio:
            raise AudioRejected("not_audio", "the file has no audio track")
        stream = container.streams.audio[0]
        if container.duration:
            _check_duration(container.duration / av.time_base, limits)
        return _read_pyav_stream(container, stream, limits)


def _read_pyav_stream(container, stream, limits: AudioLimits) -> tuple[np.ndarray, int, int]:
    """Decode the audio stream frame by frame, stopping as soon as it passes the duration limit."""
    resampler = av.AudioResampler(format="flt", layout="mono")
    chunks: list[np.ndarray] = []
    decoded_samples = 0
    source_rate = stream.codec_context.sample_rate or stream.rate
    channels = stream.codec_context.channels or 1
    try:
        for frame in container.decode(stream):
            for mono in resampler.resample(frame):
                chunk = mono.to_ndarray().reshape(-1)
                chunks.append(chunk)
                decoded_samples += len(chunk)
            if source_rate:
                _check_duration(decoded_samples / source_rate, limits)
        for mono in resampler.resample(None):
            chunks.append(mono.to_ndarray().reshape(-1))
    except av.FFmpegError as error:
        if not chunks:
            raise AudioRejected("corrupt", str(error)) from error
    if not source_rate:
        raise AudioRejected("corrupt", "the audio track declares no sample rate")
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return samples.astype(np.float32, copy=False), int(source_rate), int(channels)
