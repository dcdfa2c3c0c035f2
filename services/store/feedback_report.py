"""``python -m services.store feedback-report``: how often the bot was right, according to the parents.

Pure: rated answers in (``repository.rated_answers``), a report and its text out. A parent rates an answer
«угадал» (right), «не угадал» (wrong) or names what it really was; naming the predicted reason counts as
right, any other reason as wrong. So:

- accuracy, overall and per predicted reason, counts every rated answer;
- per reported reason (how often the model named the reason parents say it was) and the confusion matrix
  count only the answers whose real reason is known (right, or named by the parent);
- by evidence: the answers whose real reason is known, each recomputed from its stored audio probabilities
  with ``combine_evidence`` three ways (the sound alone, with the age band, with the age band and the context
  answers the parent had given when rating), so that each source shows whether it earns its place. Each
  accuracy has a 95% Wilson interval.

These are live figures from the parents who chose to answer, not a held-out evaluation: they say how the
model does in use, with the bias of who rates.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.common.evidence import EvidenceConfig, combine_evidence, load_evidence_config
from services.store.repository import RatedAnswer

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class ClassAccuracy:
    """Right answers out of rated ones, for one reason or (``by_evidence``) one way of combining evidence."""

    label: str
    rated: int
    right: int

    @property
    def accuracy(self) -> float:
        return self.right / self.rated if self.rated else 0.0

    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.right, self.rated)


@dataclass(frozen=True)
class FeedbackReport:
    rated: int
    right: int
    by_predicted: list[ClassAccuracy]
    by_reported: list[ClassAccuracy]
    # (predicted, reported) -> answers, for answers whose real reason is known.
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_evidence: list[ClassAccuracy] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / self.rated if self.rated else 0.0


def build_report(answers: list[RatedAnswer], config: EvidenceConfig | None = None) -> FeedbackReport:
    """Accuracy and confusion from the rated answers that named a reason (``not_a_cry`` ones name none)."""
    named = [answer for answer in answers if answer.predicted_label is not None]
    confusion: Counter[tuple[str, str]] = Counter(
        (answer.predicted_label, answer.reported_label)
        for answer in named
        if answer.reported_label is not None
    )
    return FeedbackReport(
        rated=len(named),
        right=sum(answer.verdict == "right" for answer in named),
        by_predicted=_per_class([(a.predicted_label, a.verdict == "right") for a in named]),
        by_reported=_per_class(
            [(reported, reported == predicted) for (predicted, reported) in confusion.elements()]
        ),
        confusion=confusion,
        by_evidence=accuracy_by_evidence(named, config or load_evidence_config()),
    )


def accuracy_by_evidence(answers: list[RatedAnswer], config: EvidenceConfig) -> list[ClassAccuracy]:
    """Right / known for the sound alone, the sound with the age, and with the age and the context."""
    known = [a for a in answers if a.reported_label is not None and a.audio_probabilities]
    variants: list[tuple[str, bool, bool]] = [
        ("audio alone", False, False),
        ("audio + age", True, False),
        ("audio + age + context", True, True),
    ]
    return [
        ClassAccuracy(
            label=name,
            rated=len(known),
            right=sum(recomputed_top(a, config, with_age, with_context) == a.reported_label for a in known),
        )
        for name, with_age, with_context in variants
    ]


def recomputed_top(answer: RatedAnswer, config: EvidenceConfig, with_age: bool, with_context: bool) -> str:
    context: Mapping[str, str] = answer.context if with_context else {}
    evidence = combine_evidence(
        answer.audio_probabilities, answer.age_band if with_age else None, context, config
    )
    return evidence.top_reason()


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: sensible at 0 or n successes and for small n."""
    if trials == 0:
        return 0.0, 1.0
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _per_class(outcomes: list[tuple[str, bool]]) -> list[ClassAccuracy]:
    labels = sorted({label for label, _ in outcomes})
    return [
        ClassAccuracy(
            label=label,
            rated=sum(1 for other, _ in outcomes if other == label),
            right=sum(1 for other, right in outcomes if other == label and right),
        )
        for label in labels
    ]


def render_report(report: FeedbackReport) -> str:
    """The report as plain text tables."""
    if report.rated == 0:
        return "No rated answers yet: parents have not used the feedback buttons."
    lines = [
        f"Live accuracy from parents' feedback: {report.right}/{report.rated} = {report.accuracy:.1%}",
        "",
        "By predicted reason (every rated answer):",
        *_class_table(report.by_predicted, "predicted"),
        "",
        "By reported reason (answers whose real reason is known):",
        *_class_table(report.by_reported, "reported"),
        "",
        "Confusion (rows: predicted, columns: reported):",
        *_confusion_table(report.confusion),
        "",
        "By evidence (answers whose real reason is known, recomputed from the stored sound probabilities):",
        *_evidence_table(report.by_evidence),
    ]
    return "\n".join(lines)


def _class_table(rows: list[ClassAccuracy], heading: str) -> list[str]:
    if not rows:
        return ["  (none)"]
    lines = [f"  {heading:<12} {'rated':>6} {'right':>6} {'accuracy':>9}"]
    lines += [f"  {row.label:<12} {row.rated:>6} {row.right:>6} {row.accuracy:>9.1%}" for row in rows]
    return lines


def _confusion_table(confusion: Counter[tuple[str, str]]) -> list[str]:
    if not confusion:
        return ["  (none)"]
    predicted = sorted({p for p, _ in confusion})
    reported = sorted({r for _, r in confusion})
    width = max(12, *(len(label) + 1 for label in reported))
    lines = ["  " + " " * 12 + "".join(f"{label:>{width}}" for label in reported)]
    for row in predicted:
        lines.append("  " + f"{row:<12}" + "".join(f"{confusion[(row, col)]:>{width}}" for col in reported))
    return lines


def _evidence_table(rows: list[ClassAccuracy]) -> list[str]:
    if not rows or rows[0].rated == 0:
        return ["  (none)"]
    lines = [f"  {'evidence':<22} {'right':>6} {'n':>6} {'accuracy':>9}  95% interval (Wilson)"]
    for row in rows:
        low, high = row.interval()
        interval = f"[{low:.1%}, {high:.1%}]"
        lines.append(f"  {row.label:<22} {row.right:>6} {row.rated:>6} {row.accuracy:>9.1%}  {interval}")
    return lines
