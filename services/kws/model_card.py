"""``python -m services.kws evaluate``: score the held-out test voices and write MODEL_CARD.md.

Test voices were never heard in training: the nine evaluation-only RHVoice voices and a hash-chosen
fifth of the espeak-ng variants. Each voice is evaluated clean and through the training channel
augmentations (room, band, codec, noise, gain) with a separate seed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from services.common.tunes import random_tune
from services.kws.augment import trim_silence
from services.kws.dataset import Augmenter, OverMusic, load_voice_audio
from services.kws.enrollment_eval import split_card
from services.kws.evaluation import (
    Channel,
    ScoredTracks,
    Summary,
    Track,
    evaluate_voice,
    score_track,
    score_voice,
    summarise,
    voice_tracks,
)
from services.kws.features import N_MELS, SAMPLE_RATE
from services.kws.model import MODEL_PATH, SpotterModel
from services.kws.spotter import KeywordSpotter
from services.kws.thresholds import FALSE_BUDGET_PER_HOUR, FALSE_WEIGHT, MISS_WEIGHT

log = logging.getLogger(__name__)
CARD_PATH = Path(__file__).resolve().parent / "MODEL_CARD.md"
RESULTS_SEED = 31
MUSIC_SNRS_DB = (20.0, 10.0, 5.0)
EVALUATION_TUNES = 60  # beside the recorded music; drawn from another seed than any training tune


def score_condition(
    spotter: KeywordSpotter, voices, rng: np.random.Generator, channel: Channel | None
) -> list[ScoredTracks]:
    return [score_voice(spotter, voice_tracks(voice, rng, channel)) for voice in voices]


def evaluation_music(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Music no training window held, as one track, and how many hours of it are recordings: Widelands'
    GPL orchestral game music (``make train-apt``; the cry gate's packaged music) and random tunes."""
    from services.classifier.packaged_sounds import MUSIC, decoded, packaged_files

    recorded = [decoded(path, SAMPLE_RATE) for path in packaged_files(MUSIC)]
    tunes = [trim_silence(random_tune(rng, SAMPLE_RATE)) for _ in range(EVALUATION_TUNES)]
    recorded_hours = sum(len(part) for part in recorded) / SAMPLE_RATE / 3600
    return np.concatenate(recorded + tunes).astype(np.float32), recorded_hours


def music_section(spotter: KeywordSpotter, voices) -> str:
    """Speech over music at each of ``MUSIC_SNRS_DB``, and the music alone, as the card's section."""
    music, recorded_hours = evaluation_music(np.random.default_rng(RESULTS_SEED + 2))
    threshold = spotter.threshold
    lines = [
        "| music under the speech | voices with every occurrence caught | recall [95% CI] "
        "| false intervals per hour of speech [95% CI] | confusable tracks with an interval "
        "| abs edge error p50 / p95 (ms) | edges within 50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for snr_db in MUSIC_SNRS_DB:
        rng = np.random.default_rng(RESULTS_SEED + 3)
        scored = score_condition(spotter, voices, rng, OverMusic(music, snr_db))
        summary = summarise([evaluate_voice(spotter, item, threshold) for item in scored], threshold)
        lines.append(summary_row(f"at {snr_db:g} dB SNR, all voices", summary))
    alone = score_track(spotter, Track(music))
    hours = alone.duration_ms / 3.6e6
    for name, at in (("playback", threshold), ("microphone", spotter.metadata.mic_threshold)):
        scan = spotter.scan_scores(alone.scores, alone.duration_ms, at, alone.levels_db)
        count = len(scan.intervals)
        lines.append(
            f"\nMusic alone, {hours:.2f} h ({recorded_hours:.2f} h of it recorded), at the {name} threshold "
            f"{at:.2f}: {count} interval{'' if count == 1 else 's'} ({count / hours:.2f} per hour), "
            f"{scan.muted_ms / alone.duration_ms:.2%} muted."
        )
    return "\n".join(lines)


def summary_row(name: str, summary: Summary) -> str:
    s = summary
    recall = f"{s.recall:.1%} [{s.recall_ci[0]:.1%}, {s.recall_ci[1]:.1%}]"
    false = f"{s.false_per_hour:.2f} [{s.false_per_hour_ci[0]:.2f}, {s.false_per_hour_ci[1]:.2f}]"
    false += f" ({s.speech_false} in {s.speech_hours:.2f} h)"
    edges = f"{s.edge_abs_p50_ms:.0f} / {s.edge_abs_p95_ms:.0f}"
    return (
        f"| {name} | {s.voices_all_caught}/{s.voices} | {recall} | {false} | {s.confusable_false_rate:.1%} "
        f"| {edges} | {s.edges_within_50ms:.1%} |"
    )


def run_evaluation(model_path: Path | None, cache_dir: Path, workers: int = 1) -> dict[str, object]:
    from services.kws.speech_plan import plan_split
    from services.kws.synthesis import SpeechCache

    spotter = KeywordSpotter(SpotterModel(model_path or MODEL_PATH))
    cache = SpeechCache(cache_dir / "synth", workers=workers)
    plans = plan_split("test")
    cache.synthesise(request for plan in plans for request in plan.requests())
    voices = load_voice_audio(plans, cache)
    augmented_rng = np.random.default_rng(RESULTS_SEED + 1)
    augmenter = Augmenter.create(augmented_rng, 50)
    conditions = {
        "clean": score_condition(spotter, voices, np.random.default_rng(RESULTS_SEED), None),
        "augmented": score_condition(spotter, voices, augmented_rng, augmenter),
    }
    threshold = spotter.threshold
    header = [
        "| condition / voices | voices with every occurrence caught | recall [95% CI] "
        "| false intervals per hour of speech [95% CI] | confusable tracks with an interval "
        "| abs edge error p50 / p95 (ms) | edges within 50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows, figures = [], {}
    for name, scored in conditions.items():
        for engine in ("rhvoice", "espeak", "all"):
            subset = [item for item in scored if engine == "all" or item.key.startswith(engine)]
            summary = summarise([evaluate_voice(spotter, item, threshold) for item in subset], threshold)
            rows.append(summary_row(f"{name}, {engine}", summary))
            figures[f"{name}/{engine}"] = asdict(summary)
    sweep = [
        "| threshold | recall (clean) | false/h (clean) | recall (augmented) | false/h (augmented) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for candidate in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        cells = []
        for scored in conditions.values():
            s = summarise([evaluate_voice(spotter, item, candidate) for item in scored], candidate, rounds=10)
            cells += [f"{s.recall:.1%}", f"{s.false_per_hour:.2f}"]
        sweep.append(f"| {candidate:.1f} | " + " | ".join(cells) + " |")
    per_voice = ["| voice | caught (clean) | caught (augmented) |", "| --- | --- | --- |"]
    for clean, augmented in zip(conditions["clean"], conditions["augmented"], strict=True):
        c, a = evaluate_voice(spotter, clean, threshold), evaluate_voice(spotter, augmented, threshold)
        per_voice.append(f"| {clean.key} | {c.caught}/{c.occurrences} | {a.caught}/{a.occurrences} |")
    scan_seconds = sum(item.scan_seconds for item in conditions["clean"])
    audio_seconds = sum(item.audio_seconds for item in conditions["clean"])
    figures["real_time_factor"] = audio_seconds / scan_seconds
    targets = target_verdicts(figures)
    music = music_section(spotter, voices)
    write_card(spotter, header + rows, sweep, per_voice, music, audio_seconds / scan_seconds, targets)
    log.info("model card written: %s", CARD_PATH)
    return figures


def architecture(model: SpotterModel) -> str:
    """The network in words: one temporal CNN, or an ensemble of them (``SpotterEnsemble``), told apart by
    the width of the embeddings the head reads."""
    import onnx

    from services.kws.network import CHANNELS  # imports torch: training only, like this card

    channels = model.frame_embeddings(np.zeros((10, N_MELS), np.float32)).shape[1]
    members = channels // CHANNELS
    weights = sum(int(np.prod(tensor.dims)) for tensor in onnx.load(str(model.path)).graph.initializer)
    network = f"receptive field of ±0.77 s, {CHANNELS} channels, ~{weights / members / 1000:.0f} k weights"
    if members == 1:
        return f"a temporal CNN with a {network}"
    ensemble = f"the mean logit of {members} temporal CNNs trained alike from consecutive seeds"
    return f"{ensemble}, each with a\n{network}"


def target_verdicts(figures: dict[str, object]) -> str:
    """Each target against the clean held-out figures at the playback threshold, met or not."""
    rhvoice, every = figures["clean/rhvoice"], figures["clean/all"]

    def verdict(met: bool) -> str:
        return "met" if met else "**not met**"

    recall_met = min(rhvoice["recall"], every["recall"]) >= 0.99
    false_met = max(rhvoice["false_per_hour"], every["false_per_hour"]) <= 1.0
    return "\n".join(
        [
            f"- Recall ≥ 99%: {rhvoice['recall']:.1%} on the RHVoice voices, {every['recall']:.1%} on all: "
            f"{verdict(recall_met)}.",
            f"- ≤ 1 false interval per hour: {rhvoice['false_per_hour']:.2f} on the RHVoice voices, "
            f"{every['false_per_hour']:.2f} on all: {verdict(false_met)}.",
            f"- Edges within 50 ms: {every['edges_within_50ms']:.1%} of the edges of caught or partly caught "
            f"occurrences: {verdict(every['edges_within_50ms'] >= 1.0)} for every edge.",
            f"- Offline scan ≥ 500× real time: {figures['real_time_factor']:.0f}×: "
            f"{verdict(figures['real_time_factor'] >= 500)}.",
        ]
    )


def write_card(
    spotter: KeywordSpotter,
    table: list[str],
    sweep: list[str],
    per_voice: list[str],
    music: str,
    rtf: float,
    targets: str,
) -> None:
    metadata = spotter.metadata
    text = CARD_TEMPLATE.format(
        version=metadata.version,
        architecture=architecture(spotter.model),
        threshold=spotter.threshold,
        mic_threshold=metadata.mic_threshold,
        hold_ratio=metadata.hold_ratio,
        onset_pause=metadata.onset_pause_ms,
        onset_quiet=metadata.onset_quiet_db,
        onset_reach=metadata.onset_reach_ms,
        pad_before=spotter.padding.before_ms,
        pad_after=spotter.padding.after_ms,
        table="\n".join(table),
        sweep="\n".join(sweep),
        per_voice="\n".join(per_voice),
        music=music,
        tunes=EVALUATION_TUNES,
        rtf=rtf,
        targets=targets,
        miss_weight=MISS_WEIGHT,
        false_weight=FALSE_WEIGHT,
        false_budget=FALSE_BUDGET_PER_HOUR,
    )
    enrollment_section = split_card(CARD_PATH)[1]  # written by enroll-evaluate, kept as it is
    CARD_PATH.write_text(text + ("\n" + enrollment_section if enrollment_section else ""), encoding="utf-8")


CARD_TEMPLATE = """# Model card: «Маруся» keyword spotter (`services/kws/models/marusya.onnx`)

Version `{version}`. Written by `python -m services.kws evaluate`; every figure below is measured by it.

## What it does
Scores 16 kHz audio every 20 ms for the presence of the wake word «Маруся» (40 log-mel bands, 25 ms
window, 10 ms hop; {architecture}).
Runs of scores above the threshold (3-frame moving average, at least 3 frames) become detections, each
lasting while the score stays above {hold_ratio:g} × the threshold (the hold, chosen by train on the
validation voices: one interval then covers a keyword whose score dips mid-word). The network looks
0.77 s ahead, so on a keyword said over a second it is sure only late in the word: a detection's start
moves back to the end of the last pause before it (at least {onset_pause:g} ms of frames {onset_quiet:g} dB
below the detection's loudest), if one lies within {onset_reach:g} ms. Detections then get padding
({pad_before} ms before, {pad_after} ms after) and become `skip_kws` intervals. Playback threshold
{threshold:.2f}, microphone threshold {mic_threshold:.2f}, hold ratio {hold_ratio:g} (all in ONNX metadata).

## Training data (all synthesised locally; no recording of the keyword exists)
- espeak-ng Russian with ~70% of its `+variant` voices (GPL-3), festival `msu_ru_nsh_clunits` (BSD-like),
  RHVoice `aleksandr`, `anna`, `irina`, `evgeniy-rus` (LGPL-2.1+). RHVoice `elena` and 10% of the espeak
  variants are validation voices (they choose the initial threshold); the remaining voices are the test set.
- Keyword-free text: Debian `fortunes-ru` (GPL-2), split by text as well as by voice.
- Positives are composed: carrier phrase + pause + keyword + pause + carrier phrase, each synthesised
  separately, so the keyword's span is exact. Confusables (Маша, Марина, Муся, Руся, Мария, русский,
  мороз, марш, Марущ and 29 more) are composed the same way.
- Non-speech: coloured noise and the ESC-10 clips of `../shared/data` (CC BY 3.0 only).
- Augmentation: speed/pitch (resampling; espeak keywords brought to 0.40–0.75 s), rooms (pyroomacoustics
  image source for early reflections + exponential noise tail to the RT60), band-pass, 8 kHz µ-law,
  MP3/Opus round trips, noise at 0–30 dB SNR, gain.

## Evaluation on held-out voices
Test voices: RHVoice `arina`, `artemiy`, `mikhail`, `pavel`, `tatiana`, `victoria`, `vitaliy`, `yuriy`,
`aleksandr-hq` (evaluation-only licences, never trained on) and the held-out espeak-ng variants. Per voice:
keyword takes in carrier speech, confusables in carrier speech, and all its keyword-free sayings joined
into one track. An occurrence is caught when one interval covers its whole span. Edge error = interval
edge minus padding, against the span edge. 95% confidence intervals: bootstrap over voices.
"augmented" passes every test track through the training channel effects with a different seed.

{table}

Threshold sweep (same tracks):

{sweep}

Per voice at the shipped threshold:

{per_voice}

### Over music
Playback is often speech over a music bed (podcasts, adverts, radio). The clean test tracks above, each
over a random stretch of music at a signal-to-music ratio (by RMS over the track, pauses included), and
the music alone. The music is Widelands' recorded orchestral game music (GPL-2+, Debian `widelands-data`,
installed by `make train-apt`; its three CC BY-SA tracks left out), a kind of music no training window
held, and {tunes} random General MIDI tunes (`services/common/tunes.py`, Fluid R3 GM soundfont) from
another seed than the tunes of `train --music-beds`.

{music}

Real-time factor of the offline scan (features + network, one thread, over the clean speech tracks):
**{rtf:.0f}× real time**. `python -m benchmarks.kws` measures it on its own.

## Against the targets
At the calibrated playback threshold, clean held-out tracks (the first table; which voices fall short is
in the per-voice table):

{targets}

The playback threshold comes from `calibrate` (echo agreement, a miss being the microphone side firing
through the muting, misses weighted {miss_weight:g}:{false_weight:g}, no lower than the validation
voices' false-interval budget of {false_budget:g} per hour allows), not from this table,
so it sits below the microphone threshold and trades false intervals for fewer self-triggers; see
`reports/calibration.md` and `reports/self_trigger.md`. The threshold sweep shows the trade-off.

## Limits
- All speech is synthetic; the composed positives have the keyword in isolation prosody with pauses
  around it, which is easier than a keyword run into its neighbours.
- Confusables were chosen by hand; other similar words may fire.
- No training window holds music (a recipe with music beds was measured and not shipped:
  `reports/ablation.md`); the evaluation over music above is instrumental only (no song with sung words).
- Most self-triggers left after muting come from confusable words: through the echo path the
  microphone-side detector fires on them, while on the clean track the playback side does not
  (`reports/self_trigger.md` counts them by kind of response). Its last table mutes the same echoes at
  other playback thresholds: even at the lowest, some stay (a confusable whose clean track scores
  nothing), so no playback threshold alone reaches the 0.05% target, while muted time rises.
- Muted time cannot fall below the keywords' own spans. In the simulation's mix (a third of the
  responses say the keyword, at RHVoice's natural pace) those spans alone are more of the playback
  than the 3% target (`reports/self_trigger.md` gives both figures), so there that target is out of
  reach of any muting that covers every keyword; with fewer responses that say it, muted time falls
  in proportion.
- A keyword run into the word before it, or spoken over music or noise, has no pause before it: its
  start stays where the scores put it, late when the keyword is said slowly.
- What was tried to make held-out voices generalise (wider prosody, vocal tract length warping,
  SpecAugment, run-on keywords, seed ensembles, the hold level, word onsets) and what it measured:
  `reports/ablation.md`.
"""
