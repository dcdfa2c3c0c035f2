"""Recorded negatives from Debian packages: which files are used, how they are grouped, how they sound.

The packages themselves are training-only (``make train-apt``), so these tests build a small package
tree of their own.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from services.classifier import packaged_sounds
from services.classifier.features import PHONE_SAMPLE_RATE
from services.classifier.packaged_sounds import SoundPackage
from tests.audio_files import encode, tone

RATE = PHONE_SAMPLE_RATE


def _package(root: Path, excluded: str | None = None) -> SoundPackage:
    pattern = re.compile(excluded) if excluded else None
    return SoundPackage("test", "test-sounds", "GPL-2+", root, ("**/*.ogg", "**/*.wav"), pattern)


def _write(root: Path, relative: str, seconds: float = 1.0) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(tone(seconds, 16000, 330.0), 16000, path.suffix[1:]))
    return path


def test_files_named_like_a_cry_and_the_packages_exclusions_are_left_out(tmp_path: Path) -> None:
    for name in ["animals/dog.ogg", "people/baby_cry.ogg", "ghost/wail-long.wav", "symbols/a.ogg", "x/b.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    files = packaged_sounds.packaged_files(_package(tmp_path, excluded=r"^symbols/"))
    assert [path.relative_to(tmp_path).as_posix() for path in files] == ["animals/dog.ogg"]


def test_a_missing_package_stops_training_with_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="make train-apt"):
        packaged_sounds.packaged_files(_package(tmp_path / "absent"))


def test_takes_of_one_creature_share_a_group_and_other_creatures_do_not() -> None:
    package = _package(Path("/sounds"))

    def family(name: str) -> str:
        return packaged_sounds.sound_family(package, Path("/sounds/core") / name)

    assert family("wolf-hit-2.ogg") == family("wolf-growl-4.ogg") == family("wolf-die.ogg")
    assert family("bird2_00.ogg") == family("bird2_04.ogg")
    assert family("bird1_00.ogg") != family("bird2_00.ogg")
    assert family("dog.ogg") != packaged_sounds.sound_family(package, Path("/sounds/other/dog.ogg"))


@pytest.mark.parametrize("seconds", [0.5, 3.0, 25.0])
def test_a_phone_recording_lasts_long_enough_peaks_below_full_scale_and_is_never_digital_silence(
    seconds: float,
) -> None:
    rng = np.random.default_rng(1)
    audio = packaged_sounds.phone_recording(tone(seconds, RATE, level=1.0), rng)
    assert packaged_sounds.MIN_SECONDS * RATE <= len(audio) <= packaged_sounds.MAX_SECONDS * RATE
    assert 10 ** (-21 / 20) < np.max(np.abs(audio)) < 10 ** (-2.9 / 20)
    assert np.all(audio != 0)


def test_effect_clips_are_negatives_with_the_packages_licence_and_their_family_as_group(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "farm/sheep_00.ogg")
    _write(tmp_path, "farm/sheep_01.wav", seconds=6.0)
    _write(tmp_path, "farm/click.wav", seconds=0.1)
    clips = list(packaged_sounds.effect_clips(_package(tmp_path), np.random.default_rng(0)))
    assert [clip.path for clip in clips] == ["test-sounds/farm/sheep_00.ogg", "test-sounds/farm/sheep_01.wav"]
    assert {clip.group for clip in clips} == {"pkg-test:farm/sheep"}
    assert all(not clip.is_cry and clip.licence == "GPL-2+" and clip.trainable for clip in clips)


def test_the_same_seed_gives_the_same_clips(tmp_path: Path) -> None:
    _write(tmp_path, "a/hen.ogg")
    first, second = (
        list(packaged_sounds.effect_clips(_package(tmp_path), np.random.default_rng(7))) for _ in range(2)
    )
    assert np.array_equal(first[0].samples, second[0].samples)
