"""The cry path through real processes: job → classifier worker → store → PostgreSQL row + Reply.

Includes what must not go wrong on the way: duplicate jobs, a worker killed or stopped mid-job, poison and
failing jobs, a dropped broker connection, and bad audio.
"""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from services.classifier.analysis import CryClassifier
from services.common.blobs import blob_path, sha256_hex, write_blob
from services.common.contracts import CryJob, Reply
from services.common.topology import (
    CRY_CLASSIFY_QUEUE,
    DELIVERY_LIMIT,
    GATEWAY_REPLIES_QUEUE,
    JOBS_EXCHANGE,
    STORE_RESULTS_QUEUE,
    dead_letter_queue,
    retry_queue,
)
from tests.audio_files import encode, tone
from tests.services.harness import BrokerProbe, DatabaseProbe, eventually
from tests.services.messages import cry_job, cry_job_by_reference

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples" / "cry").glob("*.ogg"))


@pytest.fixture(scope="module")
def classifier() -> CryClassifier:
    return CryClassifier.load()


def recording() -> bytes:
    """A committed cry sample when there is one; the answer is compared with the model's own, not guessed."""
    if SAMPLES:
        return SAMPLES[0].read_bytes()
    return encode(tone(6.0, 16000, frequency=450.0), 16000, "ogg")


def unique_recording() -> bytes:
    """Audio no other test uses, for jobs that refer to a blob by hash."""
    return encode(tone(4.0, 16000, frequency=300.0 + int.from_bytes(os.urandom(2)) % 600), 16000, "ogg")


async def start_cry_path(start_service, broker: BrokerProbe, **worker_env: str):
    store = start_service("store")
    worker = start_service("classifier", **worker_env)
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE, started=store)
    await broker.wait_for_consumers(CRY_CLASSIFY_QUEUE, started=worker)
    return store, worker


async def publish_job(broker: BrokerProbe, job: CryJob) -> None:
    await broker.publish(job, JOBS_EXCHANGE, CRY_CLASSIFY_QUEUE, message_id=job.request_id)


async def predictions(database: DatabaseProbe, request_id: str) -> list[dict]:
    return await database.rows("SELECT * FROM predictions WHERE request_id = :r", r=request_id)


async def wait_for_prediction(database: DatabaseProbe, request_id: str, timeout_s: float = 30) -> dict:
    async def stored() -> bool:
        return bool(await predictions(database, request_id))

    await eventually(stored, timeout_s, f"the prediction of {request_id}")
    return (await predictions(database, request_id))[0]


async def replies_for(broker: BrokerProbe, request_id: str) -> list[Reply]:
    replies = [
        Reply.model_validate_json(message.body) for message in await broker.drain(GATEWAY_REPLIES_QUEUE)
    ]
    return [reply for reply in replies if reply.result.request_id == request_id]


async def errors_for(database: DatabaseProbe, key: str) -> list[dict]:
    return await database.rows("SELECT * FROM errors WHERE key = :k", k=key)


async def ready_in(broker: BrokerProbe, queue: str) -> int:
    return (await broker.ready_and_consumers(queue))[0]


async def open_writer_when_read(fifo: Path, timeout_s: float = 30) -> int:
    """Wait until a worker opens ``fifo`` to read (it is then in the middle of the job); the write end."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


def blocking_blob(blob_dir: Path, audio: bytes) -> Path:
    """A named pipe where the job's blob should be: a worker reading the job blocks until the test writes."""
    fifo = blob_path(sha256_hex(audio), blob_dir)
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    return fifo


async def test_a_cry_job_is_classified_stored_and_replied(
    start_service, broker: BrokerProbe, database: DatabaseProbe, classifier: CryClassifier
) -> None:
    await start_cry_path(start_service, broker)
    audio = recording()
    job = cry_job(audio, language="en")

    await publish_job(broker, job)

    row = await wait_for_prediction(database, job.request_id)
    expected = classifier.analyse(audio)
    assert (row["status"], row["label"], row["model_version"]) == (
        expected.status,
        expected.label,
        expected.model_version,
    )
    await eventually(lambda: _one_reply(broker, job.request_id), 10, "the reply")


async def test_a_job_delivered_twice_makes_one_row_and_one_reply(
    start_service, broker: BrokerProbe, database: DatabaseProbe
) -> None:
    await start_cry_path(start_service, broker)
    job = cry_job(recording())

    await publish_job(broker, job)
    await publish_job(broker, job)

    await wait_for_prediction(database, job.request_id)
    await eventually(lambda: _settled(broker, CRY_CLASSIFY_QUEUE), 20, "both copies to be handled")
    await eventually(lambda: _settled(broker, STORE_RESULTS_QUEUE), 20, "both results to be stored")
    assert len(await predictions(database, job.request_id)) == 1
    assert len(await replies_for(broker, job.request_id)) == 1


async def test_a_worker_killed_mid_job_leaves_the_job_to_the_next_worker(
    start_service, broker: BrokerProbe, database: DatabaseProbe, blob_dir: Path
) -> None:
    _, worker = await start_cry_path(start_service, broker)
    audio = unique_recording()
    fifo = blocking_blob(blob_dir, audio)
    job = cry_job_by_reference(sha256_hex(audio), len(audio))
    await publish_job(broker, job)

    writer = await open_writer_when_read(fifo)  # the worker is now reading the job's audio
    worker.kill()
    os.close(writer)
    fifo.unlink()
    write_blob(audio, blob_dir)
    await eventually(lambda: _requeued(broker), 20, "the killed worker's job back in the queue")
    assert await predictions(database, job.request_id) == []

    start_service("classifier")
    await wait_for_prediction(database, job.request_id)
    await eventually(lambda: _settled(broker, STORE_RESULTS_QUEUE), 20, "the result to be stored")
    assert len(await predictions(database, job.request_id)) == 1
    assert await errors_for(database, job.request_id) == []
    blob_path(sha256_hex(audio), blob_dir).unlink()


async def test_sigterm_lets_the_job_in_flight_finish_before_the_worker_exits(
    start_service, broker: BrokerProbe, database: DatabaseProbe, blob_dir: Path
) -> None:
    _, worker = await start_cry_path(start_service, broker)
    audio = unique_recording()
    fifo = blocking_blob(blob_dir, audio)
    job = cry_job_by_reference(sha256_hex(audio), len(audio))
    await publish_job(broker, job)
    writer = await open_writer_when_read(fifo)

    worker.process.terminate()
    await asyncio.sleep(0.5)
    assert worker.running(), "the worker quit with a job in flight"
    os.set_blocking(writer, True)
    await asyncio.to_thread(os.write, writer, audio)
    os.close(writer)

    assert await worker.stop() == 0, worker.output()
    await wait_for_prediction(database, job.request_id)
    fifo.unlink()
    assert (await broker.ready_and_consumers(CRY_CLASSIFY_QUEUE)) == (0, 0)


async def test_a_job_that_is_no_contract_is_dead_lettered_with_an_errors_row(
    start_service, broker: BrokerProbe, database: DatabaseProbe
) -> None:
    await start_cry_path(start_service, broker)
    message_id = "poison-" + os.urandom(6).hex()

    await broker.publish_raw(
        b'{"contract": "CryJob.v1", "audio": 42}', JOBS_EXCHANGE, CRY_CLASSIFY_QUEUE, message_id
    )

    await eventually(lambda: _errors_row(database, message_id), 20, "an errors row for the poison job")
    await eventually(lambda: _dead_lettered(broker, CRY_CLASSIFY_QUEUE), 20, "the poison job in the DLQ")
    [error] = await errors_for(database, message_id)
    assert (error["job_kind"], error["error_code"], error["attempts"]) == (
        "cry.classify",
        "invalid_message",
        1,
    )


async def test_a_failing_job_is_retried_with_backoff_then_dead_lettered_with_an_errors_row(
    start_service, broker: BrokerProbe, database: DatabaseProbe
) -> None:
    await start_cry_path(start_service, broker, EARSHOT_MAX_ATTEMPTS="3", EARSHOT_RETRY_DELAY_S="0.3")
    missing = os.urandom(64)
    job = cry_job_by_reference(sha256_hex(missing), len(missing))  # its blob never appears

    await publish_job(broker, job)

    await eventually(
        lambda: _errors_row(database, job.request_id), 30, "an errors row after the last attempt"
    )
    await eventually(lambda: _dead_lettered(broker, CRY_CLASSIFY_QUEUE), 20, "the job in the DLQ")
    [error] = await errors_for(database, job.request_id)
    assert (error["error_code"], error["attempts"]) == ("failed", 3)
    assert "BlobMissing" in error["error_message"]
    assert await predictions(database, job.request_id) == []


async def test_a_transient_failure_is_retried_and_then_succeeds(
    start_service, broker: BrokerProbe, database: DatabaseProbe, blob_dir: Path
) -> None:
    await start_cry_path(start_service, broker, EARSHOT_RETRY_DELAY_S="1.0")
    audio = unique_recording()
    job = cry_job_by_reference(sha256_hex(audio), len(audio))

    await publish_job(broker, job)
    await eventually(lambda: _waiting_to_retry(broker), 20, "the job in the retry queue")
    write_blob(audio, blob_dir)

    await wait_for_prediction(database, job.request_id)
    assert await errors_for(database, job.request_id) == []
    blob_path(sha256_hex(audio), blob_dir).unlink()


async def test_a_job_handed_out_too_often_is_dead_lettered_with_an_errors_row(
    start_service, broker: BrokerProbe, database: DatabaseProbe
) -> None:
    job = cry_job(recording())
    await publish_job(broker, job)
    channel = await broker.connection.channel()
    queue = await channel.declare_queue(CRY_CLASSIFY_QUEUE, passive=True)
    for _ in range(DELIVERY_LIMIT):  # as if DELIVERY_LIMIT workers had crashed on it
        message = await queue.get(timeout=10)
        await message.nack(requeue=True)
    await channel.close()

    await start_cry_path(start_service, broker)

    await eventually(lambda: _errors_row(database, job.request_id), 20, "an errors row")
    await eventually(lambda: _dead_lettered(broker, CRY_CLASSIFY_QUEUE), 20, "the job in the DLQ")
    [error] = await errors_for(database, job.request_id)
    assert error["error_code"] == "redelivered_too_often"
    assert await predictions(database, job.request_id) == []


async def test_the_worker_reconnects_after_the_broker_drops_its_connection(
    start_service, broker: BrokerProbe, database: DatabaseProbe
) -> None:
    store, worker = await start_cry_path(start_service, broker)
    first = cry_job(recording())
    await publish_job(broker, first)
    await wait_for_prediction(database, first.request_id)
    await eventually(lambda: _listed(broker, 2), 30, "both services' connections")

    dropped = broker.close_connections()

    async def reconnected() -> bool:
        names = broker.service_connections()
        return len(names) >= 2 and not set(names) & set(dropped)

    await eventually(reconnected, 30, "both services to reconnect")
    await broker.wait_for_consumers(CRY_CLASSIFY_QUEUE)
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE)
    second = cry_job(recording())
    await publish_job(broker, second)
    await wait_for_prediction(database, second.request_id)
    assert worker.running() and store.running()


BAD_AUDIO: dict[str, bytes] = {
    "empty": b"",
    "corrupt": b"OggS" + bytes(500),
    "not_audio": b"Dear parents, this is a text file.\n" * 30,
    "too_large": encode(tone(12.0, 16000), 16000, "wav"),  # > the 300 kB limit set below
    "too_long": encode(tone(25.0, 16000), 16000, "ogg"),  # > the 20 s limit set below, yet small
}


async def test_bad_audio_gets_a_clear_answer_that_is_recorded(
    start_service, broker: BrokerProbe, database: DatabaseProbe
) -> None:
    await start_cry_path(
        start_service, broker, EARSHOT_MAX_AUDIO_BYTES="300000", EARSHOT_MAX_AUDIO_SECONDS="20"
    )
    jobs = {reason: cry_job(audio, language="en") for reason, audio in BAD_AUDIO.items()}

    for job in jobs.values():
        await publish_job(broker, job)

    for reason, job in jobs.items():
        row = await wait_for_prediction(database, job.request_id)
        assert (row["status"], row["quality"]["reason"]) == ("bad_audio", reason)
        assert len(row["message"]) > 20, row["message"]
    replies = [
        Reply.model_validate_json(message.body) for message in await broker.drain(GATEWAY_REPLIES_QUEUE)
    ]
    assert sorted(reply.result.request_id for reply in replies) == sorted(
        job.request_id for job in jobs.values()
    )


async def _one_reply(broker: BrokerProbe, request_id: str) -> bool:
    return len(await replies_for(broker, request_id)) == 1


async def _settled(broker: BrokerProbe, queue: str) -> bool:
    return await ready_in(broker, queue) == 0 and broker.unacked(queue) == 0


async def _requeued(broker: BrokerProbe) -> bool:
    return await ready_in(broker, CRY_CLASSIFY_QUEUE) == 1


async def _waiting_to_retry(broker: BrokerProbe) -> bool:
    return await ready_in(broker, retry_queue(CRY_CLASSIFY_QUEUE)) == 1


async def _dead_lettered(broker: BrokerProbe, queue: str) -> bool:
    return await ready_in(broker, dead_letter_queue(queue)) == 1


async def _errors_row(database: DatabaseProbe, key: str) -> bool:
    return bool(await errors_for(database, key))


async def _listed(broker: BrokerProbe, count: int) -> bool:
    return len(broker.service_connections()) >= count
