"""Fitting the torch networks: augmented feature sets, the training loop, group-disjoint cross-validation.

Training-only (imports torch). Clip-level predictions aggregate all windows of a clip the way the
runtime does (features.split_windows), so cross-validated figures describe what parents would get.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn

from services.classifier.augment import random_view
from services.classifier.dataset import Clip
from services.classifier.features import log_mel, split_windows, to_model_rate

N_FOLDS = 5


@dataclass(frozen=True)
class FitConfig:
    """How one network is trained."""

    epochs: int
    views_per_clip: int
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    balance_classes: bool = True
    augment: bool = True  # False: the reference baseline's input, the first window of each clip as it is


@dataclass
class WindowSet:
    """Log-mel windows of whole clips, and which clip each window belongs to."""

    features: np.ndarray  # (windows, mels, frames) float32
    owner: np.ndarray  # (windows,) index into the clip list


def augmented_features(
    clips: Sequence[Clip], views: int, rng: np.random.Generator, augment: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(clips * views, mels, frames) log-mels of random augmented views, and the clip index of each."""
    features, owners = [], []
    for index, clip in enumerate(clips):
        for _ in range(views):
            view = random_view(clip.samples, rng) if augment else clip.samples
            features.append(log_mel(to_model_rate(view)))
            owners.append(index)
    return np.stack(features), np.asarray(owners)


def clip_windows(clips: Sequence[Clip]) -> WindowSet:
    """Every runtime window of every clip, un-augmented."""
    features, owners = [], []
    for index, clip in enumerate(clips):
        for window in split_windows(to_model_rate(clip.samples)):
            features.append(log_mel(window))
            owners.append(index)
    return WindowSet(np.stack(features), np.asarray(owners))


def class_weights(targets: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, normalised to mean 1, so rare reasons count as much as 'hungry'."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    weights = counts.sum() / np.maximum(counts, 1) / n_classes
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def fit(
    make_net: Callable[[], nn.Module],
    features: np.ndarray,
    targets: np.ndarray,
    n_classes: int,
    config: FitConfig,
    seed: int,
) -> nn.Module:
    """Train a fresh softmax network with cross-entropy (class-weighted if the config says so)."""
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    net = make_net()
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(features) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    weights = class_weights(targets, n_classes) if config.balance_classes else None
    loss_function = nn.CrossEntropyLoss(weight=weights)
    inputs = torch.from_numpy(features)
    if hasattr(net, "fit_normalisation"):
        net.fit_normalisation(inputs)
    labels = torch.from_numpy(targets.astype(np.int64))
    net.train()
    for _ in range(config.epochs):
        order = torch.from_numpy(generator.permutation(len(features)))
        for step in range(steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            logits = net(inputs[batch])
            loss = loss_function(logits, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
    return net.eval()


@torch.no_grad()
def predict_logits(net: nn.Module, features: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """(windows, outputs) logits in evaluation mode."""
    net.eval()
    return np.concatenate(
        [
            net(torch.from_numpy(features[i : i + batch_size])).numpy()
            for i in range(0, len(features), batch_size)
        ]
    )


def group_folds(strata: np.ndarray, groups: Sequence[str], seed: int) -> np.ndarray:
    """Fold number per clip: group-disjoint (no app instance on both sides), stratified by class."""
    folds = np.full(len(strata), -1)
    splitter = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(strata)), strata, groups)):
        folds[test] = fold
    return folds


def out_of_fold_logits(
    make_net: Callable[[], nn.Module],
    clips: Sequence[Clip],
    targets: np.ndarray,
    n_classes: int,
    folds: np.ndarray,
    windows: WindowSet,
    config: FitConfig,
    seed: int,
    extra_windows: WindowSet | None = None,
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Window logits of each clip from the model that did not see its fold.

    extra_windows (evaluation-only clips, never trained on) are scored by every fold model, averaged.
    """
    oof = np.zeros((len(windows.features), n_classes), dtype=np.float32)
    extra = None if extra_windows is None else np.zeros((len(extra_windows.features), n_classes), np.float32)
    for fold in range(N_FOLDS):
        train_index = np.flatnonzero(folds != fold)
        rng = np.random.default_rng(seed + fold)
        features, owners = augmented_features(
            [clips[i] for i in train_index], config.views_per_clip, rng, config.augment
        )
        net = fit(make_net, features, targets[train_index][owners], n_classes, config, seed + fold)
        held_out = np.isin(windows.owner, np.flatnonzero(folds == fold))
        oof[held_out] = predict_logits(net, windows.features[held_out])
        if extra is not None:
            extra += predict_logits(net, extra_windows.features) / N_FOLDS
        log(f"  fold {fold + 1}/{N_FOLDS} done ({len(features)} training views)")
    return oof, extra
