"""``python -m services.kws simulate``: the self-trigger report, on the held-out RHVoice test voices.

Each voice contributes all its keyword takes and its first ``responses_per_kind`` confusable and
keyword-free responses (a bound that keeps the run to minutes: every response is scanned twice per volume).

Each response is played through the echo path b(v, x) at every volume. Without muting, a
self-trigger is the microphone-side detector firing on the echo. With muting, the microphone signal
is zeroed inside the playback-side ``skip_kws`` intervals of the clean track (what the app does) and
the microphone-side detector runs again. Muted time is the share of playback time inside intervals. The
report ends with the responses that still trigger it with muting and the clean track's highest score.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from services.kws import augment
from services.kws.calibration import REPORT_DIR, RESPONSE_KINDS, PlaybackTrack, fires, response_tracks
from services.kws.dataset import load_voice_audio
from services.kws.echo import VOLUMES, EchoPath
from services.kws.model import MODEL_PATH, SpotterModel
from services.kws.speech_plan import plan_split
from services.kws.spotter import KeywordSpotter, KwsScan
from services.kws.synthesis import SpeechCache

log = logging.getLogger(__name__)


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
    scans = [spotter.scan_samples(track.samples) for track in tracks]
    rows, residual = self_trigger_rows(spotter, tracks, rirs, scans, rng)
    leftovers = [
        (tracks[index], volumes, float(spotter.frame_scores(tracks[index].samples).max()))
        for index, volumes in residual.most_common()
    ]
    write_report(rows, tracks, muted_time_shares(tracks, scans), leftovers, spotter)
    return rows


def self_trigger_rows(
    spotter: KeywordSpotter,
    tracks: list[PlaybackTrack],
    rirs: list[np.ndarray],
    scans: list[KwsScan],
    rng: np.random.Generator,
) -> tuple[list[dict[str, float]], Counter[int]]:
    """Per volume, the share of responses whose echo fires the microphone side without and with muting
    (and the count with muting per kind of response); and per response, at how many volumes it still
    fires with muting."""
    echo = EchoPath()
    mic_threshold = spotter.metadata.mic_threshold
    residual: Counter[int] = Counter()
    rows = []
    for volume in VOLUMES:
        unmuted = 0
        muted = dict.fromkeys(RESPONSE_KINDS, 0)
        for index, (track, rir, scan) in enumerate(zip(tracks, rirs, scans, strict=True)):
            heard = echo.apply(track.samples, volume, rir, rng)
            unmuted += fires(spotter, spotter.frame_scores(heard), mic_threshold)
            for interval in scan.intervals:
                heard[interval.start_ms * 16 : interval.end_ms * 16] = 0.0
            if fires(spotter, spotter.frame_scores(heard), mic_threshold):
                muted[track.kind] += 1
                residual[index] += 1
        row = {"volume": volume, "unmuted": unmuted / len(tracks), "muted": sum(muted.values()) / len(tracks)}
        rows.append(row | {f"muted_{kind}": count for kind, count in muted.items()})
        log.info(
            "volume %d: self-triggers %.2f%% without muting, %.3f%% with",
            volume,
            100 * rows[-1]["unmuted"],
            100 * rows[-1]["muted"],
        )
    return rows, residual


def muted_time_shares(tracks: list[PlaybackTrack], scans: list[KwsScan]) -> dict[str, float]:
    """Share of playback time inside ``skip_kws`` intervals, over all responses ("all") and per kind."""
    muted_ms = np.array([scan.muted_ms for scan in scans], float)
    played_ms = np.array([len(track.samples) / 16 for track in tracks])
    kinds = np.array([track.kind for track in tracks])
    shares = {"all": float(muted_ms.sum() / played_ms.sum())}
    return shares | {
        kind: float(muted_ms[kinds == kind].sum() / played_ms[kinds == kind].sum()) for kind in RESPONSE_KINDS
    }


def write_report(
    rows,
    tracks: list[PlaybackTrack],
    muted_shares: dict[str, float],
    leftovers: list[tuple[PlaybackTrack, int, float]],
    spotter: KeywordSpotter,
) -> None:
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
    lines += [f"| mean | {mean_unmuted:.2%} | {mean_muted:.3%} | {totals} |", ""]
    lines += leftover_lines(leftovers, spotter.threshold)
    REPORT_DIR.mkdir(exist_ok=True)
    (REPORT_DIR / "self_trigger.md").write_text("\n".join(lines), encoding="utf-8")


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
    names = {"keyword": "with the keyword", "confusable": "confusable", "speech": "keyword-free"}
    lines += [
        f"| {track.voice} | {names[track.kind]} | «{_shortened(track.text)}» | {volumes} | {score:.2f} |"
        for track, volumes, score in leftovers
    ]
    return lines + [""]


def _shortened(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split()).replace("|", "/")
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
