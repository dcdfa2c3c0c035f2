"""The card's "Reasons with age and context": the audio model, the age prior and their combination.

Everything here is pure (numpy and services.common.evidence): the out-of-fold arrays come from evaluate.py
and codec_matched.py, so the section can be computed and tested on its own. The age prior of each held-out
fold is counted on the other folds' clips only, as the audio model of that fold was trained, and is combined
with that fold's calibrated audio probabilities through the bot's own ``combine_evidence``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.classifier import calibration, metrics
from services.classifier.age_prior import age_prior_from_clips
from services.classifier.augment import CODEC_MATCH, OPUS
from services.classifier.dataset import Clip
from services.common.bootstrap import BOOTSTRAP_ROUNDS, group_bootstrap
from services.common.evidence import AgePrior, EvidenceConfig, combine_evidence

AUDIO = "audio model (shipped calibration, cross-fitted)"
AUDIO_TEMPERATURE = "audio model, temperature only (the previous calibration, cross-fitted)"
AGE_PRIOR = "age prior alone"
COMBINED = "audio x age prior (combine_evidence)"
NO_AGE = "reason shares of the training folds (no audio, no age)"
CODEC_MATCHED = "audio model, codec-matched training and test"
SHUFFLED = "same model trained on shuffled reasons (learns nothing)"
# Pairs (a, b) whose paired difference a - b the section reports, on the same bootstrap resamples.
PAIRS = (
    (AUDIO, AUDIO_TEMPERATURE),
    (COMBINED, AUDIO),
    (AGE_PRIOR, NO_AGE),
    (AUDIO, NO_AGE),
    (AUDIO, SHUFFLED),
    (CODEC_MATCHED, AUDIO),
)
# Where the config's chance_ratio is judged: its value, these alternatives and the shuffled model's rule.
CHANCE_RATIOS = (1.05, 1.1, 1.25, 1.5, 2.0, 3.0)
# "At chance" measured: the share of clips on which a model that learnt nothing moves the reasons less.
CHANCE_QUANTILE = 0.95
# chance_ratio by rule: the shuffled model's CHANCE_QUANTILE departure, rounded up to the next step above it
# (strictly: a model that moves nothing has departure 1, and "below 1" would flag no clip at all).
CHANCE_RATIO_STEP = 0.05
# Fewer flagged clips than this get no interval (a bootstrap over a handful of babies says nothing).
MIN_CLIPS_FOR_AN_INTERVAL = 20
RELIABILITY_PLOT_ROWS = (AUDIO_TEMPERATURE, AUDIO, AGE_PRIOR, COMBINED, NO_AGE)


@dataclass(frozen=True)
class EvidenceInputs:
    """What the section is computed from: out-of-fold probabilities per model, clip facts, the flags."""

    labels: tuple[str, ...]
    targets: np.ndarray
    groups: list[str]
    platforms: np.ndarray  # "android" / "ios" per clip
    rows: dict[str, np.ndarray]  # model name -> (clips, labels) out-of-fold probabilities, in table order
    at_chance: dict[float, np.ndarray]  # chance ratio -> combine_evidence's audio_at_chance per clip
    platform_auc: dict[str, tuple[float, float, float]]  # features -> iOS-vs-Android AUC [95% CI]
    calibration_method: str  # the shipped method; every calibrated row is cross-fitted with it
    # Per clip, the shuffled-reason model's departure from ITS training folds' shares of the shuffled reasons
    # (the real folds hold other shares of them; against those even a model that says its prior would move).
    shuffled_departure: np.ndarray
    untagged_clips: int  # clips with no readable age tag (they get the overall prior)

    @property
    def shuffled_chance_ratio(self) -> float:
        """CHANCE_QUANTILE of the shuffled-reason model's departures: how far chance alone moves a reason."""
        return float(np.quantile(self.shuffled_departure, CHANCE_QUANTILE))


def fold_age_priors(
    clips: Sequence[Clip], folds: np.ndarray, labels: list[str], config: EvidenceConfig
) -> dict[int, AgePrior]:
    """For each fold, the age prior counted on the clips of the other folds only."""
    return {
        int(fold): age_prior_from_clips(
            [c for c, f in zip(clips, folds, strict=True) if f != fold], labels, config
        )
        for fold in np.unique(folds)
    }


def age_prior_probabilities(
    clips: Sequence[Clip],
    folds: np.ndarray,
    priors: dict[int, AgePrior],
    config: EvidenceConfig,
    by_age: bool,
) -> np.ndarray:
    """(clips, labels): each clip's fold prior for its band (by_age), or that prior's overall shares."""
    rows = []
    for clip, fold in zip(clips, folds, strict=True):
        prior = priors[int(fold)]
        shares = (
            prior.for_band(config.band_of_corpus_code(clip.age_code or "")) if by_age else prior.overall()
        )
        rows.append([shares[label] for label in prior.labels])
    return np.array(rows)


def audio_departure(audio: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Per clip, the largest factor (>= 1) by which the audio moves any reason from the training shares: the
    quantity combine_evidence compares with chance_ratio."""
    ratios = audio / audio.sum(axis=1, keepdims=True) / shares
    return np.exp(np.abs(np.log(np.clip(ratios, 1e-12, None))).max(axis=1))


def combined_probabilities(
    audio: np.ndarray,
    clips: Sequence[Clip],
    folds: np.ndarray,
    priors: dict[int, AgePrior],
    config: EvidenceConfig,
    chance_ratios: Sequence[float],
) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """combine_evidence of each clip's audio probabilities and band under its fold's prior, and its at-chance
    flag for each of ``chance_ratios``."""
    rows, flags = [], {ratio: [] for ratio in sorted(chance_ratios)}
    for probabilities, clip, fold in zip(audio, clips, folds, strict=True):
        fold_config = dataclasses.replace(config, age_prior=priors[int(fold)])
        labels = fold_config.age_prior.labels
        sound = dict(zip(labels, probabilities, strict=True))
        band = config.band_of_corpus_code(clip.age_code or "")
        rows.append([combine_evidence(sound, band, {}, fold_config).probabilities[label] for label in labels])
        for ratio in flags:
            flagged = combine_evidence(sound, band, {}, dataclasses.replace(fold_config, chance_ratio=ratio))
            flags[ratio].append(flagged.audio_at_chance)
    return np.array(rows), {ratio: np.array(values) for ratio, values in flags.items()}


def chance_ratio_by_rule(shuffled_chance_ratio: float) -> float:
    """The smallest multiple of CHANCE_RATIO_STEP strictly above the shuffled model's quantile."""
    steps = np.floor(shuffled_chance_ratio / CHANCE_RATIO_STEP + 1e-9) + 1
    return round(float(steps * CHANCE_RATIO_STEP), 2)


def chance_ratios(config: EvidenceConfig, shuffled_chance_ratio: float) -> list[float]:
    """The ratios the section compares: the shipped one, CHANCE_RATIOS and the shuffled model's rule."""
    return sorted({config.chance_ratio, *CHANCE_RATIOS, chance_ratio_by_rule(shuffled_chance_ratio)})


def _fmt(estimate: tuple[float, float, float]) -> str:
    return f"{estimate[0]:.3f} [{estimate[1]:.3f}, {estimate[2]:.3f}]"


def _signed(estimate: tuple[float, float, float]) -> str:
    return f"{estimate[0]:+.3f} [{estimate[1]:+.3f}, {estimate[2]:+.3f}]"


CLASSIFICATION_METRICS = (metrics.macro_f1, metrics.balanced_accuracy, metrics.accuracy)


def _metric_functions(inputs: EvidenceInputs, name: str) -> list[Callable[[np.ndarray], float]]:
    """macro-F1, balanced accuracy, accuracy and log loss of one row, as functions of a clip index."""
    probabilities, targets, n = inputs.rows[name], inputs.targets, len(inputs.labels)
    predictions = probabilities.argmax(axis=1)
    scores = [
        lambda i, metric=metric: metric(targets[i], predictions[i], n) for metric in CLASSIFICATION_METRICS
    ]
    return [*scores, lambda i: calibration.log_loss(probabilities[i], targets[i])]


def metrics_table(inputs: EvidenceInputs, index: np.ndarray, seed: int, rounds: int) -> list[str]:
    """One row per model on the clips in ``index``: intervals resample the groups of those clips."""
    groups = [inputs.groups[i] for i in index]
    lines = [
        "| model | macro-F1 [95% CI] | balanced accuracy [95% CI] | accuracy [95% CI] | log loss [95% CI] "
        "| ECE |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, probabilities in inputs.rows.items():
        cells = [
            _fmt(group_bootstrap(lambda i, f=function: f(index[i]), groups, seed, rounds))
            for function in _metric_functions(inputs, name)
        ]
        ece = calibration.expected_calibration_error(probabilities[index], inputs.targets[index])
        lines.append(f"| {name} | {' | '.join(cells)} | {ece:.3f} |")
    return lines


def paired_differences(inputs: EvidenceInputs, index: np.ndarray, seed: int, rounds: int) -> list[str]:
    """a - b for each of PAIRS (same group resamples): macro-F1, balanced accuracy, accuracy, log loss."""
    groups = [inputs.groups[i] for i in index]
    lines = [
        "| difference (paired) | macro-F1 | balanced accuracy | accuracy | log loss (lower is better) | "
        "reading (95% CI clear of 0) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for first, second in PAIRS:
        if first not in inputs.rows or second not in inputs.rows:
            continue
        estimates = [
            group_bootstrap(lambda i, f=f, g=g: f(index[i]) - g(index[i]), groups, seed, rounds)
            for f, g in zip(_metric_functions(inputs, first), _metric_functions(inputs, second), strict=True)
        ]
        cells = " | ".join(_signed(estimate) for estimate in estimates)
        lines.append(f"| {first} minus {second} | {cells} | {_reading(estimates[0], estimates[3])} |")
    return lines


def _reading(macro_f1: tuple[float, float, float], log_loss: tuple[float, float, float]) -> str:
    """Plain words for a paired difference: only an interval clear of 0 counts as a difference."""

    def side(estimate: tuple[float, float, float], above: str, below: str) -> str:
        return above if estimate[1] > 0 else below if estimate[2] < 0 else "no clear difference"

    return f"macro-F1 {side(macro_f1, 'higher', 'lower')}; log loss {side(log_loss, 'worse', 'better')}"


def _audio_loss_over_shares(inputs: EvidenceInputs) -> Callable[[np.ndarray], float]:
    """Log loss of the audio minus that of the training folds' reason shares on clips (< 0: it helped)."""
    audio, shares, targets = inputs.rows[AUDIO], inputs.rows[NO_AGE], inputs.targets
    return lambda i: calibration.log_loss(audio[i], targets[i]) - calibration.log_loss(shares[i], targets[i])


def chance_table(inputs: EvidenceInputs, shipped_ratio: float) -> list[str]:
    """Does "at chance" mean what it says? The audio on flagged vs unflagged clips, for several ratios."""
    measured_ratio = chance_ratio_by_rule(inputs.shuffled_chance_ratio)
    targets, n = inputs.targets, len(inputs.labels)
    predictions = inputs.rows[AUDIO].argmax(axis=1)
    majority = int(np.bincount(targets, minlength=n).argmax())
    loss_gain = _audio_loss_over_shares(inputs)
    lines = [
        "| chance_ratio | clips at chance | audio accuracy: at chance / not | always "
        f"`{inputs.labels[majority]}`: at chance / not | audio macro-F1: at chance / not | "
        "log loss, audio minus reason shares: at chance / not |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def pair(values: Callable[[np.ndarray], float], flags: np.ndarray) -> str:
        return " / ".join(
            f"{values(np.flatnonzero(side)):.3f}" if side.any() else "-" for side in (flags, ~flags)
        )

    for ratio, flags in inputs.at_chance.items():
        marker = " (shipped)" if ratio == shipped_ratio else ""
        marker += " (shuffled model's rule)" if ratio == measured_ratio else ""
        cells = [
            pair(lambda i: float(np.mean(predictions[i] == targets[i])), flags),
            pair(lambda i: float(np.mean(targets[i] == majority)), flags),
            pair(lambda i: metrics.macro_f1(targets[i], predictions[i], n), flags),
            pair(loss_gain, flags),
        ]
        lines.append(f"| {ratio:g}{marker} | {flags.mean():.1%} ({flags.sum()}) | {' | '.join(cells)} |")
    return lines


def flag_meaning(inputs: EvidenceInputs, shipped_ratio: float, seed: int, rounds: int) -> list[str]:
    """The audio's log loss over the reason shares on flagged and on unflagged clips, with intervals."""
    flags, loss_gain = inputs.at_chance[shipped_ratio], _audio_loss_over_shares(inputs)
    lines = []
    for label, side in (("at chance", flags), ("not at chance", ~flags)):
        index = np.flatnonzero(side)
        if len(index) < MIN_CLIPS_FOR_AN_INTERVAL:
            lines.append(
                f"- Clips flagged {label} at the shipped ratio: {len(index)}, too few for an interval."
            )
            continue
        groups = [inputs.groups[i] for i in index]
        gain = group_bootstrap(lambda i, index=index: loss_gain(index[i]), groups, seed, rounds)
        verdict = (
            "helped" if gain[2] < 0 else "made the answer worse" if gain[1] > 0 else "changed nothing clear"
        )
        lines.append(
            f"- Clips flagged {label} at the shipped ratio ({len(index)}): log loss of the audio minus that "
            f"of the reason shares {_signed(gain)}: out of fold, the sound's departures from the prior "
            f"{verdict}."
        )
    return lines


def chance_section(inputs: EvidenceInputs, config: EvidenceConfig, seed: int, rounds: int) -> list[str]:
    """The shipped chance_ratio against what a model that learnt nothing does, and the flag's meaning."""
    shipped, shuffled = audio_departure(inputs.rows[AUDIO], inputs.rows[NO_AGE]), inputs.shuffled_departure
    flags = inputs.at_chance[config.chance_ratio]
    by_rule = chance_ratio_by_rule(inputs.shuffled_chance_ratio)
    return [
        "`combine_evidence` flags a recording's sound as at chance when no reason's audio ratio (calibrated "
        f"probability over the training prior) reaches `chance_ratio` = {config.chance_ratio:g} up or down; "
        f"at that value {flags.mean():.1%} of the clips are flagged. What chance looks like, measured: the "
        "same model, recipe and folds trained on the reasons shuffled across clips (so it can learn "
        f"nothing), calibrated the same way (`{inputs.calibration_method}`, cross-fitted), moves some "
        "reason from its own training folds' reason shares by a median factor of "
        f"{np.median(shuffled):.3f}, and by at most "
        f"{inputs.shuffled_chance_ratio:.3f} on "
        f"{CHANCE_QUANTILE:.0%} of clips (its {CHANCE_QUANTILE:.0%} quantile). The rule: `chance_ratio` is "
        f"that quantile rounded up to the next multiple of {CHANCE_RATIO_STEP:g} above it, {by_rule:g} "
        f"(shipped: {config.chance_ratio:g}"
        f"{'' if by_rule == config.chance_ratio else '; NOT the rule, update reason_evidence.toml'}). The "
        f"shipped model's median factor is {np.median(shipped):.3f}; {np.mean(shipped >= by_rule):.1%} of "
        f"its clips reach {by_rule:g}, so by the rule its sound is at chance on "
        f"{np.mean(shipped < by_rule):.1%} of clips.",
        "",
        "The shipped audio model on flagged and unflagged clips, for the shipped ratio and others:",
        "",
        *chance_table(inputs, config.chance_ratio),
        "",
        *flag_meaning(inputs, config.chance_ratio, seed, rounds),
        "",
        "The flag says how far the sound moved the reasons against what chance alone does; it cannot say "
        "that the move was right.",
    ]


def age_prior_tables(config: EvidenceConfig, untagged_clips: int) -> list[str]:
    """The shipped prior's counts per band and reason (age_prior.json) and the smoothed shares they give."""
    prior, labels = config.age_prior, config.age_prior.labels
    header = "| band | " + " | ".join(labels) + " | clips |"
    rule = "| --- | " + " | ".join("---" for _ in labels) + " | --- |"
    counts = [header, rule]
    shares = [header.replace(" | clips |", " |"), rule.removesuffix(" --- |")]
    for band in config.age_bands:
        by_reason = prior.counts.get(band, {})
        counts.append(
            f"| {band} | "
            + " | ".join(str(by_reason.get(label, 0)) for label in labels)
            + f" | {sum(by_reason.values())} |"
        )
        smoothed = prior.for_band(band)
        shares.append(f"| {band} | " + " | ".join(f"{smoothed[label]:.3f}" for label in labels) + " |")
    overall, totals = prior.overall(), prior.totals()
    counts.append(
        "| all bands | " + " | ".join(str(totals[label]) for label in labels) + f" | {sum(totals.values())} |"
    )
    shares.append("| overall (no age) | " + " | ".join(f"{overall[label]:.3f}" for label in labels) + " |")
    return [
        "Counts of the shipped prior (`services/common/age_prior.json`, every licence-clean Donate-a-Cry "
        f"clip with a canonical reason; {untagged_clips} such clips carry no readable age tag and count "
        "towards no band):",
        "",
        *counts,
        "",
        f"Smoothed P(reason | band) = (count + {prior.pseudo_count:g} x overall share) / (band clips + "
        f"{prior.pseudo_count:g}) (`pseudo_count` in `services/common/reason_evidence.toml`):",
        "",
        *shares,
        "",
        "Caveat: the unvetted `hungry` uploads were subsampled when the data folder was built (150 of 359 "
        "usable clips kept, one per app instance; data README), and the tags are the uploaders' guesses, so "
        "these corpus shares are not population shares: `hungry` is under-represented against the uploads, "
        "and the bands' shares depend on which instances were kept.",
    ]


def evidence_section(
    inputs: EvidenceInputs,
    config: EvidenceConfig,
    seed: int,
    reliability_plot: str,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> list[str]:
    """The whole section, from the out-of-fold arrays (``rounds``: group-bootstrap resamples per interval)."""
    everyone = np.arange(len(inputs.targets))
    lines = [
        "Out of fold on the same 5 group folds as the reason model (grouped by app instance), "
        f"{len(everyone)} clips. Rows: the shipped reason model's out-of-fold probabilities calibrated by "
        f"the shipped method (`{inputs.calibration_method}`) cross-fitted (each fold by the calibration "
        "fitted on the other four folds' out-of-fold predictions), and beside them the same probabilities "
        "with the previous calibration, one temperature (also cross-fitted); the age prior counted on the "
        "four training folds only (`age_prior_from_clips`) and "
        "applied to the held-out fold's clips by their age tag (clips with none get the prior's overall "
        "shares); their combination by `combine_evidence` with that fold's prior and no context answers; "
        "the training folds' reason shares alone (the prior with no age, the baseline for log loss); and the "
        "same reason model cross-validated with every clip codec-matched (below; calibrated by the same "
        "method, cross-fitted on its own out-of-fold logits). "
        "Intervals: 95% group bootstrap; ECE over "
        f"{calibration.RELIABILITY_BINS} equal bins of the top probability.",
        "",
        *metrics_table(inputs, everyone, seed, rounds),
        "",
        *paired_differences(inputs, everyone, seed, rounds),
        "",
        f"Reliability of the top probability (`{reliability_plot}`):",
        "",
        f"![reliability]({reliability_plot})",
        "",
        "### Is the sound at chance?",
        "",
        *chance_section(inputs, config, seed, rounds),
        "",
        "### Platform confound",
        "",
    ]
    for platform in ("android", "ios"):
        index = np.flatnonzero(inputs.platforms == platform)
        lines += [
            f"Within {platform} clips ({len(index)}):",
            "",
            *metrics_table(inputs, index, seed, rounds),
            "",
            *paired_differences(inputs, index, seed, rounds),
            "",
        ]
    lines += [
        "Codec-matched: every clip, training and held-out alike, went through AMR-NB 12.2 kbit/s (SoX) and "
        f"then Opus {OPUS[2] // 1000} kbit/s at 8 kHz (`{CODEC_MATCH}`) before any feature, so no platform "
        "keeps its own codec; the model, training recipe and folds are the shipped model's. How well the "
        "reason model's own input statistics tell iOS from Android (out-of-fold logistic regression on the "
        "same folds, ROC-AUC [95% CI]; the data README measured 0.92 with its features):",
        "",
        *[f"- {features}: {_fmt(auc)}" for features, auc in inputs.platform_auc.items()],
        "",
        "### The age prior",
        "",
        *age_prior_tables(config, inputs.untagged_clips),
        "",
        "### Context answers",
        "",
        "The context likelihood ratios cannot be evaluated on this corpus: it holds no context answers (time "
        "since the last feed, nappy, just fed, time awake). They are rules of thumb with cited sources in "
        "`docs/reasons.md`; `python -m services.store feedback-report` measures them on parents' rated "
        "answers (audio alone, with age, with age and context).",
    ]
    return lines


def write_reliability_plot(inputs: EvidenceInputs, path: Path) -> None:
    """Accuracy against the mean top probability per bin for each row, beside the diagonal (small PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5, 4.2), dpi=80)
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    for name in RELIABILITY_PLOT_ROWS:
        bins = calibration.reliability_bins(inputs.rows[name], inputs.targets)
        shares, confidence, accuracy = (np.array(column) for column in zip(*bins, strict=True))
        ece = calibration.expected_calibration_error(inputs.rows[name], inputs.targets)
        (line,) = axes.plot(
            confidence, accuracy, marker="o", linewidth=1, label=f"{name.split(' (')[0]} (ECE {ece:.3f})"
        )
        axes.scatter(confidence, accuracy, s=400 * shares, alpha=0.25, color=line.get_color())
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean top probability in bin", ylabel="accuracy in bin")
    axes.set_title("Reliability, out of fold (marker area: share of clips)", fontsize=9)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Software": None})
    pyplot.close(figure)
