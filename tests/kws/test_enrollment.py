"""Voice enrollment core: the embeddings output, the head artefact, determinism, alignment and the checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import soundfile

from services.common.contracts import AudioPayload, EnrollmentClipPayload, KwsEnrollJob
from services.common.enrollment import ClipFacts, EnrollmentLimits, EnrollmentRejected, check_clip_set
from services.common.worker import WorkerSettings
from services.kws.enrollment import (
    HOLD_RATIO,
    EnrollmentClip,
    VoiceHead,
    align_keyword,
    enroll,
    load_bank,
)
from services.kws.features import SAMPLE_RATE, log_mel
from services.kws.model import MODEL_PATH
from services.kws.spotter import KeywordSpotter
from services.kws.worker import enroll_job
from tests.audio_files import encode

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "playback"
VOICE_ID = "v_" + "0" * 32


def sample(name: str) -> np.ndarray:
    samples, rate = soundfile.read(SAMPLES / name, dtype="float32")
    assert rate == SAMPLE_RATE
    return samples


@pytest.fixture(scope="module")
def spotter() -> KeywordSpotter:
    return KeywordSpotter.load()


@pytest.fixture(scope="module")
def clips() -> tuple[list[EnrollmentClip], list[EnrollmentClip]]:
    """Keyword clips: the committed keyword sample at shifts and gains; keyword-free: the other samples."""
    keyword = sample("keyword.flac")
    start, end = json.loads((SAMPLES / "spans.json").read_text())["keyword.flac"]
    keyword_clips = []
    for index in range(8):
        lead = np.zeros(int(SAMPLE_RATE * 0.05 * index), np.float32)
        keyword_clips.append(
            EnrollmentClip(
                np.concatenate([lead, keyword * (0.5 + 0.06 * index)]),
                (start + 50.0 * index, end + 50.0 * index),
            )
        )
    free = [
        EnrollmentClip(sample(name) * gain)
        for name in ("neither.flac", "confusable.flac")
        for gain in (1, 0.6)
    ]
    return keyword_clips, free


def test_the_embeddings_output_is_what_the_shipped_head_turns_into_scores(spotter: KeywordSpotter) -> None:
    graph = onnx.load(str(MODEL_PATH)).graph
    weights = {item.name: onnx.numpy_helper.to_array(item) for item in graph.initializer}
    features = log_mel(sample("keyword.flac"))
    embeddings = spotter.model.frame_embeddings(features)
    logits = embeddings @ weights["head.weight"].reshape(-1) + weights["head.bias"][0]
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), spotter.model.frame_scores(features), atol=1e-5)


def test_enrollment_is_deterministic_and_its_head_survives_json(spotter: KeywordSpotter, clips) -> None:
    bank = load_bank()
    first = enroll(spotter, *clips, bank, seed=3)
    second = enroll(spotter, *clips, bank, seed=3)
    assert first.head.version == second.head.version
    assert first.validation_json() == second.validation_json()
    restored = VoiceHead.from_json_dict(json.loads(json.dumps(first.head.to_json_dict())))
    assert restored.version == first.head.version
    adapted = spotter.with_voice(restored)
    assert adapted.model_version == f"{spotter.metadata.version}+voice.{first.head.version}"
    scan = adapted.scan_samples(clips[0][0].samples)
    span_start, span_end = clips[0][0].span_ms
    assert any(item.start_ms <= span_start and item.end_ms >= span_end for item in scan.intervals)


def test_a_v1_head_is_still_read_and_holds_at_its_threshold(spotter: KeywordSpotter, clips) -> None:
    """Heads stored before the hold level keep the intervals they were calibrated with."""
    head = enroll(spotter, *clips, load_bank(), seed=3).head
    assert head.to_json_dict()["format"] == "KwsVoiceHead.v2"
    assert spotter.with_voice(head).detector().hold == head.threshold * HOLD_RATIO
    stored = {key: value for key, value in head.to_json_dict().items() if key != "hold_ratio"}
    stored["format"] = "KwsVoiceHead.v1"
    old = VoiceHead.from_json_dict(stored)
    assert old.to_json_dict() == stored  # written back as it was: its fingerprint, its cached scans
    assert old.hold_ratio == 1.0 and old.version != head.version
    config = spotter.with_voice(old).detector()
    assert config.hold_level == config.threshold == head.threshold
    with pytest.raises(ValueError, match="not a KwsVoiceHead.v2 artefact"):
        VoiceHead.from_json_dict(stored | {"format": "KwsVoiceHead.v0"})


def test_a_head_of_another_base_model_is_refused(spotter: KeywordSpotter, clips) -> None:
    head = enroll(spotter, *clips, load_bank(), seed=1).head.to_json_dict() | {"base_model_version": "0.0.0"}
    with pytest.raises(ValueError, match="fitted on model 0.0.0"):
        spotter.with_voice(VoiceHead.from_json_dict(head))


def test_alignment_finds_the_keyword_span(spotter: KeywordSpotter) -> None:
    start, end = json.loads((SAMPLES / "spans.json").read_text())["keyword.flac"]
    found = align_keyword(spotter, sample("keyword.flac"))
    assert found is not None
    assert abs(found[0] - start) < 200 and abs(found[1] - end) < 200
    assert align_keyword(spotter, np.zeros(SAMPLE_RATE * 2, np.float32)) is None


LIMITS = EnrollmentLimits(enroll_min_keyword_clips=2, enroll_min_free_speech_s=2.0)


def facts(keyword_clips: int, free_s: float, span: tuple[int, int] = (1000, 1600)) -> list[ClipFacts]:
    return [ClipFacts(f"kw{i}.wav", True, 3000, span) for i in range(keyword_clips)] + [
        ClipFacts("free.wav", False, int(free_s * 1000), None)
    ]


@pytest.mark.parametrize(
    ("clip_facts", "code"),
    [
        (facts(1, 5.0), "too_few_keyword_clips"),
        (facts(3, 1.0), "too_little_free_speech"),
        (facts(3, 5.0, span=(2500, 3500)), "bad_span"),
        (facts(3, 5.0, span=(1, 4)), "bad_span"),
        (facts(3, 5.0) + [ClipFacts("long.wav", False, 60_000, None)], "clip_too_long"),
        (facts(401, 5.0), "too_many_clips"),
    ],
)
def test_bad_sets_get_a_clear_error(clip_facts: list[ClipFacts], code: str) -> None:
    with pytest.raises(EnrollmentRejected) as raised:
        check_clip_set(clip_facts, LIMITS)
    assert raised.value.code == code and raised.value.message


def test_a_good_set_passes() -> None:
    check_clip_set(facts(3, 5.0), LIMITS)


def job_with(clips: list[tuple[str, bytes, bool, tuple[int, int] | None]]) -> KwsEnrollJob:
    return KwsEnrollJob(
        voice_id=VOICE_ID,
        clips=[
            EnrollmentClipPayload(
                name=name,
                audio=AudioPayload(inline=data, size_bytes=len(data)),
                keyword=keyword,
                span_ms=span,
            )
            for name, data, keyword, span in clips
        ],
    )


def test_the_worker_rejects_non_audio_and_unalignable_clips(spotter: KeywordSpotter) -> None:
    settings = WorkerSettings()
    silence = encode(np.zeros(SAMPLE_RATE * 3, np.float32), SAMPLE_RATE, "wav")
    not_audio = enroll_job(
        spotter, load_bank(), job_with([("a.wav", b"%PDF-1.4 not audio", True, None)]), settings, LIMITS
    )
    assert (not_audio.status, not_audio.error_code) == ("rejected", "clip_not_audio")
    assert "a.wav" in not_audio.error_message
    unaligned = enroll_job(
        spotter, load_bank(), job_with([("quiet.wav", silence, True, None)]), settings, LIMITS
    )
    assert (unaligned.status, unaligned.error_code) == ("rejected", "keyword_not_found")


def test_the_worker_enrolls_a_good_set(spotter: KeywordSpotter, clips) -> None:
    keyword_clips, free = clips
    entries = [
        (f"kw{i}.wav", encode(clip.samples, SAMPLE_RATE, "wav"), True, tuple(int(v) for v in clip.span_ms))
        for i, clip in enumerate(keyword_clips)
    ] + [
        (f"free{i}.wav", encode(clip.samples, SAMPLE_RATE, "wav"), False, None) for i, clip in enumerate(free)
    ]
    result = enroll_job(spotter, load_bank(), job_with(entries), WorkerSettings(), LIMITS)
    assert result.status == "ready", result.error_message
    head = VoiceHead.from_json_dict(result.head)
    assert result.model_version == spotter.with_voice(head).model_version
    assert set(result.validation) >= {"base", "adapted", "hold", "false_budget_per_hour"}
    assert result.validation["hold"] == round(head.threshold * head.hold_ratio, 4)


def test_the_worker_imports_no_training_library() -> None:
    """Services run without torch or the augmentation libraries (requirements/runtime.txt)."""
    code = (
        "import sys, services.kws.worker, services.gateway.voices, services.store.results; "
        "print(sorted({'torch', 'pyroomacoustics', 'onnx', 'sklearn'} & set(sys.modules)))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"
