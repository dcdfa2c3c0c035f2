"""The corpus evaluation of audio, age prior and their combination: fold-fitted priors, the codec match, the
card section rendered from small synthetic arrays."""

from pathlib import Path

import numpy as np
import pytest

from services.classifier import evidence_eval
from services.classifier.augment import codec_match
from services.classifier.dataset import Clip
from services.classifier.features import PHONE_SAMPLE_RATE
from services.common.evidence import load_evidence_config

LABELS = ["hungry", "tired", "discomfort", "belly_pain", "burping"]
TAGS = {"hungry": "hu", "tired": "ti", "discomfort": "dc", "belly_pain": "bp", "burping": "bu"}


def cry(group: int, reason: str, age_code: str) -> Clip:
    uuid = f"{group:08x}-0000-4000-8000-000000000000"
    return Clip(
        path=f"donateacry/cleaned/{reason}/{uuid}-1430000000-1.0-f-{age_code}-{TAGS[reason]}.flac",
        source="donateacry-cleaned",
        label=reason,
        is_cry=True,
        group=uuid,
        licence="ODbL-1.0/DbCL-1.0",
        samples=np.zeros(0, np.float32),
    )


def test_the_fold_prior_never_counts_the_held_out_folds_clips() -> None:
    config = load_evidence_config()
    # Fold 0 holds the only burping babies over two years old: no other fold's prior may count them as such.
    clips = [cry(i, "burping", "22") for i in range(6)] + [cry(6 + i, LABELS[i % 3], "04") for i in range(24)]
    folds = np.array([0] * 6 + [1 + i % 4 for i in range(24)])
    priors = evidence_eval.fold_age_priors(clips, folds, LABELS, config)
    assert priors[0].counts["over-2y"]["burping"] == 0
    assert sum(map(sum, (band.values() for band in priors[0].counts.values()))) == 24
    assert all(priors[fold].counts["over-2y"]["burping"] == 6 for fold in (1, 2, 3, 4))
    for fold in range(5):
        held_out = np.flatnonzero(folds == fold)
        assert sum(priors[fold].totals().values()) == len(clips) - len(held_out)
    shares = evidence_eval.age_prior_probabilities(clips, folds, priors, config, by_age=True)
    # Fold 0's prior has no clip over two years old, so its clips get that prior's overall shares.
    overall = priors[0].overall()
    assert np.allclose(shares[0], [overall[label] for label in LABELS])
    assert overall["burping"] == 0


def test_uninformative_audio_gives_back_the_age_prior_and_is_at_chance() -> None:
    config = load_evidence_config()
    clips = [cry(i, LABELS[i % 5], ("04", "26", "72")[i % 3]) for i in range(40)]
    folds = np.arange(40) // 2 % 5  # every fold holds every reason, as the stratified folds do
    priors = evidence_eval.fold_age_priors(clips, folds, LABELS, config)
    no_age = evidence_eval.age_prior_probabilities(clips, folds, priors, config, by_age=False)
    ratios = evidence_eval.chance_ratios(config, 2.34)
    combined, at_chance = evidence_eval.combined_probabilities(no_age, clips, folds, priors, config, ratios)
    by_age = evidence_eval.age_prior_probabilities(clips, folds, priors, config, by_age=True)
    assert np.allclose(combined, by_age)
    assert np.allclose(combined.sum(axis=1), 1)
    assert sorted(at_chance) == ratios and {config.chance_ratio, 2.35, *evidence_eval.CHANCE_RATIOS} == set(
        ratios
    )
    assert all(flags.all() for flags in at_chance.values())
    assert np.allclose(evidence_eval.audio_departure(no_age, no_age), 1)


def test_the_chance_ratio_rule_rounds_up_strictly_above_the_shuffled_quantile() -> None:
    # A shuffled model calibrated to its prior moves nothing (departure 1): the rule must still flag clips.
    assert evidence_eval.chance_ratio_by_rule(1.0) == 1.05
    assert evidence_eval.chance_ratio_by_rule(1.0001) == 1.05
    assert evidence_eval.chance_ratio_by_rule(1.07) == 1.1
    assert evidence_eval.chance_ratio_by_rule(2.34) == 2.35


def test_the_departure_is_what_combine_evidence_compares_with_the_chance_ratio() -> None:
    config = load_evidence_config()
    clips = [cry(i, LABELS[i % 5], "26") for i in range(50)]
    folds = np.arange(50) // 2 % 5
    priors = evidence_eval.fold_age_priors(clips, folds, LABELS, config)
    no_age = evidence_eval.age_prior_probabilities(clips, folds, priors, config, by_age=False)
    audio = np.random.default_rng(7).dirichlet(np.ones(5) * 3, 50)
    ratios = [1.2, 1.5, 2.0, 3.0, 5.0]
    _, at_chance = evidence_eval.combined_probabilities(audio, clips, folds, priors, config, ratios)
    departure = evidence_eval.audio_departure(audio, no_age)
    for ratio in ratios:
        assert np.array_equal(at_chance[ratio], departure < ratio)
    assert 0 < at_chance[3.0].sum() < 50  # the ratios above do split these clips


def pulses(seconds: float, seed: int) -> np.ndarray:
    """A voiced-sounding test signal: pulses at a wandering pitch through a resonance, plus a 1 kHz tone."""
    rng = np.random.default_rng(seed)
    n = int(seconds * PHONE_SAMPLE_RATE)
    excitation = np.zeros(n)
    excitation[np.cumsum(rng.integers(25, 70, n // 25))[: n // 70]] = 1.0
    resonance = np.convolve(excitation, np.exp(-np.arange(60) / 8) * np.cos(np.arange(60) * 0.9))[:n]
    tone = np.sin(2 * np.pi * 1000 * np.arange(n) / PHONE_SAMPLE_RATE)
    return (0.3 * resonance / np.abs(resonance).max() + 0.2 * tone).astype(np.float32)


def test_codec_match_keeps_length_and_rate_and_changes_the_signal() -> None:
    samples = pulses(3.37, seed=4)
    matched = codec_match(samples)
    assert matched.dtype == np.float32 and matched.shape == samples.shape
    assert np.max(np.abs(matched - samples)) > 0.05  # lossy: not the same samples
    spectrum = np.abs(np.fft.rfft(matched))
    frequencies = np.fft.rfftfreq(len(matched), 1 / PHONE_SAMPLE_RATE)
    assert abs(frequencies[spectrum.argmax()] - 1000) < 5  # still 8 kHz: the tone did not move
    lags = range(0, 200)
    best = max(
        np.corrcoef(samples[1000:-1000], matched[1000 + lag : len(matched) - 1000 + lag])[0, 1]
        for lag in lags
    )
    assert best > 0.6  # but still the same sound, a little delayed


def test_the_amr_round_trip_refuses_to_run_without_sox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match="sox is not installed"):
        codec_match(pulses(1.0, seed=5))


def synthetic_inputs(n_clips: int = 60) -> evidence_eval.EvidenceInputs:
    rng = np.random.default_rng(6)
    targets = rng.choice(5, n_clips, p=[0.6, 0.1, 0.1, 0.1, 0.1])
    shares = np.tile(np.bincount(targets, minlength=5) / n_clips, (n_clips, 1))
    perfect = np.full((n_clips, 5), 0.02)
    perfect[np.arange(n_clips), targets] = 0.92
    noisy = rng.dirichlet(np.ones(5), n_clips)
    rows = {
        evidence_eval.AUDIO_TEMPERATURE: rng.dirichlet(np.ones(5), n_clips),
        evidence_eval.AUDIO: noisy,
        evidence_eval.AGE_PRIOR: shares,
        evidence_eval.COMBINED: perfect,
        evidence_eval.NO_AGE: shares,
        evidence_eval.SHUFFLED: rng.dirichlet(np.ones(5), n_clips),
        evidence_eval.CODEC_MATCHED: noisy[::-1].copy(),
    }
    ratios = evidence_eval.chance_ratios(load_evidence_config(), 2.34)
    at_chance = {ratio: np.arange(n_clips) % 4 == 0 for ratio in ratios}
    return evidence_eval.EvidenceInputs(
        labels=tuple(LABELS),
        targets=targets,
        groups=[f"g{i // 2}" for i in range(n_clips)],
        platforms=np.array(["android", "ios"])[np.arange(n_clips) % 2],
        rows=rows,
        at_chance=at_chance,
        platform_auc={"as recorded": (0.9, 0.85, 0.95), "codec-matched": (0.6, 0.5, 0.7)},
        calibration_method="prior_shrink",
        shuffled_departure=np.full(n_clips, 2.34),
        untagged_clips=3,
    )


def test_the_section_renders_from_small_synthetic_arrays(tmp_path: Path) -> None:
    config = load_evidence_config()
    inputs = synthetic_inputs()
    lines = evidence_eval.evidence_section(inputs, config, 0, "reports/reliability.png", rounds=50)
    text = "\n".join(lines)
    perfect_row = next(line for line in lines if line.startswith(f"| {evidence_eval.COMBINED} |"))
    assert perfect_row.count("1.000 [1.000, 1.000]") >= 2  # balanced accuracy, accuracy
    assert perfect_row.startswith(
        f"| {evidence_eval.COMBINED} | 1.000 ["
    )  # macro-F1 (a resample may miss a class)
    assert f"| {evidence_eval.COMBINED} minus {evidence_eval.AUDIO} |" in text
    assert f"| {config.chance_ratio:g} (shipped) | 25.0% (15) |" in text
    assert "| 2.35 (shuffled model's rule) | 25.0% (15) |" in text
    assert "- Clips flagged not at chance at the shipped ratio (45):" in text
    assert "Within android clips (30):" in text and "Within ios clips (30):" in text
    assert "- as recorded: 0.900 [0.850, 0.950]" in text
    assert "3 such clips carry no readable age tag" in text
    assert "![reliability](reports/reliability.png)" in text
    assert "cannot be evaluated on this corpus" in text
    for band in config.age_bands:
        assert sum(line.startswith(f"| {band} |") for line in lines) == 2  # counts and smoothed shares
    plot = tmp_path / "reports" / "reliability.png"
    evidence_eval.write_reliability_plot(inputs, plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size < 100_000
