"""The kws worker: ``kws.scan`` jobs in, ``KwsResult`` out, through the generic worker loop.

Tracks usually arrive by reference to a content-addressed blob (the gateway wrote it; the store deletes it
once the result is stored). Input the spotter cannot decode is an answer, not a failure: ``AudioRejected``
becomes a ``rejected`` result carrying the error code and a message a client developer can act on.
"""

from __future__ import annotations

from datetime import datetime

from services.common.audio import AudioRejected
from services.common.contracts import KwsJob, KwsResult, SkipInterval
from services.common.topology import KWS_RESULT_KEY, KWS_SCAN_QUEUE
from services.common.worker import JobSpec, WorkerSettings, job_audio, run_worker
from services.kws.spotter import KeywordSpotter, KwsScan


def scan_job(spotter: KeywordSpotter, job: KwsJob, settings: WorkerSettings) -> KwsResult:
    audio = job_audio(job.audio, settings)
    try:
        scan = spotter.scan(audio)
    except AudioRejected as rejected:
        return KwsResult(
            track_id=job.track_id,
            status="rejected",
            error_code=rejected.code,
            error_message=rejected.message,
            received_at=job.received_at,
        )
    return done_result(job.track_id, scan, job.received_at)


def done_result(track_id: str, scan: KwsScan, received_at: datetime) -> KwsResult:
    """A finished scan as the store takes it; the gateway's streams publish theirs the same way."""
    answer = scan.to_json_dict()
    return KwsResult(
        track_id=track_id,
        status="done",
        duration_ms=answer["duration_ms"],
        intervals=[SkipInterval(**interval) for interval in answer["intervals"]],
        model_version=answer["model_version"],
        threshold=answer["threshold"],
        received_at=received_at,
    )


def kws_job_spec(settings: WorkerSettings) -> JobSpec[KwsJob]:
    """Load the model once; ``scan`` is thread-safe, so the worker's threads share it."""
    spotter = KeywordSpotter.load()
    return JobSpec(
        kind="kws.scan",
        queue=KWS_SCAN_QUEUE,
        job_type=KwsJob,
        result_routing_key=KWS_RESULT_KEY,
        process=lambda job: scan_job(spotter, job, settings),
        key=lambda job: job.track_id,
        model_version=spotter.metadata.version,
    )


def main() -> None:
    """Consume ``kws.scan`` until SIGTERM (``python -m services.kws run``)."""
    run_worker(kws_job_spec)
