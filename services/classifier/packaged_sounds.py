"""Recorded non-cries from Debian packages: sound effects, music and natural voices for the cry gate.

The shared data's licence-clean recorded non-cries are 85 ESC-10 clips of nine kinds, and a gate that
learns from so few lets through recorded sounds it never heard (animals, water, household machines).
Debian's free games and Tux Paint's stamps ship recorded sound effects and music under the GPL, which
allows redistribution with attribution, and the stamps' spoken descriptions are natural adult voices in
a dozen languages, which no other source here has. Each package's Debian copyright file was read for the
licence below; ``make train-apt`` installs them. Files whose names suggest crying or wailing are left
out: a negative that may be a cry would teach the gate to turn cries away.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from services.classifier.features import PHONE_SAMPLE_RATE
from services.common.audio import AudioLimits, decode_audio

if TYPE_CHECKING:
    from services.classifier.dataset import Clip

# Short effects are repeated with pauses, as a dog barks or a door knocks more than once in a recording,
# up to at least MIN_SECONDS; long ones are cut at MAX_SECONDS, as the gate sees about 15 s at most.
MIN_SECONDS = 4.0
MAX_SECONDS = 10.0
MUSIC_EXCERPTS = 2
SPEECH_CLIPS_PER_LANGUAGE = 20
CRY_LIKE_NAMES = re.compile(r"bab|cry|infant|wail|sob|weep|scream|symbols/faces", re.IGNORECASE)
PACKAGED_SOURCE_PREFIX = "pkg-"
_LIMITS = AudioLimits(max_bytes=64 * 1024 * 1024, max_duration_s=900.0)


@dataclass(frozen=True)
class SoundPackage:
    """One Debian package's sound files: where they are installed, under which licence, which to skip."""

    name: str
    package: str
    licence: str
    root: Path
    patterns: tuple[str, ...]
    excluded: re.Pattern[str] | None = None

    @property
    def source(self) -> str:
        """The clips' source: what the evaluation reports them under and the gate balances them by."""
        return PACKAGED_SOURCE_PREFIX + self.name


TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")
EFFECTS = (
    # The stamps' descriptions are speech (SPEECH below); their symbols are spoken letters and digits.
    SoundPackage(
        "tuxpaint",
        "tuxpaint-stamps-default",
        "GPL-2",
        TUXPAINT_STAMPS,
        ("**/*.ogg",),
        re.compile(r"_desc|^symbols/"),
    ),
    SoundPackage(
        "wesnoth",
        "wesnoth-1.16-data",
        "GPL-2+",
        Path("/usr/share/games/wesnoth/1.16/data"),
        ("**/sounds/**/*.ogg", "**/sounds/**/*.wav"),
    ),
    SoundPackage(
        "widelands",
        "widelands-data",
        "GPL-2+",
        Path("/usr/share/games/widelands/data"),
        ("sound/**/*.ogg", "world/**/*.ogg"),
    ),
)
# Widelands' music is GPL-2+ except three CC-BY-SA-3.0 tracks (its copyright file), which stay out.
MUSIC = SoundPackage(
    "widelands-music",
    "widelands-data",
    "GPL-2+",
    Path("/usr/share/games/widelands/data/music"),
    ("*.ogg",),
    re.compile(r"ingame_2[456]\.ogg$"),
)
SPEECH = SoundPackage(
    "tuxpaint-speech", "tuxpaint-stamps-default", "GPL-2", TUXPAINT_STAMPS, ("**/*_desc*.ogg",)
)
PACKAGES = (*EFFECTS, MUSIC, SPEECH)
PACKAGED_LICENCES = frozenset(package.licence for package in PACKAGES)


def packaged_fingerprint() -> bytes:
    """What the packaged clips depend on besides the seed: the files used and how clips are made of them."""
    constants = repr(
        (PACKAGES, CRY_LIKE_NAMES, MIN_SECONDS, MAX_SECONDS, MUSIC_EXCERPTS, SPEECH_CLIPS_PER_LANGUAGE)
    )
    files = [f"{path}:{path.stat().st_size}" for package in PACKAGES for path in packaged_files(package)]
    return "\n".join([constants, *files]).encode()


def packaged_negatives(seed: int) -> list[Clip]:
    """Every packaged non-cry clip at PHONE_SAMPLE_RATE, grouped so that one recording stays in one fold."""
    rng = np.random.default_rng(seed + 2)
    clips = [clip for package in EFFECTS for clip in effect_clips(package, rng)]
    return clips + list(_music_clips(rng)) + list(_speech_clips(rng))


def packaged_files(package: SoundPackage) -> list[Path]:
    """The package's usable sound files in a fixed order; fails loudly when the package is missing."""
    if not package.root.is_dir():
        raise RuntimeError(f"{package.package} is not installed: run `make train-apt`")
    files = {
        path
        for pattern in package.patterns
        for path in package.root.glob(pattern)
        if not _left_out(package, path.relative_to(package.root).as_posix())
    }
    return sorted(files)


def _left_out(package: SoundPackage, relative: str) -> bool:
    return bool(CRY_LIKE_NAMES.search(relative) or (package.excluded and package.excluded.search(relative)))


def sound_family(package: SoundPackage, path: Path) -> str:
    """The group of a sound file: takes of one creature or machine (``wolf-hit-2``, ``bird2_04``) share it."""
    stem = re.split(r"[-_]", re.sub(r"[-_]?\d+$", "", path.stem.lower()))[0]
    return f"{package.source}:{path.parent.name}/{stem}"


def effect_clips(package: SoundPackage, rng: np.random.Generator) -> Iterator[Clip]:
    for path in packaged_files(package):
        samples = decoded(path)
        if samples.size < PHONE_SAMPLE_RATE // 4:
            continue
        name, group = path.relative_to(package.root).as_posix(), sound_family(package, path)
        yield _clip(package, name, path.parent.name, group, phone_recording(samples, rng))


def _music_clips(rng: np.random.Generator) -> Iterator[Clip]:
    """MUSIC_EXCERPTS excerpts of MAX_SECONDS from each track, spread over it."""
    excerpt = int(MAX_SECONDS * PHONE_SAMPLE_RATE)
    for path in packaged_files(MUSIC):
        track = decoded(path)
        for index, start in enumerate(np.linspace(0, max(len(track) - excerpt, 0), MUSIC_EXCERPTS + 2)[1:-1]):
            part = track[int(start) : int(start) + excerpt]
            group = f"{MUSIC.source}:{path.stem}"
            yield _clip(MUSIC, f"{path.name}#{index}", "music", group, phone_recording(part, rng))


def _speech_clips(rng: np.random.Generator) -> Iterator[Clip]:
    """Tux Paint's spoken descriptions joined into MIN_SECONDS or more; one group per language (speaker)."""
    by_language: dict[str, list[Path]] = defaultdict(list)
    for path in packaged_files(SPEECH):
        by_language[path.stem.rsplit("_desc", 1)[1].strip("_").split(".")[0] or "en"].append(path)
    for language, paths in sorted(by_language.items()):
        if len(paths) < 3 * SPEECH_CLIPS_PER_LANGUAGE:
            continue
        for index in range(SPEECH_CLIPS_PER_LANGUAGE):
            parts: list[np.ndarray] = []
            while sum(len(p) for p in parts) < MIN_SECONDS * PHONE_SAMPLE_RATE:
                parts += [decoded(paths[rng.integers(len(paths))]), _pause(rng)]
            group = f"{SPEECH.source}:{language}"
            samples = phone_recording(np.concatenate(parts), rng)
            yield _clip(SPEECH, f"{language}#{index}", f"speech-{language}", group, samples)


def decoded(path: Path, sample_rate: int = PHONE_SAMPLE_RATE) -> np.ndarray:
    """A packaged sound file as mono float32 at ``sample_rate``."""
    return decode_audio(path.read_bytes(), sample_rate, _LIMITS).samples


def _pause(rng: np.random.Generator) -> np.ndarray:
    return np.zeros(int(rng.uniform(0.2, 1.0) * PHONE_SAMPLE_RATE), np.float32)


def phone_recording(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As a phone would hear it: repeated up to MIN_SECONDS, cut at MAX_SECONDS, at a random level with a
    faint noise floor, so that neither digital silence nor full-scale peaks tell packaged sounds apart."""
    parts = [samples]
    while sum(len(p) for p in parts) < MIN_SECONDS * PHONE_SAMPLE_RATE:
        parts += [_pause(rng), samples]
    audio = np.concatenate(parts)[: int(MAX_SECONDS * PHONE_SAMPLE_RATE)]
    audio = audio / max(float(np.max(np.abs(audio))), 1e-6) * 10 ** (rng.uniform(-20, -3) / 20)
    floor = rng.standard_normal(len(audio)) * 10 ** (rng.uniform(-70, -50) / 20)
    return np.clip(audio + floor, -1.0, 1.0).astype(np.float32)


def _clip(package: SoundPackage, name: str, label: str, group: str, samples: np.ndarray) -> Clip:
    from services.classifier.dataset import Clip

    return Clip(f"{package.package}/{name}", package.source, label, False, group, package.licence, samples)
