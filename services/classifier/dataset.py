"""The training corpus: clips listed in the shared manifest, locally synthesised negatives and recorded
negatives from Debian packages (packaged_sounds.py).

Every clip is kept band-limited at PHONE_SAMPLE_RATE (see features.py). Which clips may train shipped
weights is decided by licence here and nowhere else: CC-BY-NC ESC clips are evaluation-only.
"""

from __future__ import annotations

import csv
import hashlib
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.classifier.features import PHONE_SAMPLE_RATE
from services.classifier.packaged_sounds import (
    PACKAGED_LICENCES,
    PACKAGED_SOURCE_PREFIX,
    packaged_fingerprint,
    packaged_negatives,
)
from services.classifier.synthesis import (
    CALL_CLIPS,
    FESTIVAL_CLIPS,
    MUSIC_CLIPS,
    NOISE_CLIPS,
    SPEECH_CLIPS,
    synthesise_negatives,
)
from services.common.audio import decode_audio

TRAINABLE_LICENCES = frozenset({"ODbL-1.0/DbCL-1.0", "CC-BY-3.0", "synthesised", *PACKAGED_LICENCES})
# cold_hot folds into discomfort; lonely is not a canonical reason and stays out of the reason model.
REASON_ALIASES = {"cold_hot": "discomfort"}
NOT_A_REASON = frozenset({"lonely"})
AGE_CODE = re.compile(r"-[mf]-(\d\d)-[a-z]{2}\.")


@dataclass(frozen=True)
class Clip:
    """One recording: where it came from, what it is, and its band-limited samples."""

    path: str
    source: str
    label: str
    is_cry: bool
    group: str
    licence: str
    samples: np.ndarray

    @property
    def trainable(self) -> bool:
        return self.licence in TRAINABLE_LICENCES

    @property
    def is_donateacry(self) -> bool:
        return self.source.startswith("donateacry")

    @property
    def is_packaged(self) -> bool:
        """A recorded sound from a Debian package (packaged_sounds.py)."""
        return self.source.startswith(PACKAGED_SOURCE_PREFIX)

    @property
    def reason(self) -> str | None:
        """Canonical reason id for a Donate-a-Cry clip, or None when the clip carries no usable reason."""
        if not self.is_donateacry or self.label in NOT_A_REASON:
            return None
        return REASON_ALIASES.get(self.label, self.label)

    @property
    def age_code(self) -> str | None:
        """Donate-a-Cry's age tag, the two digits before the reason tag in the file name (``-m-48-bp``)."""
        match = AGE_CODE.search(Path(self.path).name) if self.is_donateacry else None
        return match.group(1) if match else None

    @property
    def platform(self) -> str:
        """Donate-a-Cry upload platform: upper-case uuids are iOS, lower-case Android (data README)."""
        if not self.is_donateacry:
            return "none"
        uuid = Path(self.path).name[:36]
        return "ios" if uuid == uuid.upper() and uuid != uuid.lower() else "android"


def load_corpus(data_dir: Path, cache_dir: Path, seed: int) -> list[Clip]:
    """Manifest clips, synthesised and packaged negatives, decoded once and cached under cache_dir.

    The two parts are cached apart, so that changing how packaged clips are made leaves the slow
    synthesis alone.
    """
    manifest = (data_dir / "manifest.csv").read_bytes()
    synthesis = f"{seed} {SPEECH_CLIPS} {NOISE_CLIPS} {CALL_CLIPS} {MUSIC_CLIPS} {FESTIVAL_CLIPS}".encode()
    return [
        *_cached(
            cache_dir / "corpus",
            manifest + synthesis,
            lambda: [*load_manifest_clips(data_dir), *synthesise_negatives(seed)],
        ),
        *_cached(
            cache_dir / "packaged",
            packaged_fingerprint() + str(seed).encode(),
            lambda: packaged_negatives(seed),
        ),
    ]


def _cached(prefix: Path, depends_on: bytes, build: Callable[[], list[Clip]]) -> list[Clip]:
    cache_file = prefix.with_name(f"{prefix.name}_{hashlib.sha256(depends_on).hexdigest()[:12]}.pkl")
    if cache_file.exists():
        with cache_file.open("rb") as handle:
            return pickle.load(handle)
    clips = build()
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with cache_file.open("wb") as handle:
        pickle.dump(clips, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return clips


def load_manifest_clips(data_dir: Path, decode: bool = True) -> list[Clip]:
    """Every clip of the shared manifest, decoded through the same path as uploads (or with no samples, for
    what needs only the manifest's facts)."""
    with (data_dir / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Clip(
            path=row["path"],
            source=row["source"],
            label=row["label"],
            is_cry=row["is_cry"] == "1",
            group=row["group"],
            licence=row["licence"],
            samples=decode_audio((data_dir / row["path"]).read_bytes(), PHONE_SAMPLE_RATE).samples
            if decode
            else np.zeros(0, np.float32),
        )
        for row in rows
    ]
