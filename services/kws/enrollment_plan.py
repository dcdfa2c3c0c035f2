"""What the enrollment evaluation and the general-data bank synthesise (text and bookkeeping, no audio).

An enrolled voice is one of the evaluation-only RHVoice test voices: the base model never heard it. Its
enrollment clips say sentences of the *train* text split, its held-out speech is the existing test plan
(``plan_split("test")``, test text split), so enrollment and evaluation never share a sentence. The
bank of general data mixed into every adaptation comes from the LGPL RHVoice training voices only.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from services.kws.corpus import (
    CONFUSABLES,
    KEYWORD,
    RHVOICE_TEST,
    RHVOICE_TRAIN,
    Voice,
    carrier_phrases,
    fortunes,
    text_split,
)
from services.kws.speech_plan import VoicePlan, plan_split
from services.kws.synthesis import SpeechRequest

MAX_ENROLL_KEYWORDS = 100
ENROLL_CARRIERS = 30
ENROLL_SAYINGS = 40  # about 5.5 minutes of keyword-free speech per voice, plus every confusable word once


@dataclass
class EnrollmentPlan:
    """One enrolled voice: what the client would synthesise, and the held-out test plan of that voice."""

    enrollment: VoicePlan
    held_out: VoicePlan


def _take(voice: Voice, text: str, rng: np.random.Generator) -> SpeechRequest:
    return SpeechRequest(
        voice, text, rate=round(float(rng.uniform(0, 1)), 2), pitch=round(float(rng.uniform(0, 1)), 2)
    )


def enrollment_plans() -> list[EnrollmentPlan]:
    """Enrollment and held-out plans of the nine evaluation-only RHVoice voices."""
    sayings = [text for text in fortunes() if text_split(text) == "train"]
    phrases = carrier_phrases(sayings)
    held_out = {plan.voice.key: plan for plan in plan_split("test")}
    plans = []
    for name in RHVOICE_TEST:
        voice = Voice("rhvoice", name)
        rng = np.random.default_rng(zlib.crc32(f"enroll:{voice.key}".encode()))
        plan = VoicePlan(voice)
        plan.keywords = [_take(voice, KEYWORD, rng) for _ in range(MAX_ENROLL_KEYWORDS)]
        carriers = rng.choice(len(phrases), size=ENROLL_CARRIERS, replace=False)
        plan.carriers = [_take(voice, phrases[index], rng) for index in carriers]
        chosen = rng.choice(len(sayings), size=ENROLL_SAYINGS, replace=False)
        plan.sayings = [_take(voice, sayings[index], rng) for index in chosen]
        plan.confusables = [_take(voice, word, rng) for word in CONFUSABLES]
        plans.append(EnrollmentPlan(plan, held_out[voice.key]))
    return plans


def bank_plans() -> list[VoicePlan]:
    """The general data of the bank: a subset of the training plan of the LGPL RHVoice voices."""
    plans = []
    for plan in plan_split("train"):
        if plan.voice.engine == "rhvoice" and plan.voice.name in RHVOICE_TRAIN:
            plans.append(
                VoicePlan(plan.voice, plan.keywords, plan.confusables, plan.carriers[:20], plan.sayings[:15])
            )
    return plans
