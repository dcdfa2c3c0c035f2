"""``python -m services.kws simulate``: the self-trigger report, on the held-out RHVoice test voices.

Each voice contributes all its keyword takes and its first ``responses_per_kind`` confusable and
keyword-free responses (a bound that keeps the run to minutes: every response is scanned twice per volume).

Each response is played through the echo path b(v, x) at every volume. Without muting, a
self-trigger is the microphone-side detector firing on the echo. With muting, the microphone signal
is zeroed inside the playback-side ``skip_kws`` intervals of the clean track (what the app does) and
the microphone-side detector runs again. Muted time is the share of playback time inside intervals.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from services.kws import augment
from services.kws.calibration import REPORT_DIR, RESPONSE_KINDS, PlaybackTrack, fires, response_tracks
from services.kws.dataset import load_voice_audio
from services.kws.echo import VOLUMES, EchoPath
from services.kws.model import MODEL_PATH, SpotterModel
from services.kws.spotter import KeywordSpotter, KwsScan

log = logging.getLogger(__name__)


def run_simulation(
    model_path: Path | None, output_dir: Path, seed: int = 11, responses_per_kind: int = 12
) -> list[dict[str, float]]:
    from services.kws.speech_plan import plan_split
    from services.kws.synthesis import SpeechCache

    spotter = KeywordSpotter(SpotterModel(model_path or MODEL_PATH))
    cache = SpeechCache(output_dir.parent / "synth")
    plans = [plan for plan in plan_split("test") if plan.voice.engine == "rhvoice"]
    cache.synthesise(request for plan in plans for request in plan.requests())
    rng = np.random.default_rng(seed)
    voices = load_voice_audio(plans, cache)
    for voice in voices:  # a bounded set: every keyword take, the first confusables and sayings
        voice.confusables = voice.confusables[:responses_per_kind]
        voice.sayings = voice.sayings[:responses_per_kind]
    tracks = response_tracks(voices, rng)
    echo = EchoPath()
    rirs = [augment.room_impulse_response(rng) for _ in tracks]
    scans = [spotter.scan_samples(track.samples) for track in tracks]
    muted_shares = muted_time_shares(tracks, scans)
    rows = []
    mic_threshold = spotter.metadata.mic_threshold
    for volume in VOLUMES:
        unmuted = 0
        muted = dict.fromkeys(RESPONSE_KINDS, 0)
        for track, rir, scan in zip(tracks, rirs, scans, strict=True):
            heard = echo.apply(track.samples, volume, rir, rng)
            unmuted += fires(spotter, spotter.frame_scores(heard), mic_threshold)
            for interval in scan.intervals:
                heard[interval.start_ms * 16 : interval.end_ms * 16] = 0.0
            muted[track.kind] += fires(spotter, spotter.frame_scores(heard), mic_threshold)
        row = {"volume": volume, "unmuted": unmuted / len(tracks), "muted": sum(muted.values()) / len(tracks)}
        rows.append(row | {f"muted_{kind}": count for kind, count in muted.items()})
        log.info(
            "volume %d: self-triggers %.2f%% without muting, %.3f%% with",
            volume,
            100 * rows[-1]["unmuted"],
            100 * rows[-1]["muted"],
        )
    write_report(rows, tracks, muted_shares, spotter.threshold, mic_threshold)
    return rows


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
    rows, tracks, muted_shares: dict[str, float], playback_threshold: float, mic_threshold: float
) -> None:
    kinds = [track.kind for track in tracks]
    lines = [
        "# Self-trigger simulation",
        "",
        f"{len(tracks)} responses by the nine held-out RHVoice test voices "
        f"({kinds.count('keyword')} with the keyword, "
        f"{kinds.count('confusable')} with a confusable, {kinds.count('speech')} keyword-free), each played "
        f"through the echo path at volumes 1-10; playback threshold {playback_threshold:.2f}, "
        f"microphone threshold {mic_threshold:.2f}.",
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
    REPORT_DIR.mkdir(exist_ok=True)
    (REPORT_DIR / "self_trigger.md").write_text("\n".join(lines), encoding="utf-8")
