"""The classifier worker: ``cry.classify`` jobs in, ``CryResult`` out, through the generic worker loop.

Bad audio is an answer, not a failure: ``CryClassifier.analyse`` returns status ``bad_audio`` with the reason,
and the parent is told what to do.
"""

from __future__ import annotations

from services.classifier.analysis import CryClassifier
from services.common.contracts import CryJob, CryResult
from services.common.topology import CRY_CLASSIFY_QUEUE, CRY_RESULT_KEY
from services.common.worker import JobSpec, WorkerSettings, job_audio, run_worker


def classify_job(classifier: CryClassifier, job: CryJob, settings: WorkerSettings) -> CryResult:
    analysis = classifier.analyse(job_audio(job.audio, settings))
    return CryResult(
        request_id=job.request_id,
        chat_id=job.chat_id,
        message_id=job.message_id,
        language=job.language,
        received_at=job.received_at,
        **analysis.to_json_dict(),
    )


def cry_job_spec(settings: WorkerSettings) -> JobSpec[CryJob]:
    """Load the model once; ``analyse`` is thread-safe, so the worker's threads share it."""
    classifier = CryClassifier.load()
    return JobSpec(
        kind="cry.classify",
        queue=CRY_CLASSIFY_QUEUE,
        job_type=CryJob,
        result_routing_key=CRY_RESULT_KEY,
        process=lambda job: classify_job(classifier, job, settings),
        key=lambda job: job.request_id,
        model_version=classifier.metadata.version,
    )


def main() -> None:
    """Consume ``cry.classify`` until SIGTERM (``python -m services.classifier run``)."""
    run_worker(cry_job_spec)
