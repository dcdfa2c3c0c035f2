"""When to mute the microphone: intervals in, the player's position in, mute/unmute transitions out.

The player knows how many bytes of PCM it has handed to the audio device; ``position_ms`` turns that into
track time (a partial frame counts as not yet played), ``byte_offset`` the other way (rounded up, so a
mute never starts late). Intervals may arrive in any order and may overlap: the microphone is muted
inside their union.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Literal

from earshot_client.client import Interval

Transition = Literal["mute", "unmute"]


@dataclass
class MicGate:
    """Fed the player position, says when the mic state changes. PCM is ``channels`` × ``sample_width``."""

    sample_rate: int
    channels: int = 1
    sample_width: int = 2
    spans: list[tuple[int, int]] = field(default_factory=list)  # merged, sorted (start_ms, end_ms)
    muted: bool = False

    def add(self, interval: Interval) -> None:
        """Add an interval; overlapping or touching spans merge."""
        start, end = interval.start_ms, interval.end_ms
        kept = []
        for span in self.spans:
            if span[1] < start or span[0] > end:
                kept.append(span)
            else:
                start, end = min(start, span[0]), max(end, span[1])
        bisect.insort(kept, (start, end))
        self.spans = kept

    def should_mute(self, position_ms: float) -> bool:
        """True while ``position_ms`` lies inside an interval (start inclusive, end exclusive)."""
        index = bisect.bisect_right(self.spans, (position_ms, float("inf"))) - 1
        return index >= 0 and self.spans[index][0] <= position_ms < self.spans[index][1]

    def update(self, position_ms: float) -> Transition | None:
        """The change to make now, if any: call it as playback advances."""
        wanted = self.should_mute(position_ms)
        if wanted == self.muted:
            return None
        self.muted = wanted
        return "mute" if wanted else "unmute"

    @property
    def bytes_per_frame(self) -> int:
        return self.channels * self.sample_width

    def position_ms(self, byte_offset: int) -> float:
        """Track time at ``byte_offset`` into the PCM stream."""
        if byte_offset < 0:
            raise ValueError("byte offset must not be negative")
        return (byte_offset // self.bytes_per_frame) * 1000.0 / self.sample_rate

    def byte_offset(self, ms: float) -> int:
        """The first whole frame at or after ``ms``."""
        if ms < 0:
            raise ValueError("time must not be negative")
        frames = -(-round(ms * self.sample_rate * 1000) // 1_000_000)
        return frames * self.bytes_per_frame
