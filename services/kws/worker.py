"""The kws worker: ``kws.scan`` and ``kws.enroll`` jobs in, results out, through the generic worker loop.

Tracks usually arrive by reference to a content-addressed blob (the gateway wrote it; the store deletes it
once the result is stored). Input the spotter cannot decode is an answer, not a failure: ``AudioRejected``
becomes a ``rejected`` result carrying the error code and a message a client developer can act on. A scan
job may carry an enrolled voice's head; the track is then scored through it at that voice's threshold.

An enrollment job's clips are decoded and checked again here (the gateway checked what it could without
decoding), keyword clips without a span are aligned by the base model, and the head is fitted by the pure
core in ``services.kws.enrollment``. A set that cannot be enrolled is a ``rejected`` result, not a failure.
"""

from __future__ import annotations

from services.common.audio import AudioLimits, AudioRejected, decode_audio
from services.common.contracts import (
    KwsEnrollJob,
    KwsEnrollResult,
    KwsJob,
    KwsResult,
    scan_key,
)
from services.common.enrollment import ClipFacts, EnrollmentLimits, EnrollmentRejected, check_clip_set
from services.common.topology import KWS_ENROLL_QUEUE, KWS_ENROLL_RESULT_KEY, KWS_RESULT_KEY, KWS_SCAN_QUEUE
from services.common.worker import JobSpec, WorkerSettings, job_audio, run_worker
from services.kws.enrollment import EnrollmentClip, GeneralBank, VoiceHead, align_keyword, enroll, load_bank
from services.kws.spotter import KeywordSpotter


class ModelMismatch(Exception):
    """The job was claimed for a model version this worker does not run (a deployment out of step)."""


def scan_job(spotter: KeywordSpotter, job: KwsJob, settings: WorkerSettings) -> KwsResult:
    """Scan the job's track with the base model or the job's voice; the answer is stored under this
    worker's model version, which must be the one the scan was claimed for (else the job fails, retried
    and then dead-lettered with the reason, rather than answering for a model nobody asked for)."""
    voice_id = job.voice.voice_id if job.voice else None
    if job.voice is not None:
        spotter = spotter.with_voice(VoiceHead.from_json_dict(job.voice.head))
    if job.model_version is not None and job.model_version != spotter.model_version:
        raise ModelMismatch(
            f"the scan was claimed for model {job.model_version}; this worker runs {spotter.model_version}"
        )
    audio = job_audio(job.audio, settings)
    try:
        scan = spotter.scan(audio)
    except AudioRejected as rejected:
        return KwsResult(
            track_id=job.track_id,
            voice_id=voice_id,
            status="rejected",
            model_version=spotter.model_version,
            error_code=rejected.code,
            error_message=rejected.message,
            received_at=job.received_at,
        )
    return scan.to_result(job.track_id, job.received_at, voice_id)


def enrollment_clips(
    spotter: KeywordSpotter, job: KwsEnrollJob, settings: WorkerSettings, limits: EnrollmentLimits
) -> tuple[list[EnrollmentClip], list[EnrollmentClip]]:
    """Decode and check every clip; (keyword clips with spans, keyword-free clips)."""
    clip_limits = AudioLimits(max_duration_s=limits.enroll_max_clip_s)
    keyword_clips, free_clips, facts = [], [], []
    for payload in job.clips:
        try:
            decoded = decode_audio(
                job_audio(payload.audio, settings), spotter.metadata.sample_rate, clip_limits
            )
        except AudioRejected as rejected:
            raise EnrollmentRejected(
                f"clip_{rejected.code}", f"Clip {payload.name!r}: {rejected.message}"
            ) from None
        clip = EnrollmentClip(decoded.samples)
        span = payload.span_ms
        if payload.keyword and span is None:
            found = align_keyword(spotter, decoded.samples)
            if found is None:
                raise EnrollmentRejected(
                    "keyword_not_found",
                    f"Clip {payload.name!r}: the keyword could not be located; give its span_ms.",
                )
            span = (int(found[0]), int(round(found[1])))
        facts.append(ClipFacts(payload.name, payload.keyword, clip.duration_ms, span))
        if payload.keyword:
            keyword_clips.append(EnrollmentClip(decoded.samples, (float(span[0]), float(span[1]))))
        else:
            free_clips.append(clip)
    check_clip_set(facts, limits)
    return keyword_clips, free_clips


def enroll_job(
    spotter: KeywordSpotter,
    bank: GeneralBank,
    job: KwsEnrollJob,
    settings: WorkerSettings,
    limits: EnrollmentLimits,
) -> KwsEnrollResult:
    blobs = [clip.audio.blob_sha256 for clip in job.clips if clip.audio.blob_sha256]
    try:
        keyword_clips, free_clips = enrollment_clips(spotter, job, settings, limits)
    except EnrollmentRejected as rejected:
        return KwsEnrollResult(
            voice_id=job.voice_id,
            status="rejected",
            error_code=rejected.code,
            error_message=rejected.message,
            clip_blobs=blobs,
            received_at=job.received_at,
        )
    enrollment = enroll(spotter, keyword_clips, free_clips, bank, job.seed)
    return KwsEnrollResult(
        voice_id=job.voice_id,
        status="ready",
        head=enrollment.head.to_json_dict(),
        model_version=spotter.with_voice(enrollment.head).model_version,
        validation=enrollment.validation_json(),
        clip_blobs=blobs,
        received_at=job.received_at,
    )


def kws_job_specs(settings: WorkerSettings) -> list[JobSpec]:
    """Load the model and the bank once; ``scan`` is thread-safe, so the worker's threads share them."""
    spotter = KeywordSpotter.load()
    bank = load_bank()
    limits = EnrollmentLimits()
    return [
        JobSpec(
            kind="kws.scan",
            queue=KWS_SCAN_QUEUE,
            job_type=KwsJob,
            result_routing_key=KWS_RESULT_KEY,
            process=lambda job: scan_job(spotter, job, settings),
            key=lambda job: scan_key(
                job.track_id, job.voice.voice_id if job.voice else None, job.model_version
            ),
            model_version=spotter.metadata.version,
        ),
        JobSpec(
            kind="kws.enroll",
            queue=KWS_ENROLL_QUEUE,
            job_type=KwsEnrollJob,
            result_routing_key=KWS_ENROLL_RESULT_KEY,
            process=lambda job: enroll_job(spotter, bank, job, settings, limits),
            key=lambda job: job.voice_id,
            model_version=spotter.metadata.version,
        ),
    ]


def main() -> None:
    """Consume ``kws.scan`` and ``kws.enroll`` until SIGTERM (``python -m services.kws run``)."""
    run_worker(kws_job_specs)
