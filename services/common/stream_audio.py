"""Incremental decoding: audio bytes arriving in chunks of any size → mono float32 at a model's rate.

The batch decoder (``audio.decode_audio``) needs the whole file; a stream hands over a few milliseconds at a
time. Three formats are accepted, each decoded as far as the bytes so far allow:

- ``pcm_s16le``: raw interleaved signed 16-bit little-endian PCM at any rate, mono or stereo (an odd byte or
  a partial frame waits for the next chunk);
- ``ogg_opus``: an Ogg stream of Opus packets. Ogg pages are split here (the format is a 27-byte header and a
  segment table), the packets go to FFmpeg's Opus decoder; the ``OpusHead`` pre-skip is dropped as players do;
- ``mp3``: MPEG audio frames (an ID3v2 tag at the start is skipped), split by FFmpeg's parser and decoded;
  the encoder delay a LAME/Xing header declares is dropped, as the batch decoder does.

Channels are averaged to mono (like the batch decoder) and ``soxr.ResampleStream`` resamples chunk by chunk.
Bytes that cannot be decoded raise ``AudioRejected("corrupt", …)``, a format we do not know raises
``UnsupportedFormat``. Pure computation, no I/O: callers run ``push`` in a thread.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, Protocol

import av
import numpy as np
import soxr

from services.common.audio import AudioRejected

StreamFormatName = Literal["pcm_s16le", "ogg_opus", "mp3"]
STREAM_FORMATS: tuple[StreamFormatName, ...] = ("pcm_s16le", "ogg_opus", "mp3")
MAX_PCM_CHANNELS = 2
PCM_RATES = (8000, 384000)  # the sample rates accepted for raw PCM, inclusive
OPUS_RATE = 48000  # FFmpeg's Opus decoder always outputs 48 kHz
MP3_DECODER_DELAY = 529  # samples every MP3 decoder adds before the encoder's own delay


class UnsupportedFormat(ValueError):
    """A stream format (or its parameters) this decoder does not take; the message says what is accepted."""


@dataclass(frozen=True)
class StreamFormat:
    """What the client declares when it opens a stream; rate and channels matter for raw PCM only."""

    name: StreamFormatName
    sample_rate: int | None = None
    channels: int = 1

    def check(self) -> None:
        if self.name not in STREAM_FORMATS:
            raise UnsupportedFormat(f"unknown format {self.name!r}; send one of {', '.join(STREAM_FORMATS)}")
        if self.name != "pcm_s16le":
            return
        low, high = PCM_RATES
        if self.sample_rate is None or not low <= self.sample_rate <= high:
            raise UnsupportedFormat(f"pcm_s16le needs a sample_rate between {low} and {high} Hz")
        if self.channels not in range(1, MAX_PCM_CHANNELS + 1):
            raise UnsupportedFormat(f"pcm_s16le takes 1 or 2 channels, not {self.channels}")


class Decoder(Protocol):
    def push(self, data: bytes) -> np.ndarray: ...

    def finish(self) -> np.ndarray: ...


class Resampler:
    """Mono float32 at ``source_rate`` → ``target_rate``, chunk by chunk (soxr keeps the filter state)."""

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self._stream = (
            None
            if source_rate == target_rate
            else soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32", quality="HQ")
        )

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)


class PcmDecoder:
    """Raw s16le PCM: whole frames are converted, a partial frame is kept for the next chunk."""

    def __init__(self, sample_rate: int, channels: int, target_rate: int) -> None:
        self.channels = channels
        self._frame_bytes = 2 * channels
        self._pending = b""
        self._resampler = Resampler(sample_rate, target_rate)

    def push(self, data: bytes) -> np.ndarray:
        buffered = self._pending + data
        usable = len(buffered) - len(buffered) % self._frame_bytes
        self._pending = buffered[usable:]
        pcm = np.frombuffer(buffered[:usable], dtype="<i2").reshape(-1, self.channels)
        return self._resampler.push(pcm.mean(axis=1, dtype=np.float32) / 32768.0)

    def finish(self) -> np.ndarray:
        return self._resampler.push(np.zeros(0, np.float32), last=True)


class _FfmpegDecoder:
    """What the Opus and MP3 decoders share: an FFmpeg codec context whose frames become mono samples."""

    def __init__(self, codec: str, target_rate: int) -> None:
        self._codec = av.CodecContext.create(codec, "r")
        self._target_rate = target_rate
        self._resampler: Resampler | None = None
        self._to_mono = av.AudioResampler(format="flt", layout="mono")
        self.skip_samples = 0  # at the source rate, from the start: encoder delay, pre-skip

    def _decode(self, packet: av.Packet | None) -> np.ndarray:
        chunks = []
        try:
            for frame in self._codec.decode(packet):
                for mono in self._to_mono.resample(frame):
                    chunks.append(self._trim(mono.to_ndarray().reshape(-1), frame.sample_rate))
        except av.FFmpegError as error:
            detail = f"the {self._codec.name} stream does not decode: {error}"
            raise AudioRejected("corrupt", detail) from error
        if not chunks or self._resampler is None:
            return np.zeros(0, np.float32)
        return self._resampler.push(np.concatenate(chunks))

    def _trim(self, samples: np.ndarray, rate: int) -> np.ndarray:
        if self._resampler is None:
            self._resampler = Resampler(rate, self._target_rate)
        dropped = min(self.skip_samples, len(samples))
        self.skip_samples -= dropped
        return samples[dropped:]

    def _flush(self) -> np.ndarray:
        tail = self._decode(None)
        if self._resampler is None:
            return tail
        return np.concatenate([tail, self._resampler.push(np.zeros(0, np.float32), last=True)])


class OggOpusDecoder(_FfmpegDecoder):
    """Ogg pages → Opus packets → samples. The first packet must be ``OpusHead``, the second ``OpusTags``."""

    _PAGE_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seq, crc, segments

    def __init__(self, target_rate: int) -> None:
        super().__init__("libopus" if "libopus" in av.codecs_available else "opus", target_rate)
        self._buffer = bytearray()
        self._partial_packet = bytearray()
        self._packets_seen = 0

    def push(self, data: bytes) -> np.ndarray:
        self._buffer += data
        out = [self._decode(av.Packet(packet)) for packet in self._complete_packets()]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def finish(self) -> np.ndarray:
        if self._buffer:
            raise AudioRejected("corrupt", f"the Ogg stream ends inside a page ({len(self._buffer)} bytes)")
        return self._flush()

    def _complete_packets(self) -> list[bytes]:
        """Audio packets of every whole page in the buffer; the header packets configure the decoder."""
        audio = []
        while len(self._buffer) >= self._PAGE_HEADER.size:
            capture, version, _, _, _, _, _, segments = self._PAGE_HEADER.unpack_from(self._buffer)
            if capture != b"OggS" or version != 0:
                raise AudioRejected("corrupt", "this is not an Ogg page (no 'OggS' capture pattern)")
            header_size = self._PAGE_HEADER.size + segments
            if len(self._buffer) < header_size:
                break
            lacing = self._buffer[self._PAGE_HEADER.size : header_size]
            page_size = header_size + sum(lacing)
            if len(self._buffer) < page_size:
                break
            offset = header_size
            for length in lacing:
                self._partial_packet += self._buffer[offset : offset + length]
                offset += length
                if length < 255:  # a lacing value below 255 ends a packet
                    packet = self._header_or_audio(bytes(self._partial_packet))
                    self._partial_packet.clear()
                    if packet is not None:
                        audio.append(packet)
            del self._buffer[:page_size]
        return audio

    def _header_or_audio(self, packet: bytes) -> bytes | None:
        self._packets_seen += 1
        if self._packets_seen == 1:
            if not packet.startswith(b"OpusHead") or len(packet) < 19:
                raise AudioRejected("corrupt", "the Ogg stream does not start with an OpusHead packet")
            self.skip_samples = struct.unpack_from("<H", packet, 10)[0]
            self._codec.extradata = packet
            return None
        if self._packets_seen == 2:
            if not packet.startswith(b"OpusTags"):
                raise AudioRejected("corrupt", "the second Ogg packet is not OpusTags")
            return None
        return packet


class Mp3Decoder(_FfmpegDecoder):
    """MPEG audio frames → samples, with an ID3v2 tag skipped and the LAME encoder delay dropped."""

    def __init__(self, target_rate: int) -> None:
        super().__init__("mp3", target_rate)
        self._head = bytearray()  # bytes held until the ID3 tag (if any) and the first frame are known
        self._started = False

    def push(self, data: bytes) -> np.ndarray:
        if not self._started:
            self._head += data
            data = self._after_head()
            if data is None:
                return np.zeros(0, np.float32)
        out = [self._decode(packet) for packet in self._codec.parse(data)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def finish(self) -> np.ndarray:
        if not self._started:
            raise AudioRejected("corrupt", "the MP3 stream ended before its first frame")
        out = [self._decode(packet) for packet in self._codec.parse(None)]
        return np.concatenate([*out, self._flush()])

    def _after_head(self) -> bytes | None:
        """The bytes from the first MPEG frame on, once the tag and the first frame header have arrived."""
        head = bytes(self._head)
        start = 0
        if head.startswith(b"ID3"):
            if len(head) < 10:
                return None
            start = 10 + int.from_bytes(bytes(b & 0x7F for b in head[6:10]), "big")  # syncsafe size
        if len(head) < start + 256:  # room for a Xing/Info + LAME header in the first frame
            return None
        frame = head[start:]
        if frame[0] != 0xFF or frame[1] & 0xE0 != 0xE0:
            raise AudioRejected("corrupt", "no MPEG audio frame where the MP3 stream should start")
        self._started = True
        self._head.clear()
        self.skip_samples = _lame_delay(frame)
        return frame


def _lame_delay(first_frame: bytes) -> int:
    """Samples to drop at the start: the Xing/Info frame, the encoder delay and the decoder's, when declared.

    A Xing/Info frame holds no audio but decodes to a frame of silence, which the batch decoder drops too.
    The LAME extension (written by LAME and by FFmpeg) follows the Xing fields the flags announce.
    """
    for tag in (b"Xing", b"Info"):
        at = first_frame.find(tag, 0, 64)
        if at < 0:
            continue
        flags = int.from_bytes(first_frame[at + 4 : at + 8], "big")
        extension = at + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4)
        extension += 4 * bool(flags & 8)
        samples_per_frame = 1152 if (first_frame[1] >> 3) & 0x3 == 0x3 else 576
        if extension + 24 > len(first_frame):
            return samples_per_frame
        delay = (first_frame[extension + 21] << 4) | (first_frame[extension + 22] >> 4)
        return samples_per_frame + delay + MP3_DECODER_DELAY
    return 0


def open_decoder(stream_format: StreamFormat, target_rate: int) -> Decoder:
    """The incremental decoder for a declared format; raises ``UnsupportedFormat`` for one we do not take."""
    stream_format.check()
    if stream_format.name == "pcm_s16le":
        assert stream_format.sample_rate is not None
        return PcmDecoder(stream_format.sample_rate, stream_format.channels, target_rate)
    if stream_format.name == "ogg_opus":
        return OggOpusDecoder(target_rate)
    return Mp3Decoder(target_rate)
