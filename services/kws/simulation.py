"""``python -m services.kws simulate``: the self-trigger report, on the held-out RHVoice test voices.

Each voice contributes all its keyword takes and its first ``responses_per_kind`` confusable and
keyword-free responses (a bound that keeps the run to minutes: every response's echo is scanned once per
volume, and once more per distinct set of intervals the playback thresholds give it).

Each response is played through the echo path b(v, x) at every volume. Without muting, a
self-trigger is the microphone-side detector firing on the echo. With muting, the microphone signal
is zeroed inside the playback-side ``skip_kws`` intervals of the clean track (what the app does) and
the microphone-side detector runs again. Muted time is the share of playback time inside intervals. The
report goes on to the responses that still trigger it with muting and the clean track's highest score,
and ends with the same echoes muted at other playback thresholds: the trade-off the calibration sits on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from services.common.bootstrap import group_bootstrap
from services.kws import augment
from services.kws.calibration import REPORT_DIR, RESPONSE_KINDS, PlaybackTrack, echo_outcomes, response_tracks
from services.kws.dataset import load_voice_audio
from services.kws.echo import VOLUMES
from services.kws.model import MODEL_PATH, SpotterModel
from services.kws.speech_plan import plan_split
from services.kws.spotter import KeywordSpotter, KwsScan
from services.kws.synthesis import SpeechCache

log = logging.getLogger(__name__)
# Playback thresholds the report sets beside the calibrated one (a fixed grid, never chosen from its figures).
TRADE_OFF_THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.5, 0.7)
KIND_NAMES = {"keyword": "with the keyword", "confusable": "with a confusable", "speech": "keyword-free"}


@dataclass(frozen=True)
class ThresholdOutcome:
    """The same echoes muted by the playback side at one threshold."""

    threshold: float
    fired: np.ndarray  # volumes x responses: the microphone side fires with muting
    muted_shares: dict[str, float]  # muted_time_shares of its intervals


def run_simulation(
    model_path: Path | None, output_dir: Path, seed: int = 11, responses_per_kind: int = 12
) -> list[dict[str, float]]:
    spotter = KeywordSpotter(SpotterModel(model_path or MODEL_PATH))
    cache = SpeechCache(output_dir.parent / "synth")
    plans = [  # a bounded set: every keyword take, the first confusables and sayings
        replace(
            plan,
            confusables=plan.confusables[:responses_per_kind],
            sayings=plan.sayings[:responses_per_kind],
        )
        for plan in plan_split("test")
        if plan.voice.engine == "rhvoice"
    ]
    cache.synthesise(request for plan in plans for request in plan.requests())
    rng = np.random.default_rng(seed)
    tracks = response_tracks(load_voice_audio(plans, cache), plans, rng)
    rirs = [augment.room_impulse_response(rng) for _ in tracks]
    thresholds = sorted({spotter.threshold, *TRADE_OFF_THRESHOLDS})
    clean = [spotter.track_scores(track.samples) for track in tracks]
    scans = {
        threshold: [spotter.scan_track(scores, threshold) for scores in clean] for threshold in thresholds
    }
    unmuted, muted = echo_outcomes(spotter, tracks, rirs, scans, rng)
    rows = self_trigger_rows(tracks, unmuted, muted[spotter.threshold])
    residual = muted[spotter.threshold].sum(axis=0)
    leftovers = [
        (tracks[index], int(residual[index]), float(clean[index].scores.max()))
        for index in sorted(np.flatnonzero(residual), key=lambda index: -residual[index])
    ]
    trade_off = [
        ThresholdOutcome(threshold, muted[threshold], muted_time_shares(tracks, scans[threshold]))
        for threshold in thresholds
    ]
    intervals = {
        "unmuted": self_trigger_interval(tracks, unmuted, seed),
        "muted": self_trigger_interval(tracks, muted[spotter.threshold], seed),
    }
    write_report(rows, intervals, tracks, scans[spotter.threshold], leftovers, trade_off, spotter)
    return rows


def self_trigger_rows(
    tracks: list[PlaybackTrack], unmuted: np.ndarray, muted: np.ndarray
) -> list[dict[str, float]]:
    """Per volume, the share of responses whose echo fires the microphone side without and with muting,
    and the count with muting per kind of response."""
    kinds = np.array([track.kind for track in tracks])
    return [
        {"volume": volume, "unmuted": float(unmuted[row].mean()), "muted": float(muted[row].mean())}
        | {f"muted_{kind}": int(muted[row, kinds == kind].sum()) for kind in RESPONSE_KINDS}
        for row, volume in enumerate(VOLUMES)
    ]


def self_trigger_interval(tracks: list[PlaybackTrack], fired: np.ndarray, seed: int) -> tuple[float, float]:
    """95% interval of the share of echoes that fire (volumes x responses), resampling whole voices: one
    voice's responses fail together, so the voices, not the responses, are the independent witnesses."""
    _, low, high = group_bootstrap(
        lambda responses: float(fired[:, responses].mean()), [track.voice for track in tracks], seed
    )
    return low, high


def muted_time_shares(tracks: list[PlaybackTrack], scans: list[KwsScan]) -> dict[str, float]:
    """Share of playback time inside ``skip_kws`` intervals, over all responses ("all") and per kind."""
    muted_ms = np.array([scan.muted_ms for scan in scans], float)
    played_ms = np.array([track.duration_ms for track in tracks])
    kinds = np.array([track.kind for track in tracks])
    shares = {"all": float(muted_ms.sum() / played_ms.sum())}
    return shares | {
        kind: float(muted_ms[kinds == kind].sum() / played_ms[kinds == kind].sum()) for kind in RESPONSE_KINDS
    }


@dataclass(frozen=True)
class KeywordMuting:
    """What covering the keywords costs in muted time, and the least it can cost in this mix of responses."""

    span_share: float  # the keyword spans' share of all playback: no muting that covers them mutes less
    mean_span_ms: float
    mean_muted_ms: float  # muted per response with the keyword: span, padding and edge error


def keyword_muting(tracks: list[PlaybackTrack], scans: list[KwsScan]) -> KeywordMuting:
    spans = [(track, scan) for track, scan in zip(tracks, scans, strict=True) if track.keyword_span_ms]
    span_ms = np.array([track.keyword_span_ms[1] - track.keyword_span_ms[0] for track, _ in spans], float)
    return KeywordMuting(
        span_share=float(span_ms.sum() / sum(track.duration_ms for track in tracks)),
        mean_span_ms=float(span_ms.mean()),
        mean_muted_ms=float(np.mean([scan.muted_ms for _, scan in spans])),
    )


def keyword_muting_line(muting: KeywordMuting, keyword_share: float) -> str:
    return (
        f"The keywords' own spans are {muting.span_share:.2%} of this playback, the least muted time that "
        f"covers every keyword in this mix of responses: a response with the keyword is muted "
        f"{muting.mean_muted_ms:.0f} ms on average, for a keyword of {muting.mean_span_ms:.0f} ms "
        "(the rest is padding and edge error). Muted time therefore follows the share of responses that "
        f"say the keyword, here {keyword_share:.0%}."
    )


def write_report(
    rows,
    intervals: dict[str, tuple[float, float]],
    tracks: list[PlaybackTrack],
    calibrated_scans: list[KwsScan],
    leftovers: list[tuple[PlaybackTrack, int, float]],
    trade_off: list[ThresholdOutcome],
    spotter: KeywordSpotter,
) -> None:
    muted_shares = next(o.muted_shares for o in trade_off if o.threshold == spotter.threshold)
    kinds = [track.kind for track in tracks]
    lines = [
        "# Self-trigger simulation",
        "",
        f"{len(tracks)} responses by the nine held-out RHVoice test voices "
        f"({kinds.count('keyword')} with the keyword, "
        f"{kinds.count('confusable')} with a confusable, {kinds.count('speech')} keyword-free), each played "
        f"through the echo path at volumes 1-10; playback threshold {spotter.threshold:.2f}, "
        f"microphone threshold {spotter.metadata.mic_threshold:.2f}.",
        f"Muted time: **{muted_shares['all']:.2%}** of playback (of responses with the keyword "
        f"{muted_shares['keyword']:.2%}, with a confusable {muted_shares['confusable']:.2%}, "
        f"keyword-free {muted_shares['speech']:.2%}).",
        keyword_muting_line(keyword_muting(tracks, calibrated_scans), kinds.count("keyword") / len(kinds)),
        "",
        "Which responses still trigger it with muting: the last three columns count them by kind.",
        "",
        "| volume | self-triggers without muting | with skip_kws muting "
        "| with muting: keyword | confusable | keyword-free |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    by_kind = [f"muted_{kind}" for kind in RESPONSE_KINDS]
    lines += [
        f"| {r['volume']} | {r['unmuted']:.2%} | {r['muted']:.3%} | "
        + " | ".join(str(r[kind]) for kind in by_kind)
        + " |"
        for r in rows
    ]
    mean_unmuted = np.mean([r["unmuted"] for r in rows])
    mean_muted = np.mean([r["muted"] for r in rows])
    totals = " | ".join(str(sum(r[k] for r in rows)) + " in all" for k in by_kind)
    (unmuted_low, unmuted_high), (muted_low, muted_high) = intervals["unmuted"], intervals["muted"]
    lines += [
        f"| mean [95% CI] | {mean_unmuted:.2%} [{unmuted_low:.2%}, {unmuted_high:.2%}] | "
        f"{mean_muted:.3%} [{muted_low:.3%}, {muted_high:.3%}] | {totals} |",
        "",
        f"95% intervals: bootstrap over the {len(set(track.voice for track in tracks))} voices.",
        "",
        kind_rates_line(rows, kinds),
        "",
    ]
    lines += leftover_lines(leftovers, spotter.threshold)
    lines += trade_off_lines(trade_off, spotter.threshold)
    REPORT_DIR.mkdir(exist_ok=True)
    (REPORT_DIR / "self_trigger.md").write_text("\n".join(lines), encoding="utf-8")


def kind_rates_line(rows: list[dict[str, float]], kinds: list[str]) -> str:
    """The self-trigger rate with muting of each kind of response: the mean above is these rates weighted
    by this simulation's mix (a third each), and any other mix weighs them by its own shares."""
    rates = ", ".join(
        f"{KIND_NAMES[kind]} {sum(r[f'muted_{kind}'] for r in rows) / (kinds.count(kind) * len(rows)):.3%}"
        for kind in RESPONSE_KINDS
    )
    return (
        f"With muting, by kind of response (of its plays, responses × volumes): {rates}. The mean above "
        "weighs these by this mix, a third each; playback with fewer confusables weighs them by its own."
    )


def leftover_lines(leftovers: list[tuple[PlaybackTrack, int, float]], playback_threshold: float) -> list[str]:
    """The responses behind the self-triggers left with muting, with the clean track's highest frame
    score: one far below the playback threshold is out of any threshold's reach."""
    if not leftovers:
        return ["No response triggers the microphone side with muting at any volume.", ""]
    lines = [
        f"The {len(leftovers)} responses behind them (highest frame score of the clean track, which the "
        f"playback side sees, against its threshold {playback_threshold:.2f}; on a response with the "
        "keyword, what fires lies outside its intervals):",
        "",
        "| voice | response | text | volumes of 10 | highest clean-track score |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {track.voice} | {KIND_NAMES[track.kind]} | «{_shortened(track.text)}» | {volumes} | {score:.2f} |"
        for track, volumes, score in leftovers
    ]
    return lines + [""]


def trade_off_lines(trade_off: list[ThresholdOutcome], calibrated: float) -> list[str]:
    """Self-triggers with muting against muted time at other playback thresholds, on the same echoes."""
    lines = [
        "## Other playback thresholds",
        "",
        "The same echoes muted by the playback side at other thresholds. This is a report, not a choice: "
        "the threshold comes from `calibrate` on the validation voices, and these are the test voices.",
        "",
        "| playback threshold | self-triggers with muting | responses behind them | muted time "
        "| of responses with the keyword | with a confusable | keyword-free |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for outcome in trade_off:
        threshold, shares = outcome.threshold, outcome.muted_shares
        name = f"**{threshold:.2f}** (calibrated)" if threshold == calibrated else f"{threshold:.2f}"
        lines.append(
            f"| {name} | {outcome.fired.mean():.3%} | {int(outcome.fired.any(axis=0).sum())} "
            f"| {shares['all']:.2%} | {shares['keyword']:.2%} | {shares['confusable']:.2%} "
            f"| {shares['speech']:.2%} |"
        )
    return lines + [""]


def _shortened(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split()).replace("|", "/")
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
