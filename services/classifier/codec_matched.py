"""The platform confound (training only): the reason model with every clip through one codec, and how well the
reason features tell Android from iOS before and after.

Android uploads are AMR-NB, iOS ones IMA ADPCM (data README), and the share of `hungry` differs between them,
so a reason model may score by hearing the phone. Passing every clip, training and held-out alike, through the
same AMR-NB then Opus round trip (augment.CODEC_MATCH) before any feature removes most of that difference; the
cross-validation then runs on the same group folds as the shipped model's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from services.classifier.augment import CODEC_MATCH, codec_match
from services.classifier.dataset import Clip
from services.classifier.features import log_mel, split_windows, to_model_rate
from services.classifier.nets import StatsReasonNet
from services.classifier.settings import ClassifierSettings
from services.classifier.train import Task
from services.common.bootstrap import group_bootstrap

# Inverse L2 strength of the platform probe: a plain, fixed logistic regression, not tuned to any figure.
PLATFORM_PROBE_REGULARISATION = 1.0


def codec_matched_clips(
    clips: Sequence[Clip], settings: ClassifierSettings, log: Callable[[str], None]
) -> list[Clip]:
    """The clips with their samples through the CODEC_MATCH round trip, cached (about 0.2 s a clip)."""
    key = hashlib.sha256(
        CODEC_MATCH.encode() + b"".join(hashlib.sha256(c.samples.tobytes()).digest() for c in clips)
    ).hexdigest()[:12]
    cache_file = settings.cache_dir / f"codec_matched_{key}.pkl"
    if cache_file.exists():
        with cache_file.open("rb") as handle:
            return pickle.load(handle)
    log(f"{CODEC_MATCH} round trip of {len(clips)} clips")
    matched = [dataclasses.replace(c, samples=codec_match(c.samples)) for c in clips]
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with cache_file.open("wb") as handle:
        pickle.dump(matched, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return matched


def codec_matched_task(task: Task, matched: list[Clip]) -> Task:
    """The same task (targets, strata, so the same folds; config, architecture) on codec-matched clips."""
    return dataclasses.replace(task, name=f"{task.name}_codec_{CODEC_MATCH}", clips=matched)


@torch.no_grad()
def reason_statistics(clips: Sequence[Clip]) -> np.ndarray:
    """(clips, statistics): the reason model's input statistics, averaged over each clip's runtime windows."""
    rows = []
    for clip in clips:
        windows = torch.from_numpy(np.stack([log_mel(w) for w in split_windows(to_model_rate(clip.samples))]))
        rows.append(StatsReasonNet.statistics(windows).mean(dim=0).numpy())
    return np.stack(rows)


def platform_auc(
    statistics: np.ndarray, platforms: Sequence[str], folds: np.ndarray, groups: Sequence[str], seed: int
) -> tuple[float, float, float]:
    """ROC-AUC [95% group-bootstrap CI] of iOS vs Android from out-of-fold logistic-regression scores."""
    is_ios = np.asarray(platforms) == "ios"
    scores = np.zeros(len(is_ios))
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        probe = make_pipeline(
            StandardScaler(), LogisticRegression(C=PLATFORM_PROBE_REGULARISATION, max_iter=5000)
        )
        probe.fit(statistics[train], is_ios[train])
        scores[test] = probe.decision_function(statistics[test])

    def auc(index: np.ndarray) -> float:
        labels = is_ios[index]
        return float(roc_auc_score(labels, scores[index])) if 0 < labels.sum() < len(labels) else 0.5

    return group_bootstrap(auc, groups, seed)
