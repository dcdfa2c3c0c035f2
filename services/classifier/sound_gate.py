"""Training the cry gate (training only): clip embeddings, grouped cross-validation, the fitted linear head.

The embedding network is frozen; only a logistic regression on each recording's mean and maximum block
embedding is learnt, from the licence-clean clips (cries vs ESC-10 recordings, recorded sounds from Debian
packages and synthesised negatives). A few hundred recorded negatives support little more; the pretrained
embedding brings the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from services.classifier.dataset import Clip
from services.classifier.nets import SoundEmbeddingNet, clip_embedding
from services.classifier.settings import ClassifierSettings
from services.classifier.sound_features import sound_blocks, sound_feature_parameters
from services.classifier.training import group_folds

# Inverse L2 strength of the head. Cross-validated with 0.001-1 and with and without the weighting below
# (MODEL_CARD.md: chosen on the same out-of-fold figures it reports, so those are slightly optimistic).
GATE_REGULARISATION = 0.003


@dataclass(frozen=True)
class GateHead:
    """The head with the standardisation folded in: logit = embedding @ weights + bias."""

    weights: np.ndarray
    bias: float


def gate_clips(corpus: Sequence[Clip]) -> list[Clip]:
    """What may train the gate: every clip whose licence allows shipping weights trained on it."""
    return [c for c in corpus if c.trainable]


def clip_embeddings(
    clips: Sequence[Clip], net: SoundEmbeddingNet, settings: ClassifierSettings, log: Callable[[str], None]
) -> np.ndarray:
    """(clips, 1024) mean+max block embeddings, cached by source: the frozen network is the slow part of
    training, and a new source of clips should not recompute the others."""
    by_source: dict[str, list[int]] = defaultdict(list)
    for index, clip in enumerate(clips):
        by_source[clip.source].append(index)
    parts = [
        _source_embeddings([clips[i] for i in members], net, settings, log) for members in by_source.values()
    ]
    order = [index for members in by_source.values() for index in members]
    return np.concatenate(parts)[np.argsort(order)]


def _source_embeddings(
    clips: Sequence[Clip], net: SoundEmbeddingNet, settings: ClassifierSettings, log: Callable[[str], None]
) -> np.ndarray:
    key = hashlib.sha256(
        json.dumps([sound_feature_parameters(), [c.path for c in clips]]).encode()
        + b"".join(hashlib.sha256(c.samples.tobytes()).digest() for c in clips)
    ).hexdigest()[:12]
    cache_file = settings.cache_dir / f"sound_embeddings_{key}.npy"
    if cache_file.exists():
        return np.load(cache_file)
    log(f"sound embeddings of {len(clips)} {clips[0].source} clips (frozen aiSFX network)")
    with torch.no_grad():
        embeddings = np.stack(
            [clip_embedding(net(torch.from_numpy(sound_blocks(c.samples)))).numpy() for c in clips]
        )
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache_file, embeddings)
    return embeddings


def recording_kind(clip: Clip) -> str:
    """Where a clip was recorded: its cries and non-cries must not be told apart by that."""
    if clip.is_donateacry:
        return "donateacry"
    if clip.is_packaged:
        return "packaged"
    return "synthesised" if clip.licence == "synthesised" else "esc"


def balancing_weights(clips: Sequence[Clip]) -> np.ndarray:
    """Sample weights giving each kind of recording an equal share of its class (cry or not).

    Without them the 720 Donate-a-Cry phone cries outweigh the 32 cries recorded elsewhere, and the gate
    learns the app's phones rather than crying: cries from other devices were then the ones it turned away.
    """
    is_cry = np.array([c.is_cry for c in clips])
    kinds = np.array([f"{c.is_cry}-{recording_kind(c)}" for c in clips])
    weights = np.zeros(len(clips))
    for kind in np.unique(kinds):
        members = kinds == kind
        kinds_in_class = len(np.unique(kinds[is_cry == is_cry[members][0]]))
        weights[members] = 1.0 / (members.sum() * kinds_in_class)
    return weights * len(clips) / weights.sum()


def fit_head(embeddings: np.ndarray, clips: Sequence[Clip], balanced: bool = True) -> GateHead:
    """Standardise, fit an L2 logistic regression, fold the standardisation into its weights.

    ``balanced=False`` (the ablation in the model card) only balances cries against non-cries.
    """
    scaler = StandardScaler().fit(embeddings)
    model = LogisticRegression(
        C=GATE_REGULARISATION, max_iter=5000, class_weight=None if balanced else "balanced"
    )
    weights = balancing_weights(clips) if balanced else None
    model.fit(scaler.transform(embeddings), [c.is_cry for c in clips], sample_weight=weights)
    weights = model.coef_[0] / scaler.scale_
    return GateHead(weights.astype(np.float32), float(model.intercept_[0] - weights @ scaler.mean_))


def cry_probability(head: GateHead, embeddings: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(embeddings @ head.weights + head.bias)))


@dataclass(frozen=True)
class GateCrossValidation:
    """Out-of-fold cry probabilities of the training clips; fold means for the evaluation-only clips."""

    folds: np.ndarray
    probabilities: np.ndarray
    evaluation_only_probabilities: np.ndarray


def cross_validate_gate(
    clips: Sequence[Clip],
    embeddings: np.ndarray,
    evaluation_only: np.ndarray,
    seed: int,
    balanced: bool = True,
) -> GateCrossValidation:
    """5-fold CV grouped by app instance / freesound recording, stratified by cry and source."""
    strata = np.array([f"{c.is_cry}-{c.source}" for c in clips])
    folds = group_folds(strata, [c.group for c in clips], seed)
    probabilities = np.zeros(len(clips))
    extra = np.zeros(len(evaluation_only))
    for fold in np.unique(folds):
        held_out = folds == fold
        head = fit_head(
            embeddings[~held_out], [c for c, out in zip(clips, held_out, strict=True) if not out], balanced
        )
        probabilities[held_out] = cry_probability(head, embeddings[held_out])
        extra += cry_probability(head, evaluation_only) / len(np.unique(folds))
    return GateCrossValidation(folds, probabilities, extra)
