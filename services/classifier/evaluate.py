"""`python -m services.classifier evaluate`: honest figures for MODEL_CARD.md.

Everything is measured on out-of-fold predictions of 5-fold cross-validation grouped by app instance
(Donate-a-Cry) or freesound clip (ESC), the same folds for every model: the majority-class baseline,
the reference baseline CNN and the shipped architecture; then the audio beside the age prior and their
combination (evidence_eval.py), a shuffled-reason model for what chance looks like, and a codec-matched
reason model for the platform confound (codec_matched.py). Thresholds and the calibration method are read
from the shipped ONNX metadata; every calibrated figure is cross-fitted (each fold calibrated by the method
fitted on the other folds only). Intervals are 95% group-bootstrap intervals (metrics.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from services.classifier import calibration, codec_matched, evidence_eval, gate, metrics
from services.classifier.age_prior import age_prior_from_clips
from services.classifier.calibration import Calibration
from services.classifier.dataset import Clip, load_corpus
from services.classifier.features import PHONE_SAMPLE_RATE
from services.classifier.inference import CryModelSession
from services.classifier.nets import BaselineCNN
from services.classifier.packaged_sounds import PACKAGED_SOURCE_PREFIX
from services.classifier.settings import ClassifierSettings
from services.classifier.sound_gate import GateCrossValidation
from services.classifier.train import (
    REASON_LABELS,
    Task,
    choose_cry_threshold,
    cross_validate,
    gate_cross_validation,
    reason_task,
)
from services.classifier.training import FitConfig
from services.common.bootstrap import group_bootstrap
from services.common.evidence import load_evidence_config

# The reference baseline as published: plain cross-entropy, no augmentation, the first window of each clip.
BASELINE_CONFIG = FitConfig(
    epochs=8, views_per_clip=1, learning_rate=1e-3, balance_classes=False, augment=False
)
RISK_COVERAGE_POINTS = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8)
RELIABILITY_PLOT = "reports/reliability.png"  # relative to the model card


@dataclass
class ModelResult:
    """Clip-level predictions of one model on the reason task."""

    name: str
    predictions: np.ndarray
    probabilities: np.ndarray | None = None


def majority_predictions(targets: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold answers the most frequent reason of the other folds (always 'hungry' here)."""
    predictions = np.zeros_like(targets)
    for fold in np.unique(folds):
        predictions[folds == fold] = np.bincount(targets[folds != fold]).argmax()
    return predictions


def reason_probabilities(oof: dict[str, np.ndarray], n_clips: int, temperature: float) -> np.ndarray:
    return calibration.clip_probabilities(oof["window_logits"], oof["owner"], n_clips, temperature)


def cross_fitted(oof: dict[str, np.ndarray], targets: np.ndarray, method: str) -> np.ndarray:
    """Out-of-fold probabilities calibrated by ``method``, each fold by the calibration of the others."""
    return calibration.cross_fitted_probabilities(
        method, oof["window_logits"], oof["owner"], targets, oof["folds"]
    )


def training_fold_shares(targets: np.ndarray, folds: np.ndarray, n_labels: int) -> np.ndarray:
    """(clips, labels): for each clip, the reason shares of the clips of the other folds."""
    shares = np.zeros((len(targets), n_labels))
    for fold in np.unique(folds):
        held_out = folds == fold
        shares[held_out] = np.bincount(targets[~held_out], minlength=n_labels) / (~held_out).sum()
    return shares


CALIBRATION_NAMES = {
    "temperature": "temperature only (the previous calibration)",
    "vector_scaling": "vector scaling, softmax(a log p + b)",
    "prior_shrink": "temperature, then shrunk towards the training folds' reason shares",
}


def _fmt(estimate: tuple[float, float, float]) -> str:
    return f"{estimate[0]:.3f} [{estimate[1]:.3f}, {estimate[2]:.3f}]"


def reason_section(task: Task, results: list[ModelResult], seed: int) -> list[str]:
    """Per-class table, macro-F1 and balanced accuracy with intervals, paired margins, per platform."""
    labels, targets, n = REASON_LABELS, task.targets, len(REASON_LABELS)
    groups = [c.group for c in task.clips]
    lines = ["| model | macro-F1 [95% CI] | balanced accuracy [95% CI] |", "| --- | --- | --- |"]
    for result in results:
        f1 = group_bootstrap(
            lambda i, r=result: metrics.macro_f1(targets[i], r.predictions[i], n), groups, seed
        )
        bacc = group_bootstrap(
            lambda i, r=result: metrics.balanced_accuracy(targets[i], r.predictions[i], n), groups, seed
        )
        lines.append(f"| {result.name} | {_fmt(f1)} | {_fmt(bacc)} |")
    shipped = results[-1]
    lines += ["", "Margin of the shipped model (paired group bootstrap, same resamples):", ""]
    for other in results[:-1]:

        def margin(i: np.ndarray, o: ModelResult = other) -> float:
            return metrics.macro_f1(targets[i], shipped.predictions[i], n) - metrics.macro_f1(
                targets[i], o.predictions[i], n
            )

        lines.append(f"- macro-F1, shipped minus {other.name}: {_fmt(group_bootstrap(margin, groups, seed))}")
    for result in results:
        lines += [
            "",
            f"Per class, {result.name}:",
            "",
            "| label | precision | recall | F1 | clips |",
            "| --- | --- | --- | --- | --- |",
        ]
        for label, (p, r, f, s) in zip(
            labels, metrics.per_class(targets, result.predictions, n), strict=True
        ):
            lines.append(f"| {label} | {p:.3f} | {r:.3f} | {f:.3f} | {s} |")
    lines += [
        "",
        "Within each upload platform (the data README's confound; macro-F1 [95% CI]):",
        "",
        "| platform | clips | " + " | ".join(r.name for r in results) + " |",
        "| --- | --- | " + " | ".join("---" for _ in results) + " |",
    ]
    platforms = np.array([c.platform for c in task.clips])
    for platform in ("android", "ios"):
        index = np.flatnonzero(platforms == platform)
        sub_groups = [groups[i] for i in index]
        cells = [
            _fmt(
                group_bootstrap(
                    lambda i, r=r, index=index: metrics.macro_f1(
                        targets[index][i], r.predictions[index][i], n
                    ),
                    sub_groups,
                    seed,
                )
            )
            for r in results
        ]
        lines.append(f"| {platform} | {len(index)} | " + " | ".join(cells) + " |")
    return lines


def calibration_section(
    task: Task, oof: dict[str, np.ndarray], shipped: Calibration, not_sure: float
) -> list[str]:
    """Log loss / ECE of every calibration method, cross-fitted, and the risk-coverage curve of not_sure."""
    targets, n_clips = task.targets, len(task.targets)
    in_sample_temperature = calibration.fit_temperature(oof["window_logits"], oof["owner"], targets)
    rows = [
        ("uncalibrated (T = 1)", reason_probabilities(oof, n_clips, 1.0)),
        (
            f"temperature T = {in_sample_temperature:.2f} fitted on all folds (in-sample: the previous "
            "card's row)",
            reason_probabilities(oof, n_clips, in_sample_temperature),
        ),
        *(
            (
                f"{CALIBRATION_NAMES[method]}, cross-fitted"
                + (" (shipped)" if method == shipped.method else ""),
                cross_fitted(oof, targets, method),
            )
            for method in calibration.CALIBRATION_METHODS
        ),
    ]
    rows.append(
        (
            "no audio: the training folds' reason shares",
            training_fold_shares(targets, oof["folds"], task.n_outputs),
        )
    )
    lines = ["| | log loss | expected calibration error |", "| --- | --- | --- |"]
    for name, probabilities in rows:
        ece = calibration.expected_calibration_error(probabilities, targets)
        lines.append(f"| {name} | {calibration.log_loss(probabilities, targets):.3f} | {ece:.3f} |")
    probabilities = shipped.probabilities(oof["window_logits"], oof["owner"], n_clips)
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == targets
    honest = cross_fitted(oof, targets, shipped.method)
    answered = honest.max(axis=1) >= not_sure
    honest_risk = 1 - np.mean(honest.argmax(axis=1)[answered] == targets[answered]) if answered.any() else 0
    lines += [
        "",
        "Cross-fitted: the method is fitted on four folds' out-of-fold predictions and applied to the fifth, "
        "so no clip is calibrated by a fit that saw it; the method with the lowest cross-fitted log loss is "
        f"shipped, fitted on all folds: {_calibration_words(shipped)}.",
        "",
        "Risk-coverage of `not_sure` with the shipped calibration (answer only when the top calibrated "
        "probability >= threshold; the threshold is chosen on these probabilities, the ones the runtime "
        f"emits; with the cross-fitted calibrations instead, whose training shares differ a little from fold "
        f"to fold, it answers {answered.mean():.1%} of clips at an error rate of {honest_risk:.3f}):",
        "",
        "| threshold | coverage | risk (error rate) | macro-F1 of answered |",
        "| --- | --- | --- | --- |",
    ]
    for threshold in sorted({*RISK_COVERAGE_POINTS, round(not_sure, 3)}):
        answered = confidence >= threshold
        if not answered.any():
            continue
        f1 = metrics.macro_f1(targets[answered], probabilities.argmax(axis=1)[answered], len(REASON_LABELS))
        marker = " (shipped)" if abs(threshold - not_sure) < 1e-3 else ""
        lines.append(
            f"| {threshold:.3f}{marker} | {answered.mean():.3f} | {1 - correct[answered].mean():.3f} | "
            f"{f1:.3f} |"
        )
    return lines


CRY_POOL = "all real cries"
RECORDED_NON_CRY_POOLS = (
    "recorded non-cries of ESC-10, out of fold",
    "recorded non-cries from Debian packages, out of fold",
    "all evaluation-only ESC-50 non-cries",
)
GATE_POOLS = {
    CRY_POOL: lambda kind: kind.startswith("cry:"),
    RECORDED_NON_CRY_POOLS[0]: lambda kind: kind.startswith("not a cry: ESC"),
    RECORDED_NON_CRY_POOLS[1]: lambda kind: kind.startswith(f"not a cry: {PACKAGED_SOURCE_PREFIX}"),
    RECORDED_NON_CRY_POOLS[2]: lambda kind: kind.startswith("not a cry, evaluation-only"),
    "synthesised non-cries (speech, noise, music), out of fold": lambda kind: kind.startswith(
        "not a cry: synth"
    ),
}


@dataclass(frozen=True)
class GateOutcome:
    """Why the whole gate turns one clip away (None: it passes), and the clip's group for the bootstrap."""

    reason: str | None
    group: str


def gate_rejections(
    clips: list[Clip], result: GateCrossValidation, evaluation_only: list[Clip], cry_threshold: float
) -> dict[str, list[GateOutcome]]:
    """By kind of clip: why the whole gate (signal checks, then the cry gate) turns each clip away."""
    rows: dict[str, list[GateOutcome]] = {}
    scored = [
        *zip(clips, result.probabilities, strict=True),
        *zip(evaluation_only, result.evaluation_only_probabilities, strict=True),
    ]
    for clip, p in scored:
        reason = gate.measure_signal(clip.samples, PHONE_SAMPLE_RATE).reason or (
            "not_a_cry" if p < cry_threshold else None
        )
        rows.setdefault(_gate_kind(clip), []).append(GateOutcome(reason, clip.group))
    return rows


def pooled_outcomes(rows: dict[str, list[GateOutcome]]) -> dict[str, list[GateOutcome]]:
    """The outcomes of each of GATE_POOLS."""
    return {
        name: [outcome for kind, outcomes in rows.items() if belongs(kind) for outcome in outcomes]
        for name, belongs in GATE_POOLS.items()
    }


def rejected_share(outcomes: list[GateOutcome]) -> float:
    return float(np.mean([outcome.reason is not None for outcome in outcomes]))


def rejection_cell(outcomes: list[GateOutcome], seed: int) -> str:
    """The share turned away, its 95% group-bootstrap interval and the counts, as in
    "81.5% [75.2%, 87.3%] (203 of 249)"."""
    if not outcomes:
        return "no clips"
    rejected = np.array([outcome.reason is not None for outcome in outcomes])
    share, low, high = group_bootstrap(
        lambda index: float(rejected[index].mean()), [outcome.group for outcome in outcomes], seed
    )
    return f"{share:.1%} [{low:.1%}, {high:.1%}] ({rejected.sum()} of {len(rejected)})"


def gate_section(
    rows: dict[str, list[GateOutcome]], ablations: dict[str, dict[str, list[GateOutcome]]], seed: int
) -> list[str]:
    """Share of clips the gate turns away, by kind and pooled, beside the same gate fitted otherwise."""
    lines = ["| clips | n | rejected by the gate | by reason |", "| --- | --- | --- | --- |"]
    for kind in sorted(rows):
        counts = Counter(outcome.reason for outcome in rows[kind] if outcome.reason)
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"| {kind} | {len(rows[kind])} | {rejected_share(rows[kind]):.1%} | {detail} |")
    pooled = pooled_outcomes(rows)
    others = {name: pooled_outcomes(ablation) for name, ablation in ablations.items()}
    lines += [
        "",
        "Pooled, with 95% bootstrap intervals over groups (app instances, freesound recordings, packaged "
        "creatures and machines), for the shipped gate and for the same gate fitted "
        f"{' or '.join(others)} (each threshold chosen by the same rule; without the packaged negatives, "
        "the packaged clips are unseen kinds scored by every fold model):",
        "",
        f"| clips | shipped gate | {' | '.join(others)} |",
        f"| --- | --- |{' --- |' * len(others)}",
    ]
    for name in GATE_POOLS:
        cells = [
            rejection_cell(pooled[name], seed),
            *(rejection_cell(o[name], seed) for o in others.values()),
        ]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    rates = {name: rejected_share(outcomes) for name, outcomes in pooled.items() if outcomes}
    cries = rates[CRY_POOL]
    recorded = min(rates[name] for name in RECORDED_NON_CRY_POOLS if name in rates)
    lines += [
        "",
        f"Targets: real cries rejected {cries:.1%} (target at most 5%: "
        f"{'met' if cries <= 0.05 else 'NOT met'}); recorded non-cries rejected at worst "
        f"{recorded:.1%} (target at least 95%: "
        f"{'met' if recorded >= 0.95 else 'NOT met'}).",
        "",
        "What else was measured against this gate and not shipped (more recorded negatives, projecting out "
        "the recording kind, channel augmentation of the training clips, an open-set cry-likeness check, the "
        "embedding's own sound categories): `reports/gate_ablation.md`.",
    ]
    return lines


def _gate_kind(clip: Clip) -> str:
    if clip.is_cry:
        return f"cry: {clip.source}"
    if not clip.trainable:
        return f"not a cry, evaluation-only ESC-50: {clip.label}"
    return f"not a cry: {clip.source}" if clip.source != "esc50" else "not a cry: ESC-10 (out of fold)"


def scared_section(corpus: list[Clip], settings: ClassifierSettings, log: Callable[[str], None]) -> list[str]:
    """Is `scared` learned beyond chance? Six-class CV of the shipped architecture, scared vs chance."""
    labels = [*REASON_LABELS, "scared"]
    task = reason_task(corpus, labels)
    # Class-weighted, or a rare class is never predicted and could not show any signal at all.
    config = dataclasses.replace(task.config, balance_classes=True)
    task = Task(
        "reasons_with_scared", task.clips, task.targets, len(labels), task.strata, config, task.architecture
    )
    oof = cross_validate(task, settings, log=log)
    predictions = reason_probabilities(oof, len(task.targets), 1.0).argmax(axis=1)
    scared = labels.index("scared")
    precision, recall, f1, support = metrics.per_class(task.targets, predictions, len(labels))[scared]
    predicted_share = float(np.mean(predictions == scared))
    prevalence = support / len(task.targets)
    chance_f1 = 2 * prevalence * predicted_share / (prevalence + predicted_share) if predicted_share else 0.0
    return [
        f"Six-class cross-validation (same architecture and folds method): `scared` has {support} clips "
        f"({prevalence:.1%}); precision {precision:.3f}, recall {recall:.3f}, F1 {f1:.3f}. A random guesser "
        f"that answers `scared` as often ({predicted_share:.1%} of clips) expects precision "
        f"{prevalence:.3f}, "
        f"recall {predicted_share:.3f}, F1 {chance_f1:.3f}.",
        f"Verdict: `scared` {'is' if f1 > 2 * chance_f1 and f1 > 0.1 else 'is not'} learned clearly beyond "
        "chance (the rule: F1 at least twice the chance F1 and above 0.1). Shipped: `scared` is "
        f"{'' if 'scared' in REASON_LABELS else 'not '}a supported label; the bot's help text must say so.",
    ]


def _calibration_words(fitted: Calibration) -> str:
    """The shipped calibration's parameters in words."""
    words = [f"temperature {fitted.temperature:.2f}"]
    if fitted.method == "vector_scaling":
        words += [f"scale {fitted.scale:.3f}", "biases " + ", ".join(f"{b:+.2f}" for b in fitted.bias)]
    if fitted.method == "prior_shrink":
        words.append(f"weight {fitted.prior_weight:.2f} on the training reason shares")
    return f"`{fitted.method}` ({'; '.join(words)})"


def shuffled_reason_task(reasons: Task, seed: int) -> Task:
    """The reason task with its reasons permuted across clips: a model of it can learn nothing. The strata,
    hence the folds, stay the real ones."""
    targets = np.random.default_rng(seed).permutation(reasons.targets)
    return dataclasses.replace(reasons, name=f"{reasons.name}_shuffled", targets=targets)


def codec_matched_evidence(
    reasons: Task, folds: np.ndarray, method: str, settings: ClassifierSettings, log: Callable[[str], None]
) -> tuple[np.ndarray, dict[str, tuple[float, float, float]]]:
    """The codec-matched reason model's out-of-fold probabilities, cross-fitted by the shipped calibration
    method on its own out-of-fold logits, and the platform probe before and after the codec match."""
    matched_clips = codec_matched.codec_matched_clips(reasons.clips, settings, log)
    matched_oof = cross_validate(codec_matched.codec_matched_task(reasons, matched_clips), settings, log=log)
    if not np.array_equal(matched_oof["folds"], folds):
        raise RuntimeError("the codec-matched cross-validation did not reproduce the reason model's folds")
    groups = [c.group for c in reasons.clips]
    platforms = [c.platform for c in reasons.clips]
    auc = {
        features: codec_matched.platform_auc(
            codec_matched.reason_statistics(clips), platforms, folds, groups, settings.seed
        )
        for features, clips in (
            ("reason statistics as recorded", reasons.clips),
            ("reason statistics after the codec match", matched_clips),
        )
    }
    return cross_fitted(matched_oof, reasons.targets, method), auc


def evidence_inputs(
    reasons: Task,
    reason_oof: dict[str, np.ndarray],
    method: str,
    settings: ClassifierSettings,
    log: Callable[[str], None],
) -> evidence_eval.EvidenceInputs:
    """The out-of-fold arrays of "Reasons with age and context": fold-fitted age priors, their combination
    with the audio (cross-fitted by the shipped calibration method), the shuffled-reason model that shows
    what chance looks like (calibrated the same way), and the codec-matched reason model."""
    config = load_evidence_config()
    if age_prior_from_clips(reasons.clips, REASON_LABELS, config).counts != config.age_prior.counts:
        raise ValueError(
            "services/common/age_prior.json is stale: run python -m services.classifier age-prior"
        )
    folds = reason_oof["folds"]
    audio = cross_fitted(reason_oof, reasons.targets, method)
    priors = evidence_eval.fold_age_priors(reasons.clips, folds, REASON_LABELS, config)
    no_age = evidence_eval.age_prior_probabilities(reasons.clips, folds, priors, config, by_age=False)
    shuffled_oof = cross_validate(shuffled_reason_task(reasons, settings.seed), settings, log=log)
    shuffled = cross_fitted(shuffled_oof, shuffled_oof["targets"], method)
    shuffled_departure = evidence_eval.audio_departure(
        shuffled, training_fold_shares(shuffled_oof["targets"], folds, reasons.n_outputs)
    )
    ratios = evidence_eval.chance_ratios(
        config, float(np.quantile(shuffled_departure, evidence_eval.CHANCE_QUANTILE))
    )
    combined, at_chance = evidence_eval.combined_probabilities(
        audio, reasons.clips, folds, priors, config, ratios
    )
    matched, auc = codec_matched_evidence(reasons, folds, method, settings, log)
    by_age = evidence_eval.age_prior_probabilities(reasons.clips, folds, priors, config, by_age=True)
    return evidence_eval.EvidenceInputs(
        labels=tuple(REASON_LABELS),
        targets=reasons.targets,
        groups=[c.group for c in reasons.clips],
        platforms=np.array([c.platform for c in reasons.clips]),
        rows={
            evidence_eval.AUDIO: audio,
            evidence_eval.AUDIO_TEMPERATURE: cross_fitted(reason_oof, reasons.targets, "temperature"),
            evidence_eval.AGE_PRIOR: by_age,
            evidence_eval.COMBINED: combined,
            evidence_eval.NO_AGE: no_age,
            evidence_eval.SHUFFLED: shuffled,
            evidence_eval.CODEC_MATCHED: matched,
        },
        at_chance=at_chance,
        platform_auc=auc,
        calibration_method=method,
        shuffled_departure=shuffled_departure,
        untagged_clips=sum(config.band_of_corpus_code(c.age_code or "") is None for c in reasons.clips),
    )


def write_model_card(settings: ClassifierSettings, log: Callable[[str], None] = print) -> None:
    from services.classifier.model_card import render_model_card

    corpus = load_corpus(settings.data_dir, settings.cache_dir, settings.seed)
    evaluation_only = [c for c in corpus if not c.trainable]
    metadata = CryModelSession(settings.model_path).metadata
    if metadata.labels != REASON_LABELS:
        raise ValueError(f"{settings.model_path} has labels {metadata.labels}; retrain first")
    reasons = reason_task(corpus, REASON_LABELS)
    gate_training, gate_result, _ = gate_cross_validation(corpus, settings, log)
    _, unbalanced_result, _ = gate_cross_validation(corpus, settings, log, balanced=False)

    def packaged_held_out(clip: Clip) -> bool:
        return not clip.trainable or clip.is_packaged

    unpackaged_training, unpackaged_result, _ = gate_cross_validation(
        corpus, settings, log, held_out=packaged_held_out
    )
    reason_oof = cross_validate(reasons, settings, log=log)
    baseline = Task(
        "baseline_cnn",
        reasons.clips,
        reasons.targets,
        len(REASON_LABELS),
        reasons.strata,
        BASELINE_CONFIG,
        BaselineCNN,
    )
    baseline_oof = cross_validate(baseline, settings, log=log)
    # Ablation: the same model with a class-weighted loss (the usual answer to imbalance).
    weighted = dataclasses.replace(reasons, config=dataclasses.replace(reasons.config, balance_classes=True))
    weighted_oof = cross_validate(weighted, settings, log=log)
    folds = reason_oof["folds"]
    method = metadata.calibration.method
    shipped_probabilities = cross_fitted(reason_oof, reasons.targets, method)
    results = [
        ModelResult(
            "majority class (always the most frequent reason)", majority_predictions(reasons.targets, folds)
        ),
        ModelResult(
            "reference baseline CNN",
            reason_probabilities(baseline_oof, len(reasons.targets), 1.0).argmax(axis=1),
        ),
        ModelResult(
            "same model, class-weighted loss (ablation)",
            reason_probabilities(weighted_oof, len(reasons.targets), 1.0).argmax(axis=1),
        ),
        ModelResult(
            "shipped network, temperature only (the previous calibration, cross-fitted)",
            cross_fitted(reason_oof, reasons.targets, "temperature").argmax(axis=1),
        ),
        ModelResult(
            f"shipped model (StatsReasonNet, `{method}` calibration, cross-fitted)",
            shipped_probabilities.argmax(axis=1),
            shipped_probabilities,
        ),
    ]
    gate_lines = gate_section(
        gate_rejections(gate_training, gate_result, evaluation_only, metadata.cry_threshold),
        {
            "without balancing": gate_rejections(
                gate_training,
                unbalanced_result,
                evaluation_only,
                choose_cry_threshold(gate_training, unbalanced_result),
            ),
            "without the packaged negatives": gate_rejections(
                unpackaged_training,
                unpackaged_result,
                [c for c in corpus if packaged_held_out(c)],
                choose_cry_threshold(unpackaged_training, unpackaged_result),
            ),
        },
        settings.seed,
    )
    evidence = evidence_inputs(reasons, reason_oof, method, settings, log)
    evidence_eval.write_reliability_plot(evidence, settings.model_card_path.parent / RELIABILITY_PLOT)
    sections = {
        "reasons": reason_section(reasons, results, settings.seed),
        "evidence": evidence_eval.evidence_section(
            evidence, load_evidence_config(), settings.seed, RELIABILITY_PLOT
        ),
        "calibration": calibration_section(
            reasons, reason_oof, metadata.calibration, metadata.not_sure_threshold
        ),
        "gate": gate_lines,
        "scared": scared_section(corpus, settings, log),
    }
    training = json.loads(metadata.raw.get("training", "{}"))
    settings.model_card_path.write_text(render_model_card(metadata, sections, corpus, training))
    log(f"wrote {settings.model_card_path}")
