"""``python -m services.kws samples``: the three short committed clips under ``samples/playback/``.

Spoken by RHVoice ``elena`` (LGPL-2.1+, a validation voice: never trained on). The keyword clip is
composed from separately synthesised parts, so its span is exact; it is written to ``spans.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile

from services.common.settings import REPO_ROOT
from services.kws.augment import trim_silence
from services.kws.corpus import KEYWORD, Voice
from services.kws.synthesis import SAMPLE_RATE, SpeechCache, SpeechRequest

SAMPLES_DIR = REPO_ROOT / "samples" / "playback"
VOICE = Voice("rhvoice", "elena")
KEYWORD_PARTS = ("сегодня отличная погода", KEYWORD, "включи музыку погромче")
CONFUSABLE_TEXT = "Маша, Марина и Муся позвали Марию гулять в парк."
NEITHER_TEXT = "Завтра будет солнечно и тепло, можно пойти в парк с друзьями."


def make_samples(cache: SpeechCache, directory: Path = SAMPLES_DIR) -> dict[str, list[int]]:
    """Write keyword.flac, confusable.flac, neither.flac and spans.json; return the spans (ms)."""
    requests = [SpeechRequest(VOICE, text) for text in (*KEYWORD_PARTS, CONFUSABLE_TEXT, NEITHER_TEXT)]
    cache.synthesise(requests)
    pause = np.zeros(int(0.25 * SAMPLE_RATE), np.float32)
    lead = np.zeros(int(0.5 * SAMPLE_RATE), np.float32)
    prefix, keyword, suffix = (trim_silence(cache.load(request)) for request in requests[:3])
    start = len(lead) + len(prefix) + len(pause)
    clips = {
        "keyword": np.concatenate([lead, prefix, pause, keyword, pause, suffix, lead]),
        "confusable": np.concatenate([lead, cache.load(requests[3]), lead]),
        "neither": np.concatenate([lead, cache.load(requests[4]), lead]),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, samples in clips.items():
        soundfile.write(directory / f"{name}.flac", samples, SAMPLE_RATE, subtype="PCM_16")
    spans = {"keyword.flac": [start * 1000 // SAMPLE_RATE, -(-(start + len(keyword)) * 1000 // SAMPLE_RATE)]}
    (directory / "spans.json").write_text(json.dumps(spans, indent=1) + "\n", encoding="utf-8")
    return spans
