"""The rules an enrollment set must meet (pure): checked by the gateway before a job exists, and again by the
kws worker on the decoded audio. Each failure names the clip and says what to change."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.settings import EarshotSettings


class EnrollmentRejected(Exception):
    """A set of clips that cannot be enrolled; ``code`` for programs, ``message`` for the developer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class EnrollmentLimits(EarshotSettings):
    """Minimums make the adaptation meaningful; maximums bound the work one request can cause."""

    enroll_min_keyword_clips: int = 30
    enroll_max_keyword_clips: int = 200
    enroll_min_free_speech_s: float = 300.0
    enroll_max_free_speech_s: float = 1800.0
    enroll_max_clips: int = 400
    enroll_max_clip_s: float = 30.0
    enroll_max_total_bytes: int = 100 * 1024 * 1024
    enroll_min_span_ms: int = 150
    enroll_max_span_ms: int = 2000


@dataclass(frozen=True)
class ClipFacts:
    """What the checks need to know of one clip."""

    name: str
    keyword: bool
    duration_ms: int
    span_ms: tuple[int, int] | None


def check_span(clip: ClipFacts, limits: EnrollmentLimits) -> None:
    if clip.span_ms is None:
        return
    if not clip.keyword:
        raise EnrollmentRejected(
            "bad_span", f"Clip {clip.name!r} is keyword-free but has a span; drop the span."
        )
    start, end = clip.span_ms
    if not 0 <= start < end <= clip.duration_ms:
        raise EnrollmentRejected(
            "bad_span",
            f"Clip {clip.name!r}: span {start}-{end} ms must satisfy 0 <= start < end <= {clip.duration_ms} "
            "(the clip's duration).",
        )
    if not limits.enroll_min_span_ms <= end - start <= limits.enroll_max_span_ms:
        raise EnrollmentRejected(
            "bad_span",
            f"Clip {clip.name!r}: the keyword's span lasts {end - start} ms; a spoken «Маруся» lasts "
            f"{limits.enroll_min_span_ms}-{limits.enroll_max_span_ms} ms. Check the span's units (ms).",
        )


def check_clip_set(clips: list[ClipFacts], limits: EnrollmentLimits) -> None:
    """Raise ``EnrollmentRejected`` unless the set has enough of both kinds and nothing out of bounds."""
    if len(clips) > limits.enroll_max_clips:
        raise EnrollmentRejected("too_many_clips", f"{len(clips)} clips; at most {limits.enroll_max_clips}.")
    for clip in clips:
        if clip.duration_ms > limits.enroll_max_clip_s * 1000:
            raise EnrollmentRejected(
                "clip_too_long",
                f"Clip {clip.name!r} lasts {clip.duration_ms / 1000:.1f} s; "
                f"at most {limits.enroll_max_clip_s:g} s.",
            )
        check_span(clip, limits)
    keyword_clips = sum(clip.keyword for clip in clips)
    check_amount(
        keyword_clips, limits.enroll_min_keyword_clips, limits.enroll_max_keyword_clips, "keyword_clips", ""
    )
    free_s = sum(clip.duration_ms for clip in clips if not clip.keyword) / 1000
    check_amount(
        free_s, limits.enroll_min_free_speech_s, limits.enroll_max_free_speech_s, "free_speech", " s"
    )


_AMOUNT_WORDS = {
    "keyword_clips": ("few", "many", "keyword clips"),
    "free_speech": ("little", "much", "of keyword-free speech"),
}


def check_amount(amount: float, low: float, high: float, what: str, unit: str) -> None:
    """``low <= amount <= high``, else ``too_few_…``/``too_many_…`` (or little/much) naming the bound."""
    few, many, noun = _AMOUNT_WORDS[what]
    if amount < low:
        raise EnrollmentRejected(
            f"too_{few}_{what}", f"{amount:.0f}{unit} {noun}; send at least {low:.0f}{unit}."
        )
    if amount > high:
        raise EnrollmentRejected(
            f"too_{many}_{what}", f"{amount:.0f}{unit} {noun}; at most {high:.0f}{unit}."
        )
