"""``python -m services.store feedback-report``: how often the bot was right, according to the parents.

Pure: rated answers in (``repository.rated_answers``), a report and its text out. A parent rates an answer
«угадал» (right), «не угадал» (wrong) or names what it really was; naming the predicted reason counts as
right, any other reason as wrong. So:

- accuracy, overall and per predicted reason, counts every rated answer;
- per reported reason (how often the model named the reason parents say it was) and the confusion matrix
  count only the answers whose real reason is known (right, or named by the parent).

These are live figures from the parents who chose to answer, not a held-out evaluation: they say how the
model does in use, with the bias of who rates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from services.store.repository import RatedAnswer


@dataclass(frozen=True)
class ClassAccuracy:
    label: str
    rated: int
    right: int

    @property
    def accuracy(self) -> float:
        return self.right / self.rated if self.rated else 0.0


@dataclass(frozen=True)
class FeedbackReport:
    rated: int
    right: int
    by_predicted: list[ClassAccuracy]
    by_reported: list[ClassAccuracy]
    # (predicted, reported) -> answers, for answers whose real reason is known.
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.right / self.rated if self.rated else 0.0


def build_report(answers: list[RatedAnswer]) -> FeedbackReport:
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
    )


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
