"""Speech from the Debian TTS engines (espeak-ng, festival, RHVoice), cached as 16 kHz float32.

This is an adapter: it runs the engines as subprocesses. Each request is cached under
``.cache/kws/synth/`` by a hash of everything that determines its audio, so re-running training
re-synthesises nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from services.kws.corpus import Voice

SAMPLE_RATE = 16000
# festival's Russian front end aborts the whole batch on some characters (e.g. «»): keep only these.
_FESTIVAL_UNSAFE = re.compile(r"[^А-Яа-яЁё0-9 ,.?!:;\-]")


@dataclass(frozen=True)
class SpeechRequest:
    """One utterance: ``rate`` and ``pitch`` are mapped linearly onto each engine's own scale.

    0..1 is the range every split uses: espeak-ng 110..210 words/min and pitch 20..80; RHVoice rate
    45..100% and pitch 25..75% of the voice's default (RHVoice clamps both to 50..200%, so 0..1 spans
    half speed to normal speed and the lowest pitch to three quarters of the default). The wide-prosody
    training option asks natural voices for values above 1 (faster, higher), which only RHVoice's and
    festival's scales take: the cheapest way to hear more speakers from the few trainable natural voices.
    """

    voice: Voice
    text: str
    rate: float = 0.5
    pitch: float = 0.5

    @property
    def cache_key(self) -> str:
        spec = f"{self.voice.key}|{self.rate:.3f}|{self.pitch:.3f}|{self.text}"
        return hashlib.sha256(spec.encode()).hexdigest()[:20]


def festival_safe_text(text: str) -> str:
    """Text festival's Russian letter-to-sound rules accept: no glued punctuation, no stray hyphens."""
    text = _FESTIVAL_UNSAFE.sub(" ", text)
    text = re.sub(r"(?<![А-Яа-яЁё])-|-(?![А-Яа-яЁё])", " ", text)
    text = re.sub(r"\s*([,.?!:;])[,.?!:;\s]*", r"\1 ", text)
    return " ".join(text.split())


class SpeechCache:
    """Synthesises requests on demand (in parallel subprocesses) and keeps the audio on disk."""

    def __init__(self, directory: Path, workers: int = 1) -> None:
        self.directory = directory
        self.workers = workers

    def path(self, request: SpeechRequest) -> Path:
        return self.directory / request.voice.engine / request.voice.name / f"{request.cache_key}.npy"

    def load(self, request: SpeechRequest) -> np.ndarray:
        """The cached audio of an already synthesised request, int16 scaled to float32."""
        return np.load(self.path(request)).astype(np.float32) / 32768.0

    def synthesise(self, requests: Iterable[SpeechRequest]) -> None:
        """Make sure every request is on disk; festival runs once per batch, the others per request."""
        missing = [request for request in dict.fromkeys(requests) if not self.path(request).exists()]
        festival = [request for request in missing if request.voice.engine == "festival"]
        others = [request for request in missing if request.voice.engine != "festival"]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(self._synthesise_one, others))
        for start in range(0, len(festival), 50):
            self._synthesise_festival(festival[start : start + 50])

    def _store(self, request: SpeechRequest, samples: np.ndarray, sample_rate: int) -> None:
        if sample_rate != SAMPLE_RATE:
            samples = soxr.resample(samples, sample_rate, SAMPLE_RATE, quality="HQ")
        path = self.path(request)
        path.parent.mkdir(parents=True, exist_ok=True)
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
        temporary = path.with_suffix(
            f".{os.getpid()}.{threading.get_ident()}.tmp.npy"
        )  # writers never collide
        np.save(temporary, pcm)
        temporary.rename(path)

    def _synthesise_one(self, request: SpeechRequest) -> None:
        with tempfile.NamedTemporaryFile(suffix=".wav") as output:
            if request.voice.engine == "espeak":
                command = [
                    "espeak-ng",
                    "-v",
                    f"ru+{request.voice.name}",
                    "-s",
                    str(int(110 + 100 * request.rate)),
                    "-p",
                    str(int(20 + 60 * request.pitch)),
                    "-w",
                    output.name,
                ]
                subprocess.run(
                    command, input=request.text.encode(), capture_output=True, check=True, timeout=60
                )
            else:
                command = [
                    "RHVoice-test",
                    "-p",
                    request.voice.name,
                    "-R",
                    str(SAMPLE_RATE),
                    "-r",
                    str(int(45 + 55 * request.rate)),
                    "-t",
                    str(int(25 + 50 * request.pitch)),
                    "-o",
                    output.name,
                ]
                subprocess.run(
                    command, input=request.text.encode(), capture_output=True, check=True, timeout=60
                )
            samples, rate = soundfile.read(output.name, dtype="float32")
        self._store(request, samples, rate)

    def _synthesise_festival(self, requests: list[SpeechRequest]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            script = ["(voice_msu_ru_nsh_clunits)"]
            for index, request in enumerate(requests):
                text = festival_safe_text(request.text)
                stretch = 1.3 - 0.5 * request.rate
                script.append(f"(Parameter.set 'Duration_Stretch {stretch:.3f})")
                script.append(f'(set! u (utt.synth (Utterance Text "{text}")))')
                script.append(f'(utt.save.wave u "{folder}/{index}.wav" \'riff)')
            script_path = Path(folder) / "batch.scm"
            script_path.write_text("\n".join(script) + "\n", encoding="utf-8")
            subprocess.run(["festival", "-b", str(script_path)], capture_output=True, check=True, timeout=600)
            for index, request in enumerate(requests):
                samples, rate = soundfile.read(f"{folder}/{index}.wav", dtype="float32")
                self._store(request, samples, rate)
