"""Why a baby may be crying, from the sound plus what the parent tells us: one pure combining function.

The audio model's calibrated probabilities already hold its training prior (mostly "hungry"). To add the
baby's age and the parent's context taps, each is turned into a likelihood ratio per reason and multiplied in,
naive-Bayes style (the sources are assumed independent given the reason)::

    P(reason | sound, age, context)  ∝  audio(reason) / training_prior(reason)   # what the sound adds
                                       × age_prior(reason | band)                 # the prior for this age
                                       × Π likelihood_ratio(reason | answer)      # rules of thumb

With no age band the prior is the training prior itself, so the audio's own probabilities come back
unchanged; an answer that was not given contributes 1. Each factor is kept in the result, so the bot can say
which part of the answer came from the sound and which from the context, and the audio is flagged as "at
chance" for a recording whose sound moves no reason by more than ``chance_ratio``.

The facts live elsewhere, each in one place: the likelihood ratios, age bands and chance ratio in
``reason_evidence.toml`` (rules of thumb, sources in docs/reasons.md), the per-band reason counts in
``age_prior.json`` (estimated from the corpus by ``python -m services.classifier age-prior``).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

EVIDENCE_CONFIG = Path(__file__).with_name("reason_evidence.toml")
AGE_PRIOR_FILE = Path(__file__).with_name("age_prior.json")

AgeBand = Literal["0-4w", "4-8w", "2-6m", "7m-2y", "over-2y"]
Question = Literal["since_feed", "nappy", "just_fed", "awake"]
QUESTIONS: tuple[Question, ...] = ("since_feed", "nappy", "just_fed", "awake")


@dataclass(frozen=True)
class ContextRule:
    """One context question: its likelihood ratios per answer and reason, and where the rule comes from."""

    question: str
    kind: str
    source: str
    ratios: Mapping[str, Mapping[str, float]]  # answer -> reason -> ratio
    by_age: Mapping[str, Mapping[str, Mapping[str, float]]] = field(
        default_factory=dict
    )  # band -> answer -> ...

    @property
    def answers(self) -> tuple[str, ...]:
        return tuple(self.ratios)

    def ratios_for(self, answer: str, age_band: str | None) -> Mapping[str, float]:
        """An answer's ratios: the age band's own where the rule has them (awake time weighs by age)."""
        return self.by_age.get(age_band or "", {}).get(answer, self.ratios[answer])


@dataclass(frozen=True)
class AgePrior:
    """Reason counts per age band from the corpus, smoothed towards the corpus-wide shares."""

    labels: tuple[str, ...]
    counts: Mapping[str, Mapping[str, int]]  # band -> reason -> clips
    pseudo_count: float

    def totals(self) -> dict[str, int]:
        return {label: sum(band.get(label, 0) for band in self.counts.values()) for label in self.labels}

    def overall(self) -> dict[str, float]:
        """The reason shares over every band: the prior the audio model was trained with."""
        totals = self.totals()
        clips = sum(totals.values())
        return {label: totals[label] / clips for label in self.labels}

    def for_band(self, band: str | None) -> dict[str, float]:
        """P(reason | band) with additive smoothing; the overall shares for an unknown or absent band."""
        overall = self.overall()
        band_counts = self.counts.get(band or "")
        if band_counts is None:
            return overall
        clips = sum(band_counts.get(label, 0) for label in self.labels)
        return {
            label: (band_counts.get(label, 0) + self.pseudo_count * overall[label])
            / (clips + self.pseudo_count)
            for label in self.labels
        }


@dataclass(frozen=True)
class EvidenceConfig:
    chance_ratio: float
    age_bands: Mapping[str, str]  # band id -> corpus code
    rules: Mapping[str, ContextRule]
    age_prior: AgePrior

    def band_of_corpus_code(self, code: str) -> str | None:
        return next((band for band, band_code in self.age_bands.items() if band_code == code), None)


@dataclass(frozen=True)
class ReasonEvidence:
    """The combined answer, and each source's factor per reason (normalised to average 1 over reasons)."""

    probabilities: dict[str, float]
    audio_factor: dict[str, float]
    age_factor: dict[str, float]
    context_factors: dict[str, dict[str, float]] = field(default_factory=dict)  # question -> reason -> factor
    audio_at_chance: bool = True

    def top_reason(self) -> str:
        return max(self.probabilities, key=self.probabilities.__getitem__)


@cache
def load_evidence_config(
    config_path: Path = EVIDENCE_CONFIG, prior_path: Path = AGE_PRIOR_FILE
) -> EvidenceConfig:
    raw = tomllib.loads(config_path.read_text())
    prior = json.loads(prior_path.read_text())
    rules = {
        question: ContextRule(question, rule["kind"], rule["source"], rule["answers"], rule.get("by_age", {}))
        for question, rule in raw["context"].items()
    }
    age_prior = AgePrior(tuple(prior["labels"]), prior["counts"], float(raw["age_prior"]["pseudo_count"]))
    return EvidenceConfig(float(raw["chance_ratio"]), raw["age_bands"], rules, age_prior)


def combine_evidence(
    audio: Mapping[str, float] | None,
    age_band: str | None,
    context: Mapping[str, str],
    config: EvidenceConfig,
) -> ReasonEvidence:
    """P(reason) from the calibrated audio probabilities, the age band and the parent's context answers.

    ``audio`` is the classifier's probability per label (None when there is no usable sound); labels the prior
    does not know are ignored. ``context`` maps a question to the parent's answer; unknown questions or
    answers raise, as they mean the caller and the config disagree.
    """
    labels = config.age_prior.labels
    training_prior = config.age_prior.overall()
    audio_ratio = {label: 1.0 for label in labels}
    if audio is not None:
        total = sum(audio.get(label, 0.0) for label in labels)
        if total > 0:
            audio_ratio = {label: audio.get(label, 0.0) / total / training_prior[label] for label in labels}
    band_prior = config.age_prior.for_band(age_band)
    age_ratio = {label: band_prior[label] / training_prior[label] for label in labels}
    context_ratios = {
        question: context_ratio(config.rules, question, answer, age_band, labels)
        for question, answer in context.items()
    }
    unnormalised = {
        label: training_prior[label]
        * audio_ratio[label]
        * age_ratio[label]
        * math.prod(ratios[label] for ratios in context_ratios.values())
        for label in labels
    }
    total = sum(unnormalised.values())
    return ReasonEvidence(
        probabilities={label: value / total for label, value in unnormalised.items()},
        audio_factor=normalised(audio_ratio),
        age_factor=normalised(age_ratio),
        context_factors={question: normalised(ratios) for question, ratios in context_ratios.items()},
        audio_at_chance=audio is None
        or max(abs(math.log(max(r, 1e-12))) for r in audio_ratio.values()) < math.log(config.chance_ratio),
    )


def context_ratio(
    rules: Mapping[str, ContextRule],
    question: str,
    answer: str,
    age_band: str | None,
    labels: tuple[str, ...],
) -> dict[str, float]:
    if question not in rules:
        raise ValueError(f"unknown context question {question!r}; known: {', '.join(rules)}")
    rule = rules[question]
    if answer not in rule.ratios:
        raise ValueError(f"unknown answer {answer!r} to {question!r}; known: {', '.join(rule.answers)}")
    ratios = rule.ratios_for(answer, age_band)
    return {label: float(ratios.get(label, 1.0)) for label in labels}


def normalised(factor: Mapping[str, float]) -> dict[str, float]:
    """Scale a factor so its geometric mean over reasons is 1: only the relative shifts carry meaning."""
    logs = [math.log(max(value, 1e-12)) for value in factor.values()]
    centre = sum(logs) / len(logs)
    return {label: math.exp(math.log(max(value, 1e-12)) - centre) for label, value in factor.items()}


def strongest_shift(factor: Mapping[str, float]) -> tuple[str, float]:
    """The reason a source favours most and by how much relative to the others' average (1 = no shift)."""
    label = max(factor, key=factor.__getitem__)
    return label, factor[label]
