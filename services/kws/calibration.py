"""``python -m services.kws calibrate``: choose the playback threshold a so that f1(a, x) ≈ f2(b(v, x)).

f1 is the spotter on the clean playback track at threshold a; f2 is the same model at its fixed
microphone threshold on the echo b(v, x). Over validation-voice tracks (keywords, confusables,
keyword-free responses) and volumes 1..10, the loss of a is
    mean over v and tracks of  w_miss · [f2 fires on b(v, x) muted by f1's intervals]
                             + w_false · [f1 fires and f2 does not],
misses weighted more (an unmuted self-trigger is worse than a needlessly muted moment). Agreement is
where, not only whether: the microphone side is run again on the echo with the playback side's
intervals zeroed, as the app mutes it, so an interval over other words of the track does not count as
catching what the microphone hears. Only thresholds at or above a floor take part: the lowest at which
the validation voices' keyword-free speech keeps at most FALSE_BUDGET_PER_HOUR false intervals (the
card's target for the threshold a ships with), since the loss counts tracks and a few hundred of them
cannot weigh a rate per hour. The chosen a is written into the model's metadata, where the detector
reads it; a table and a plot go to the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.kws import augment
from services.kws.dataset import VoiceAudio, compose, keyword_speed, load_voice_audio
from services.kws.detector import detect
from services.kws.echo import VOLUMES, EchoPath
from services.kws.evaluation import ScoredTracks, intervals_at
from services.kws.export import read_metadata, write_metadata
from services.kws.features import SAMPLE_RATE
from services.kws.model import MODEL_PATH, SpotterModel
from services.kws.speech_plan import VoicePlan, plan_split
from services.kws.spotter import KeywordSpotter, KwsScan
from services.kws.synthesis import SpeechCache, SpeechRequest
from services.kws.thresholds import (
    FALSE_BUDGET_PER_HOUR,
    FALSE_WEIGHT,
    MISS_WEIGHT,
    THRESHOLDS,
    budget_floor,
    calibration_loss,
    lowest_loss_threshold,
)
from services.kws.training import TrainingConfig, validation_scores

log = logging.getLogger(__name__)
REPORT_DIR = Path(__file__).resolve().parent / "reports"
RESPONSE_KINDS = ("keyword", "confusable", "speech")  # "speech": keyword-free


@dataclass
class PlaybackTrack:
    samples: np.ndarray
    kind: str  # one of RESPONSE_KINDS
    voice: str  # the voice's key
    text: str  # what the response says: the keyword, the confusable word or the saying
    keyword_span_ms: tuple[int, int] | None = None  # where a "keyword" response says it

    @property
    def duration_ms(self) -> float:
        return 1000 * len(self.samples) / SAMPLE_RATE


def response_tracks(
    voices: list[VoiceAudio], plans: list[VoicePlan], rng: np.random.Generator
) -> list[PlaybackTrack]:
    """Assistant responses: keyword inside carriers, confusables inside carriers, keyword-free sayings.

    ``voices`` are the loaded takes of ``plans``, one voice per plan, role by role in the same order."""
    tracks = []
    silence = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)

    def response(
        audio: np.ndarray,
        kind: str,
        voice: VoiceAudio,
        request: SpeechRequest,
        span: tuple[int, int] | None = None,
    ) -> PlaybackTrack:
        track = np.concatenate([silence, audio, silence])
        if span is None:
            return PlaybackTrack(track, kind, voice.key, request.text)
        start_ms, end_ms = (1000 * (len(silence) + edge) // SAMPLE_RATE for edge in span)
        return PlaybackTrack(track, kind, voice.key, request.text, (start_ms, end_ms))

    for voice, plan in zip(voices, plans, strict=True):
        for keyword, request in zip(voice.keywords, plan.keywords, strict=True):
            audio, span = compose(
                keyword, voice, rng, keyword_speed(keyword, voice, rng) if not voice.natural else 1.0
            )
            tracks.append(response(audio, "keyword", voice, request, span))
        for confusable, request in zip(voice.confusables, plan.confusables, strict=True):
            audio, _ = compose(confusable, voice, rng)
            tracks.append(response(audio, "confusable", voice, request))
        tracks += [
            response(saying, "speech", voice, request)
            for saying, request in zip(voice.sayings, plan.sayings, strict=True)
        ]
    return tracks


def fires(spotter: KeywordSpotter, scores: np.ndarray, threshold: float) -> bool:
    return bool(detect(scores, spotter.detector(threshold), spotter.metadata.timing))


def echo_outcomes(
    spotter: KeywordSpotter,
    tracks: list[PlaybackTrack],
    rirs: list[np.ndarray],
    scans: dict[float, list[KwsScan]],
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """Whether the microphone side fires on each response's echo (volumes x responses): without muting, and
    with the microphone zeroed inside the playback-side intervals at each playback threshold.

    One echo per volume and response serves every threshold; thresholds whose intervals agree share a scan."""
    echo = EchoPath()
    mic_threshold = spotter.metadata.mic_threshold
    unmuted = np.zeros((len(VOLUMES), len(tracks)), bool)
    muted = {threshold: np.zeros_like(unmuted) for threshold in scans}
    for row, volume in enumerate(VOLUMES):
        for index, (track, rir) in enumerate(zip(tracks, rirs, strict=True)):
            heard = echo.apply(track.samples, volume, rir, rng)
            unmuted[row, index] = fires(spotter, spotter.frame_scores(heard), mic_threshold)
            outcomes = {(): unmuted[row, index]}
            for threshold, threshold_scans in scans.items():
                spans = tuple((iv.start_ms, iv.end_ms) for iv in threshold_scans[index].intervals)
                if spans not in outcomes:
                    muted_heard = muted_echo(heard, spans, spotter.metadata.sample_rate)
                    outcomes[spans] = fires(spotter, spotter.frame_scores(muted_heard), mic_threshold)
                muted[threshold][row, index] = outcomes[spans]
        log.info(
            "volume %d: the microphone side fires on %.2f%% of the echoes, %.2f%% to %.2f%% with muting",
            volume,
            100 * unmuted[row].mean(),
            100 * min(outcome[row].mean() for outcome in muted.values()),
            100 * max(outcome[row].mean() for outcome in muted.values()),
        )
    return unmuted, muted


def muted_echo(heard: np.ndarray, spans: tuple[tuple[int, int], ...], sample_rate: int) -> np.ndarray:
    """What the app's microphone passes on with ``skip_kws`` applied: zero inside each span (in ms)."""
    muted = heard.copy()
    for start_ms, end_ms in spans:
        muted[start_ms * sample_rate // 1000 : end_ms * sample_rate // 1000] = 0.0
    return muted


@dataclass(frozen=True)
class FalseIntervalFloor:
    """The lowest playback threshold within the false-interval budget, and what it was measured on."""

    threshold: float
    speech_hours: float
    false_intervals: np.ndarray  # at each of THRESHOLDS


def false_interval_floor(spotter: KeywordSpotter, voices: list[ScoredTracks]) -> FalseIntervalFloor:
    """``budget_floor`` of the false intervals in the voices' keyword-free speech at every threshold."""
    false_intervals = np.array(
        [sum(len(intervals_at(spotter, voice.speech, float(a))) for voice in voices) for a in THRESHOLDS]
    )
    hours = sum(voice.speech.duration_ms for voice in voices) / 3.6e6
    return FalseIntervalFloor(
        budget_floor(false_intervals, hours, FALSE_BUDGET_PER_HOUR), hours, false_intervals
    )


def run_calibration(
    model_path: Path | None,
    output_dir: Path,
    miss_weight: float = MISS_WEIGHT,
    false_weight: float = FALSE_WEIGHT,
    seed: int = 7,
) -> float:
    model_path = model_path or MODEL_PATH
    spotter = KeywordSpotter(SpotterModel(model_path))
    cache = SpeechCache(output_dir.parent / "synth")
    plans = plan_split("validation")
    cache.synthesise(request for plan in plans for request in plan.requests())
    tracks = response_tracks(load_voice_audio(plans, cache), plans, np.random.default_rng(seed))
    clean = [spotter.track_scores(track.samples) for track in tracks]
    scans = {float(a): [spotter.scan_track(scores, float(a)) for scores in clean] for a in THRESHOLDS}
    playback = np.array([[bool(scan.intervals) for scan in scans[float(a)]] for a in THRESHOLDS])
    rng = np.random.default_rng(seed)
    rirs = [augment.room_impulse_response(rng) for _ in tracks]
    mic, muted = echo_outcomes(spotter, tracks, rirs, scans, rng)
    outcome = EchoAgreement(playback, mic, np.array([muted[float(a)] for a in THRESHOLDS]))
    loss = calibration_loss(outcome.missed, outcome.false_alarms, miss_weight, false_weight)
    # The validation tracks through the training channel effects, in the draw train's threshold rule uses.
    floor = false_interval_floor(spotter, validation_scores(spotter, cache, TrainingConfig.seed))
    best = lowest_loss_threshold(loss, floor.threshold)
    metadata = read_metadata(model_path)
    metadata["playback_threshold"] = best
    write_metadata(model_path, metadata)
    write_calibration_report(
        tracks, outcome, loss, best, floor, spotter.metadata.mic_threshold, (miss_weight, false_weight)
    )
    log.info("playback threshold %.2f written to %s", best, model_path)
    return best


@dataclass(frozen=True)
class EchoAgreement:
    """How the playback side at each threshold of ``THRESHOLDS`` agrees with the microphone side on the echo.

    A miss is the microphone side firing on the echo with the playback side's intervals muted: a
    self-trigger the muting lets through, wherever it lies (an interval over other words of the track
    does not stop it). A false alarm is the playback side muting a track whose echo the microphone side
    does not fire on at that volume."""

    playback: np.ndarray  # thresholds x tracks: the playback side has an interval on the clean track
    mic: np.ndarray  # volumes x tracks: the microphone side fires on the echo, unmuted
    missed: np.ndarray  # thresholds x volumes x tracks: ... and still with the playback intervals muted

    @property
    def false_alarms(self) -> np.ndarray:
        return self.playback[:, None] & ~self.mic[None]


def _floor_line(floor: FalseIntervalFloor) -> str:
    counts = ", ".join(
        f"{a:.2f}: {n}"
        for a, n in zip(THRESHOLDS, floor.false_intervals, strict=True)
        if round(a * 100) % 10 == 0
    )
    return (
        f"False-interval floor: **{floor.threshold:.2f}**, the lowest threshold above every one at which the "
        f"validation voices' {floor.speech_hours:.2f} h of keyword-free speech (through the training channel "
        f"effects) hold more than {FALSE_BUDGET_PER_HOUR:g} false interval per hour. False intervals there, "
        f"by threshold: {counts}."
    )


def write_calibration_report(
    tracks: list[PlaybackTrack],
    outcome: EchoAgreement,
    loss: np.ndarray,
    best: float,
    floor: FalseIntervalFloor,
    mic_threshold: float,
    weights: tuple[float, float],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    REPORT_DIR.mkdir(exist_ok=True)
    chosen_row = int(np.flatnonzero(best == THRESHOLDS)[0])
    chosen = outcome.playback[chosen_row]
    missed, false_alarms = outcome.missed[chosen_row], outcome.false_alarms[chosen_row]
    kinds = np.array([track.kind for track in tracks])
    lines = [
        "# Playback-threshold calibration",
        "",
        f"Tracks: {len(tracks)} validation-voice responses ({(kinds == 'keyword').sum()} with the keyword, "
        f"{(kinds == 'confusable').sum()} with a confusable, {(kinds == 'speech').sum()} keyword-free); "
        f"microphone threshold {mic_threshold:.2f}; weights miss {weights[0]:g}, false alarm {weights[1]:g}.",
        "A miss: the microphone side fires on the echo with the playback side's intervals muted. A false "
        "alarm: the playback side mutes a track whose echo the microphone side does not fire on.",
        f"Chosen playback threshold a = **{best:.2f}** (loss {loss[chosen_row]:.4f}; least loss over the "
        f"whole grid {loss.min():.4f} at {lowest_loss_threshold(loss):.2f}).",
        _floor_line(floor),
        "",
        "| volume | mic fires | playback fires (a) | miss: mic fires with muting "
        "| false: playback fires, mic not "
        "| mic fires on keyword tracks |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row, volume in enumerate(VOLUMES):
        m = outcome.mic[row]
        lines.append(
            f"| {volume} | {m.mean():.1%} | {chosen.mean():.1%} | {missed[row].mean():.2%} | "
            f"{false_alarms[row].mean():.2%} | {m[kinds == 'keyword'].mean():.1%} |"
        )
    (REPORT_DIR / "calibration.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(THRESHOLDS, loss)
    left.axvline(best, color="red", linestyle="--")
    left.axvspan(0.0, floor.threshold, color="grey", alpha=0.2, label="over the false-interval budget")
    left.set(xlabel="playback threshold a", ylabel="weighted disagreement", title="calibration loss")
    left.legend()
    right.plot(VOLUMES, outcome.mic.mean(axis=1), marker="o", label="mic fires (f2)")
    right.plot(VOLUMES, missed.mean(axis=1), marker="o", label="mic fires with muting at chosen a")
    right.plot(VOLUMES, false_alarms.mean(axis=1), marker="o", label="false at chosen a")
    right.set(xlabel="speaker volume v", ylabel="share of tracks", title="per volume")
    right.legend()
    figure.tight_layout()
    figure.savefig(REPORT_DIR / "calibration.png", dpi=80)
    plt.close(figure)
