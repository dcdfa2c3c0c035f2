"""Random tunes, rendered locally by fluidsynth with the Fluid R3 GM soundfont (training and evaluation only).

No music is in the shared data and none may be downloaded, yet parents record over music and the
assistant's playback is full of it. A tune is a short random type-0 MIDI file (a melody, sometimes a bass
note and drums, General MIDI instruments) rendered to audio. Fluid R3 GM is MIT-licensed (Debian
``fluid-soundfont-gm``), so weights may be trained on what it renders.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from services.common.audio import AudioLimits, decode_audio

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RENDER_RATE = 16000
TUNE_SECONDS = 7  # the tune's length; fluidsynth adds the last notes' release
# General MIDI programs: pianos, organs, guitars, basses, strings, choir, brass, reeds, pipes, leads, sitar
MUSIC_PROGRAMS = (
    0,
    4,
    11,
    19,
    24,
    25,
    33,
    40,
    41,
    42,
    48,
    52,
    53,
    56,
    57,
    60,
    65,
    68,
    71,
    73,
    74,
    80,
    81,
    104,
)
_LIMITS = AudioLimits(max_duration_s=600.0)


def _variable_length(value: int) -> bytes:
    out = [value & 0x7F]
    while value > 127:
        value >>= 7
        out.insert(0, (value & 0x7F) | 0x80)
    return bytes(out)


def random_midi(rng: np.random.Generator) -> bytes:
    """A short random tune (melody, optional chord, optional drums) as a type-0 standard MIDI file."""
    events: list[tuple[int, bytes]] = []  # (tick, message); 480 ticks a beat at 120 bpm = 960 ticks a second
    melody, bass = int(rng.choice(MUSIC_PROGRAMS)), int(rng.choice(MUSIC_PROGRAMS))
    events += [(0, bytes([0xC0, melody])), (0, bytes([0xC1, bass]))]
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    root, tick = int(rng.integers(48, 72)), 0
    while tick < TUNE_SECONDS * 960:
        length = int(rng.choice([120, 240, 480, 960]))
        note = root + 12 * int(rng.integers(0, 2)) + int(rng.choice(scale))
        velocity = int(rng.integers(60, 120))
        events += [(tick, bytes([0x90, note, velocity])), (tick + length, bytes([0x80, note, 0]))]
        if rng.random() < 0.3:
            events += [(tick, bytes([0x91, root - 12, 80])), (tick + length, bytes([0x81, root - 12, 0]))]
        if rng.random() < 0.4:
            drum = int(rng.choice([35, 38, 42, 46]))
            events += [(tick, bytes([0x99, drum, 100])), (tick + 100, bytes([0x89, drum, 0]))]
        tick += length
    track, previous = b"", 0
    for tick, message in sorted(events, key=lambda e: e[0]):
        track += _variable_length(tick - previous) + message
        previous = tick
    track += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(track)) + track


def render_midi(midi: bytes, sample_rate: int) -> np.ndarray:
    """``midi`` played by fluidsynth, as mono float32 at ``sample_rate``."""
    with tempfile.TemporaryDirectory() as directory:
        midi_path, wav = Path(directory) / "tune.mid", Path(directory) / "tune.wav"
        midi_path.write_bytes(midi)
        subprocess.run(
            ["fluidsynth", "-ni", "-q", "-g", "0.8", "-r", str(RENDER_RATE), "-F", str(wav)]
            + [str(SOUNDFONT), str(midi_path)],
            check=True,
            capture_output=True,
        )
        return decode_audio(wav.read_bytes(), sample_rate, _LIMITS).samples


def random_tune(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A random tune (``random_midi``) rendered at ``sample_rate``."""
    return render_midi(random_midi(rng), sample_rate)
