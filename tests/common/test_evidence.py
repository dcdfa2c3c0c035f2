"""The combining function against hand-computed cases, on a small config of its own and on the shipped one."""

from __future__ import annotations

import math

import pytest

from services.classifier.age_prior import age_counts
from services.classifier.dataset import load_manifest_clips
from services.classifier.settings import ClassifierSettings
from services.classifier.train import REASON_LABELS
from services.common.evidence import (
    QUESTIONS,
    AgePrior,
    ContextRule,
    EvidenceConfig,
    combine_evidence,
    load_evidence_config,
    strongest_shift,
)

# Two reasons keep the arithmetic checkable by hand: 30 clips hungry, 10 tired overall.
PRIOR = AgePrior(
    ("hungry", "tired"), {"young": {"hungry": 18, "tired": 2}, "old": {"hungry": 12, "tired": 8}}, 10
)
RULES = {
    "since_feed": ContextRule(
        "since_feed", "rule of thumb", "docs", {"over_3h": {"hungry": 3.0}, "under_1h": {}}
    ),
    "awake": ContextRule(
        "awake", "rule of thumb", "docs", {"over_2h": {"tired": 2.0}}, {"old": {"over_2h": {"tired": 1.0}}}
    ),
}
CONFIG = EvidenceConfig(1.5, {"young": "04", "old": "26"}, RULES, PRIOR)


def test_without_age_or_context_the_audio_comes_back_unchanged() -> None:
    evidence = combine_evidence({"hungry": 0.6, "tired": 0.4}, None, {}, CONFIG)
    assert evidence.probabilities == pytest.approx({"hungry": 0.6, "tired": 0.4})


def test_hand_computed_age_and_context() -> None:
    # Overall prior 0.75 / 0.25. Band "young": (18 + 10*0.75) / 30 = 0.85, (2 + 10*0.25) / 30 = 0.15.
    # Audio 0.6 / 0.4 -> ratios 0.8 / 1.6; age ratios 0.85/0.75, 0.15/0.25; awake over_2h doubles tired.
    # hungry: 0.75 * 0.8 * (0.85/0.75) = 0.68; tired: 0.25 * 1.6 * 0.6 * 2 = 0.48 -> 0.68/1.16, 0.48/1.16.
    evidence = combine_evidence({"hungry": 0.6, "tired": 0.4}, "young", {"awake": "over_2h"}, CONFIG)
    assert evidence.probabilities == pytest.approx({"hungry": 0.68 / 1.16, "tired": 0.48 / 1.16})
    assert strongest_shift(evidence.context_factors["awake"])[0] == "tired"
    assert strongest_shift(evidence.age_factor)[0] == "hungry"
    assert strongest_shift(evidence.audio_factor)[0] == "tired"


def test_an_age_band_of_its_own_overrides_the_answer_ratios() -> None:
    # Band "old" has its own over_2h ratios (none): the answer no longer moves tired; the prior is the band's.
    assert combine_evidence(None, "old", {"awake": "over_2h"}, CONFIG).probabilities == pytest.approx(
        {"hungry": 0.65, "tired": 0.35}
    )


def test_no_audio_gives_the_age_prior_times_the_context() -> None:
    # "old": (12 + 7.5) / 30 = 0.65, (8 + 2.5) / 30 = 0.35; over_3h triples hungry: 1.95 / (1.95 + 0.35).
    evidence = combine_evidence(None, "old", {"since_feed": "over_3h"}, CONFIG)
    assert evidence.probabilities["hungry"] == pytest.approx(1.95 / 2.30)
    assert evidence.audio_at_chance


def test_an_answer_with_no_ratios_and_an_unknown_band_change_nothing() -> None:
    audio = {"hungry": 0.7, "tired": 0.3}
    plain = combine_evidence(audio, None, {}, CONFIG)
    answered = combine_evidence(audio, "no-such-band", {"since_feed": "under_1h"}, CONFIG)
    assert answered.probabilities == pytest.approx(plain.probabilities)
    assert answered.audio_factor == plain.audio_factor and answered.age_factor == plain.age_factor


def test_audio_at_chance_only_when_no_reason_moves_by_the_chance_ratio() -> None:
    assert combine_evidence({"hungry": 0.74, "tired": 0.26}, None, {}, CONFIG).audio_at_chance
    assert not combine_evidence({"hungry": 0.5, "tired": 0.5}, None, {}, CONFIG).audio_at_chance


def test_unknown_question_or_answer_raises() -> None:
    with pytest.raises(ValueError, match="unknown context question"):
        combine_evidence(None, None, {"mood": "bad"}, CONFIG)
    with pytest.raises(ValueError, match="unknown answer"):
        combine_evidence(None, None, {"awake": "forever"}, CONFIG)


def test_shipped_config_sums_to_one_for_every_combination_of_answers() -> None:
    config = load_evidence_config()
    assert set(config.rules) == set(QUESTIONS)
    assert all(
        rule.kind == "rule of thumb" and rule.source.startswith("docs/reasons.md#")
        for rule in config.rules.values()
    )
    for rule in config.rules.values():  # an age band's own ratios name known bands and answers only
        assert set(rule.by_age) <= set(config.age_bands)
        assert all(set(answers) <= set(rule.answers) for answers in rule.by_age.values())
    audio = dict(zip(config.age_prior.labels, [0.5, 0.2, 0.15, 0.1, 0.05], strict=True))
    for band in [None, *config.age_bands]:
        for question, rule in config.rules.items():
            for answer in rule.answers:
                evidence = combine_evidence(audio, band, {question: answer}, config)
                assert math.isclose(sum(evidence.probabilities.values()), 1.0)
                assert all(p > 0 for p in evidence.probabilities.values())


def test_shipped_age_prior_is_the_corpus_count() -> None:
    config = load_evidence_config()
    assert list(config.age_prior.labels) == REASON_LABELS
    clips = load_manifest_clips(ClassifierSettings().data_dir, decode=False)
    assert age_counts(clips, REASON_LABELS, config) == config.age_prior.counts
