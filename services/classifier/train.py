"""`python -m services.classifier train`: cross-validate, calibrate, fit on everything, export ONNX.

1. cry gate (sound_gate.py: a linear head on the frozen aiSFX embedding) on every trainable clip: cries vs
   ESC-10 recordings + synthesised speech, noise, calls and music; out-of-fold cry probabilities pick the
   cry threshold;
2. reason model (StatsReasonNet, softmax) on Donate-a-Cry clips with a canonical reason;
   its out-of-fold window logits choose the calibration method (lowest cross-fitted log loss), which is
   then fitted on all of them and gives the not-sure threshold;
3. both refitted on all trainable clips and exported as one ONNX graph with the thresholds in metadata.
Out-of-fold results are kept in the cache so that `evaluate` reports exactly what training measured.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from services.classifier import calibration
from services.classifier.dataset import Clip, load_corpus
from services.classifier.export import export_model
from services.classifier.nets import CryModel, SoundGate, StatsReasonNet, load_sound_embedding
from services.classifier.settings import ClassifierSettings
from services.classifier.sound_gate import (
    GateCrossValidation,
    clip_embeddings,
    cross_validate_gate,
    fit_head,
    gate_clips,
)
from services.classifier.training import (
    FitConfig,
    augmented_features,
    clip_windows,
    fit,
    group_folds,
    out_of_fold_logits,
)

# `scared` (15 unvetted clips) stays out: see MODEL_CARD.md for the cross-validated evidence. `lonely` is
# not a canonical reason and `cold_hot` folds into `discomfort` (dataset.py).
REASON_LABELS = ["hungry", "tired", "discomfort", "belly_pain", "burping"]
# Plain cross-entropy: class weighting was measured to lower macro-F1 and accuracy here (MODEL_CARD.md).
REASON_CONFIG = FitConfig(epochs=10, views_per_clip=2, balance_classes=False)
REASON_ARCHITECTURE = StatsReasonNet


@dataclass
class Task:
    """One network to cross-validate and fit: its clips, integer targets and number of outputs."""

    name: str
    clips: list[Clip]
    targets: np.ndarray
    n_outputs: int
    strata: np.ndarray
    config: FitConfig
    architecture: type[nn.Module] = StatsReasonNet

    def make_net(self) -> nn.Module:
        return self.architecture(self.n_outputs)

    def fingerprint(self, seed: int) -> str:
        """Short hash of what decides the out-of-fold results, so a stale cache is never reused."""
        parts = [self.name, self.architecture.__name__, repr(self.config), str(seed)]
        parts += [c.path for c in self.clips] + [",".join(map(str, self.targets))]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def reason_task(corpus: list[Clip], labels: list[str]) -> Task:
    clips = [c for c in corpus if c.trainable and c.reason in labels]
    targets = np.array([labels.index(c.reason) for c in clips])
    return Task("reasons", clips, targets, len(labels), targets, REASON_CONFIG, REASON_ARCHITECTURE)


def cross_validate(
    task: Task,
    settings: ClassifierSettings,
    extra: list[Clip] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """Out-of-fold window logits for the task's clips (and fold-averaged logits for ``extra``), cached."""
    cache_file = settings.cache_dir / f"oof_{task.name}_{task.fingerprint(settings.seed)}.npz"
    if cache_file.exists():
        return dict(np.load(cache_file))
    folds = group_folds(task.strata, [c.group for c in task.clips], settings.seed)
    windows = clip_windows(task.clips)
    extra_windows = clip_windows(extra) if extra else None
    log(f"{task.name}: {len(task.clips)} clips, {len(windows.features)} windows, 5-fold group CV")
    oof, extra_logits = out_of_fold_logits(
        task.make_net,
        task.clips,
        task.targets,
        task.n_outputs,
        folds,
        windows,
        task.config,
        settings.seed,
        extra_windows,
        log,
    )
    result = {"folds": folds, "targets": task.targets, "window_logits": oof, "owner": windows.owner}
    if extra_windows is not None:
        result |= {"extra_logits": extra_logits, "extra_owner": extra_windows.owner}
    np.savez(cache_file, **result)
    return result


def fit_final(task: Task, settings: ClassifierSettings) -> nn.Module:
    rng = np.random.default_rng(settings.seed)
    features, owners = augmented_features(task.clips, task.config.views_per_clip, rng, task.config.augment)
    return fit(task.make_net, features, task.targets[owners], task.n_outputs, task.config, settings.seed)


def gate_cross_validation(
    corpus: list[Clip],
    settings: ClassifierSettings,
    log: Callable[[str], None] = print,
    balanced: bool = True,
    held_out: Callable[[Clip], bool] = lambda clip: not clip.trainable,
) -> tuple[list[Clip], GateCrossValidation, np.ndarray]:
    """The gate's clips, its out-of-fold results, and all its training embeddings (for the final fit).

    Clips that are ``held_out`` are never trained on and are scored by every fold model, as the
    evaluation-only ones are; an ablation holds out a whole source this way.
    """
    net = load_sound_embedding()
    clips = [c for c in gate_clips(corpus) if not held_out(c)]
    embeddings = clip_embeddings(clips, net, settings, log)
    extra = clip_embeddings([c for c in corpus if held_out(c)], net, settings, log)
    return clips, cross_validate_gate(clips, embeddings, extra, settings.seed, balanced), embeddings


def choose_cry_threshold(clips: list[Clip], result: GateCrossValidation) -> float:
    cries_by_source = {
        "donateacry": result.probabilities[[c.is_cry and c.is_donateacry for c in clips]],
        "other": result.probabilities[[c.is_cry and not c.is_donateacry for c in clips]],
    }
    return calibration.choose_cry_threshold(cries_by_source)


def train(settings: ClassifierSettings, log: Callable[[str], None] = print) -> str:
    """The whole training run; returns the exported model version."""
    started = time.monotonic()
    torch.set_num_threads(settings.training_threads)
    corpus = load_corpus(settings.data_dir, settings.cache_dir, settings.seed)
    reasons = reason_task(corpus, REASON_LABELS)

    gate_training, gate_result, gate_embeddings = gate_cross_validation(corpus, settings, log)
    cry_threshold = choose_cry_threshold(gate_training, gate_result)

    reason_oof = cross_validate(reasons, settings, log=log)
    logits, owner = reason_oof["window_logits"], reason_oof["owner"]
    folds = reason_oof["folds"]
    method, losses = calibration.choose_calibration_method(logits, owner, reasons.targets, folds)
    reason_calibration = calibration.fit_calibration(method, logits, owner, reasons.targets)
    # The threshold is chosen on the probabilities the runtime emits, i.e. with the shipped calibration.
    calibrated = reason_calibration.probabilities(logits, owner, len(reasons.clips))
    not_sure_threshold = calibration.choose_not_sure_threshold(calibrated, reasons.targets)
    log(
        f"cry threshold {cry_threshold:.3f}; cross-fitted log loss by calibration method "
        f"{ {name: round(loss, 4) for name, loss in losses.items()} }: {reason_calibration}; not-sure "
        f"threshold {not_sure_threshold:.3f}"
    )

    log("fitting the shipped networks on all trainable clips")
    head = fit_head(gate_embeddings, gate_training)
    gate = SoundGate(load_sound_embedding(), torch.from_numpy(head.weights), head.bias)
    model = CryModel(gate, fit_final(reasons, settings))
    training = {
        "gate_clips": len(gate_training),
        "reason_clips": len(reasons.clips),
        "seed": settings.seed,
        "training_seconds": round(time.monotonic() - started),
    }
    version = export_model(
        model,
        settings.model_path,
        REASON_LABELS,
        cry_threshold,
        not_sure_threshold,
        reason_calibration,
        {"training": json.dumps(training)},
    )
    log(f"exported {settings.model_path} ({version}) after {time.monotonic() - started:.0f} s")
    return version
