"""The streaming scan: the spotter's own model and post-processing, run chunk by chunk with state per stream.

The network is non-causal: an exact score needs ``context_frames`` feature frames (770 ms) of right context.
Waiting for that before deciding would put every interval most of a second behind the audio, so the
detector acts on *settled* scores instead: a frame's score is fixed once ``lookahead_frames`` of right
context have arrived, computed with the rest of the context padded as at the end of a track
(``StreamingScorer.tentative``). Smoothing, threshold and patience then run on the settled scores exactly as
``detector.detect`` does on the whole track. When a run of frames closes it is checked against the best
scores known by then (``_close_run``), and the interval is sent.

The answer at the end (``finish``) is computed from the exact scores with the batch post-processing
(``KeywordSpotter.scan_scores``), so it is the batch scan's answer on the same samples; that is what is
stored. The intervals sent on the way equal it within one frame hop (the tests hold this on the committed
samples and a long composed track); a shorter look-ahead answers sooner and risks more differences.

Pure numpy and onnxruntime, no I/O: the gateway runs ``push`` in a thread pool.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from services.kws.detector import DetectorConfig, detection_runs, run_detection, smooth
from services.kws.intervals import SkipInterval, pad_and_clamp
from services.kws.spotter import KeywordSpotter, KwsScan, StreamingScorer


@dataclass
class StreamingDetector:
    """One stream's detector state. Feed mono float32 samples at the model's rate; get intervals back."""

    spotter: KeywordSpotter
    lookahead_frames: int
    # Samples gathered before the model runs again: each call costs about the same whatever its length
    # (it rescans the context), so a stream fed 10 ms chunks is scanned every ``scan_hop_samples``.
    scan_hop_samples: int = 0
    # The same while nothing can be decided soon (no run open or pending, no score near the threshold):
    # most of a stream is idle, and an interval is sent when its run closes, so scanning an idle stream
    # less often costs no delay (see ``next_scan_samples``).
    idle_scan_hop_samples: int = 0
    scorer: StreamingScorer = field(init=False)
    config: DetectorConfig = field(init=False)  # the spotter's threshold, hold level and patience
    waiting: list[np.ndarray] = field(default_factory=list)
    waiting_samples: int = 0
    exact: list[np.ndarray] = field(default_factory=list)  # exact scores, in order, for the final answer
    samples_seen: int = 0
    # Settled scores from frame ``window_start`` on; earlier ones are no longer needed for smoothing.
    settled: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    window_start: int = 0
    next_smoothed: int = 0  # first frame whose smoothed score is not yet known
    run_first: int | None = None  # first frame of the run at or above the hold level now open
    sent_until: int = -1  # last frame of the last interval sent, so a run is never sent twice
    # Right context (feature frames) that confirms a run closed on settled scores; see ``_review_pending``.
    confirm_frames: int = 20
    pending: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scorer = StreamingScorer(self.spotter.model, self.spotter.head)
        self.config = self.spotter.detector()
        if self.spotter.metadata.smoothing_frames % 2 == 0:
            raise ValueError("the streaming detector needs an odd, centred smoothing window")

    @classmethod
    def with_lookahead_ms(
        cls,
        spotter: KeywordSpotter,
        lookahead_ms: float,
        scan_hop_ms: float = 0.0,
        confirm_ms: float = 200.0,
        idle_scan_hop_ms: float | None = None,
    ) -> StreamingDetector:
        """A detector with its look-ahead, scan hops (idle: the same unless given) and confirming context
        given in ms."""
        metadata = spotter.metadata

        def frames(ms: float) -> int:
            return min(int(round(ms / metadata.feature_hop_ms)), metadata.context_frames)

        def samples(ms: float) -> int:
            return int(ms * metadata.sample_rate / 1000)

        idle_ms = scan_hop_ms if idle_scan_hop_ms is None else max(idle_scan_hop_ms, scan_hop_ms)
        return cls(
            spotter,
            frames(lookahead_ms),
            samples(scan_hop_ms),
            samples(idle_ms),
            confirm_frames=frames(confirm_ms),
        )

    @property
    def deciding(self) -> bool:
        """Whether an interval may be decided soon: a run is open or pending, or a score nears the
        threshold (tentative scores are raw, the threshold applies to smoothed ones: close enough)."""
        tentative = self.scorer.tentative
        near = len(tentative) > 0 and float(tentative.max()) >= self.spotter.threshold
        return self.run_first is not None or bool(self.pending) or near

    @property
    def next_scan_samples(self) -> int:
        """Samples to gather before the model runs again (at least one)."""
        hop = self.scan_hop_samples if self.deciding else self.idle_scan_hop_samples
        return max(1, hop - self.waiting_samples)

    @property
    def settled_frames(self) -> int:
        return self.window_start + len(self.settled)

    @property
    def received_ms(self) -> float:
        return self.samples_seen * 1000 / self.spotter.metadata.sample_rate

    def push(self, samples: np.ndarray) -> list[SkipInterval]:
        """Intervals decided by these samples (usually none); they may overlap earlier ones."""
        self.samples_seen += len(samples)
        due = self.next_scan_samples
        self.waiting.append(samples)
        self.waiting_samples += len(samples)
        if len(samples) < due:
            return []
        self._scan_waiting()
        self._settle()
        self._decide()
        return self._review_pending()

    def _scan_waiting(self) -> None:
        if self.waiting:
            self.exact.append(self.scorer.push(np.concatenate(self.waiting)))
        self.waiting, self.waiting_samples = [], 0

    def finish(self) -> KwsScan:
        """The stream's whole answer from its exact scores: the batch scan's answer on the same samples."""
        self._scan_waiting()
        self.exact.append(self.scorer.finish())
        scores = np.concatenate(self.exact) if self.exact else np.zeros(0, np.float32)
        duration_ms = int(self.samples_seen * 1000 // self.spotter.metadata.sample_rate)
        return self.spotter.scan_scores(scores, duration_ms, levels_db=self.scorer.track_levels_db())

    def _settle(self) -> None:
        """Fix the score of every frame that now has ``lookahead_frames`` of right context."""
        stride = self.scorer.stride
        total = self.scorer.feature_frames
        settle_until = min(-(-total // stride), (total - 1 - self.lookahead_frames) // stride + 1)
        first_tentative = self.scorer.emitted
        new: list[np.ndarray] = []
        if self.settled_frames < first_tentative:  # exact scores already there (a look-ahead that long)
            exact = np.concatenate(self.exact)
            new.append(exact[self.settled_frames : min(first_tentative, settle_until)])
        start = max(self.settled_frames, first_tentative) - first_tentative
        new.append(self.scorer.tentative[start : max(start, settle_until - first_tentative)])
        self.settled = np.concatenate([self.settled, *new]).astype(np.float32, copy=False)

    def _decide(self) -> None:
        """Smooth the settled frames whose window is complete and close the runs that end there."""
        metadata = self.spotter.metadata
        half = metadata.smoothing_frames // 2
        until = self.settled_frames - half
        if until <= self.next_smoothed:
            return
        window_from = max(self.window_start, self.next_smoothed - half)
        smoothed = smooth(self.settled[window_from - self.window_start :], metadata.smoothing_frames)
        for frame in range(self.next_smoothed, until):
            value = float(smoothed[frame - window_from])
            if value >= self.config.hold_level:
                if self.run_first is None:
                    self.run_first = frame
            elif self.run_first is not None:
                self._close_run(frame - 1)
        self.next_smoothed = until
        keep_from = max(0, until - half)
        self.settled = self.settled[keep_from - self.window_start :]
        self.window_start = keep_from

    def _close_run(self, last: int) -> None:
        """A run closed on settled scores: it waits in ``pending`` until more context confirms or drops it."""
        first, self.run_first = self.run_first, None
        assert first is not None
        if last - first + 1 >= self.config.min_frames:
            self.pending.append((first, last))

    def _review_pending(self) -> list[SkipInterval]:
        """Send the pending runs that the best scores now confirm; drop those they no longer support.

        When a run closes, its earlier frames have far more right context than the look-ahead they were
        settled with. Detecting again over the best scores there are (exact where known, else tentative)
        drops a run that more context shows to be a confusable word and moves a start that came late. A
        run is sent once ``min_frames`` of its frames at the threshold hold with ``confirm_frames`` of right
        context: a spoken keyword (about 40 frames) is confirmed as soon as it closes, a short blip only
        later.
        """
        if not self.pending:
            return []
        metadata = self.spotter.metadata
        half = metadata.smoothing_frames // 2
        stride = self.scorer.stride
        confirmed_until = (self.scorer.feature_frames - 1 - self.confirm_frames) // stride + 1
        exact = np.concatenate(self.exact) if self.exact else np.zeros(0, np.float32)
        best = np.concatenate([exact[: self.scorer.emitted], self.scorer.tentative])
        intervals, still_pending = [], []
        levels_db = self.scorer.track_levels_db()
        for first, last in self.pending:
            region = max(0, first - metadata.context_frames // stride)
            window = max(0, region - half)  # smoothing at ``region`` needs the frames before it
            smoothed = smooth(best[window:], metadata.smoothing_frames)[region - window :]
            for run in detection_runs(smoothed, self.config):
                start, end = region + run.first, region + run.last
                if start > last or end < first or end <= self.sent_until:
                    continue  # not this run (later frames have too little context yet), or sent
                if region + run.qualified > confirmed_until - 1 - half:
                    continue
                self.sent_until = end
                peak = float(smoothed[run.first : run.last + 1].max())
                detection = run_detection(start, end, peak, metadata.timing)
                detection = self.spotter.start_at_onset(detection, levels_db)
                # The stream's length is not known yet: the end is clamped only in the final answer.
                intervals.append(pad_and_clamp(detection, self.spotter.padding, sys.maxsize))
            if last + half >= confirmed_until and last > self.sent_until:
                still_pending.append((first, last))  # not all of it has full context yet
        self.pending = still_pending
        return intervals
