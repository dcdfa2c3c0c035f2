"""The age prior: how often each reason is tagged in each age band of the corpus, for evidence.py.

Counted over exactly the clips the reason model trains on (licence-clean Donate-a-Cry clips with a canonical
reason), so that the prior's overall shares are the audio model's training prior. The counts are written to
``services/common/age_prior.json`` by ``python -m services.classifier age-prior`` and shown in the model card;
the smoothing that turns them into probabilities is in the evidence config.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from services.classifier.dataset import Clip, load_manifest_clips
from services.common.evidence import AGE_PRIOR_FILE, AgePrior, EvidenceConfig


def reason_clips(clips: Iterable[Clip], labels: list[str]) -> list[Clip]:
    return [c for c in clips if c.trainable and c.reason in labels]


def age_counts(clips: Iterable[Clip], labels: list[str], config: EvidenceConfig) -> dict[str, dict[str, int]]:
    """band -> reason -> clips; clips with no readable age tag count towards no band."""
    counts = {band: dict.fromkeys(labels, 0) for band in config.age_bands}
    for clip in reason_clips(clips, labels):
        band = config.band_of_corpus_code(clip.age_code or "")
        if band is not None:
            counts[band][clip.reason] += 1  # type: ignore[index]
    return counts


def age_prior_from_clips(clips: Iterable[Clip], labels: list[str], config: EvidenceConfig) -> AgePrior:
    """An age prior estimated from these clips only (cross-validation fits one per training fold)."""
    return AgePrior(tuple(labels), age_counts(clips, labels, config), config.age_prior.pseudo_count)


def write_age_prior(
    data_dir: Path, labels: list[str], config: EvidenceConfig, path: Path = AGE_PRIOR_FILE
) -> dict:
    clips = load_manifest_clips(data_dir, decode=False)
    document = {
        "source": "Donate-a-Cry (cleaned and unvetted), licence-clean clips with a canonical reason",
        "labels": labels,
        "counts": age_counts(clips, labels, config),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return document
