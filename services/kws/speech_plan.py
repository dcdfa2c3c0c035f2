"""Which utterances each split needs: keyword takes, confusable words, carrier phrases, sayings.

Per voice the plan is fixed by a seed derived from the voice's name, so every run asks for the same
utterances (and finds them in the cache). Natural voices (RHVoice, festival) get many takes each;
the ~100 espeak-ng variants get a few each, since they differ mostly in timbre.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from services.kws.corpus import (
    CONFUSABLES,
    KEYWORD,
    Split,
    Voice,
    carrier_phrases,
    fortunes,
    text_split,
    voices,
)
from services.kws.synthesis import SpeechRequest


@dataclass
class VoicePlan:
    """Everything one voice says in one split, grouped by role."""

    voice: Voice
    keywords: list[SpeechRequest] = field(default_factory=list)
    confusables: list[SpeechRequest] = field(default_factory=list)
    carriers: list[SpeechRequest] = field(default_factory=list)
    sayings: list[SpeechRequest] = field(default_factory=list)

    def requests(self) -> list[SpeechRequest]:
        return self.keywords + self.confusables + self.carriers + self.sayings


# (keyword takes, confusable takes, carrier phrases, sayings) per voice
_COUNTS = {
    ("train", True): (20, 38, 60, 60),
    ("train", False): (4, 10, 12, 10),
    ("validation", True): (12, 38, 40, 60),
    ("validation", False): (4, 10, 12, 12),
    ("test", True): (12, 38, 40, 110),
    ("test", False): (4, 12, 12, 36),
}


def plan_split(split: Split) -> list[VoicePlan]:
    """The per-voice utterance plan of ``split``; texts come only from that split's share of sayings."""
    sayings = [text for text in fortunes() if text_split(text) == split]
    phrases = carrier_phrases(sayings)
    plans = []
    for voice in voices(split):
        rng = np.random.default_rng(zlib.crc32(f"{split}:{voice.key}".encode()))
        n_keywords, n_confusables, n_carriers, n_sayings = _COUNTS[(split, voice.engine != "espeak")]

        def take(text: str, voice: Voice = voice, rng: np.random.Generator = rng) -> SpeechRequest:
            return SpeechRequest(
                voice, text, rate=round(float(rng.uniform(0, 1)), 2), pitch=round(float(rng.uniform(0, 1)), 2)
            )

        plan = VoicePlan(voice)
        plan.keywords = [take(KEYWORD) for _ in range(n_keywords)]
        confusable_words = rng.choice(
            len(CONFUSABLES), size=min(n_confusables, len(CONFUSABLES)), replace=False
        )
        plan.confusables = [take(CONFUSABLES[index]) for index in sorted(confusable_words)]
        plan.carriers = [
            take(phrases[index]) for index in rng.choice(len(phrases), size=n_carriers, replace=False)
        ]
        plan.sayings = [
            take(sayings[index]) for index in rng.choice(len(sayings), size=n_sayings, replace=False)
        ]
        plans.append(plan)
    return plans
