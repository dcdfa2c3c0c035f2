"""Which utterances each split needs: keyword takes, confusable words, carrier phrases, sayings.

Per voice the plan is fixed by a seed derived from the voice's name, so every run asks for the same
utterances (and finds them in the cache). Natural voices (RHVoice, festival) get many takes each;
the ~100 espeak-ng variants get a few each, since they differ mostly in timbre. On request
(``wide_prosody``, an option the ablation measured) the natural training voices also say the keyword and
every confusable at a wider spread of speeds and pitches (see ``SpeechRequest``): only four trainable
natural voices exist, so each is made to sound like several.
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


# Extra takes per natural training voice at the wider prosody: (keyword takes, takes of each confusable)
WIDE_PROSODY_TAKES = (40, 1)
# rate and pitch ranges of those takes, per engine (festival has no pitch control)
_WIDE_PROSODY = {"rhvoice": ((0.2, 1.9), (0.5, 2.5)), "festival": ((0.0, 1.4), (0.5, 0.5))}


def wide_prosody_takes(voice: Voice) -> list[SpeechRequest]:
    """A natural training voice's extra keyword and confusable takes, rate and pitch drawn from
    ``_WIDE_PROSODY`` (RHVoice: 56..150% speed, 50..150% pitch) by a seed of their own, so the
    voice's other takes stay as they were."""
    rng = np.random.default_rng(zlib.crc32(f"wide:{voice.key}".encode()))
    (rate_low, rate_high), (pitch_low, pitch_high) = _WIDE_PROSODY[voice.engine]
    keyword_takes, confusable_takes = WIDE_PROSODY_TAKES
    texts = [KEYWORD] * keyword_takes + [word for word in CONFUSABLES for _ in range(confusable_takes)]
    return [
        SpeechRequest(
            voice,
            text,
            rate=round(float(rng.uniform(rate_low, rate_high)), 2),
            pitch=round(float(rng.uniform(pitch_low, pitch_high)), 2),
        )
        for text in texts
    ]


def plan_split(split: Split, wide_prosody: bool = False) -> list[VoicePlan]:
    """The per-voice utterance plan of ``split``; texts come only from that split's share of sayings.
    ``wide_prosody`` adds the natural training voices' wider-prosody takes (an ablation's option)."""
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
        if wide_prosody and split == "train" and voice.engine != "espeak":
            wide = wide_prosody_takes(voice)
            plan.keywords += [request for request in wide if request.text == KEYWORD]
            plan.confusables += [request for request in wide if request.text != KEYWORD]
        plans.append(plan)
    return plans
