"""The store as a real process: results in from RabbitMQ, rows in PostgreSQL, replies out, skip-kws."""

from __future__ import annotations

import asyncio
import time

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.contracts import JobFailed, Reply
from services.common.topology import (
    CRY_RESULT_KEY,
    GATEWAY_REPLIES_QUEUE,
    JOB_FAILED_KEY,
    KWS_RESULT_KEY,
    RESULTS_EXCHANGE,
    STORE_RESULTS_QUEUE,
    dead_letter_queue,
)
from services.store import repository
from tests.services.harness import BrokerProbe, DatabaseProbe, eventually, wait_until_serving
from tests.services.messages import cry_result, kws_done, kws_rejected, unique_track_id


async def start_store(start_service, broker: BrokerProbe, store_url: str):
    store = start_service("store")
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE, started=store)
    await wait_until_serving(store_url, store)
    return store


async def queue_settled(broker: BrokerProbe, queue: str) -> bool:
    ready, _ = await broker.ready_and_consumers(queue)
    return ready == 0 and broker.unacked(queue) == 0


async def test_a_redelivered_cry_result_makes_one_row_and_one_reply(
    start_service, broker: BrokerProbe, database: DatabaseProbe, store_url: str
) -> None:
    await start_store(start_service, broker, store_url)
    result = cry_result()

    for _ in range(3):
        await broker.publish(result, RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id=result.request_id)

    async def three_handled() -> bool:
        return await database.count("predictions", "request_id = :r", r=result.request_id) == 1 and (
            await queue_settled(broker, STORE_RESULTS_QUEUE)
        )

    await eventually(three_handled, 20, "the store to handle the three copies")
    replies = await broker.drain(GATEWAY_REPLIES_QUEUE)
    assert [Reply.model_validate_json(reply.body).result.request_id for reply in replies] == [
        result.request_id
    ]
    assert Reply.model_validate_json(replies[0].body).result.status == "ok"
    rows = await database.rows(
        "SELECT reply_published_at FROM requests WHERE request_id = :r", r=result.request_id
    )
    assert rows[0]["reply_published_at"] is not None


async def test_skip_kws_long_poll_returns_the_result_as_soon_as_it_is_stored(
    start_service,
    broker: BrokerProbe,
    sessions: async_sessionmaker[AsyncSession],
    api_key: str,
    store_url: str,
) -> None:
    await start_store(start_service, broker, store_url)
    track_id = unique_track_id()
    async with sessions() as session:
        await repository.claim_scan(session, track_id, None, kws_done(track_id).model_version)
    url = f"{store_url}/v1/tracks/{track_id}/skip-kws"
    headers = {"X-API-Key": api_key}

    async with httpx.AsyncClient(timeout=30) as client:
        pending = await client.get(url, headers=headers)
        started = time.monotonic()
        long_poll = asyncio.create_task(client.get(url, params={"wait": 20}, headers=headers))
        await asyncio.sleep(0.5)
        await broker.publish(kws_done(track_id), RESULTS_EXCHANGE, KWS_RESULT_KEY, message_id=track_id)
        done = await long_poll
        waited = time.monotonic() - started
        assert done.status_code == 200, done.text
        cached = await client.get(url, headers={**headers, "If-None-Match": done.headers["etag"]})

    assert pending.status_code == 202 and pending.json()["status"] == "pending"
    assert done.status_code == 200, done.text
    assert waited < 5, f"the long-poll answered after {waited:.1f} s, not when the result arrived"
    assert done.json()["skip_kws"] == [{"start_ms": 1000, "end_ms": 1800, "score": 0.97}]
    assert "immutable" in done.headers["cache-control"]
    assert cached.status_code == 304


async def test_skip_kws_needs_a_key_and_says_unknown_rejected_and_failed(
    start_service, broker: BrokerProbe, api_key: str, store_url: str
) -> None:
    await start_store(start_service, broker, store_url)
    rejected_track, failed_track, unknown_track = unique_track_id(), unique_track_id(), unique_track_id()
    await broker.publish(
        kws_rejected(rejected_track), RESULTS_EXCHANGE, KWS_RESULT_KEY, message_id=rejected_track
    )
    failure = JobFailed(
        job_kind="kws.scan", key=failed_track, error_code="failed", error_message="boom", attempts=3
    )
    await broker.publish(failure, RESULTS_EXCHANGE, JOB_FAILED_KEY, message_id=failed_track)
    await eventually(lambda: queue_settled(broker, STORE_RESULTS_QUEUE), 20, "the store to take both results")

    async with httpx.AsyncClient(base_url=store_url, timeout=10) as client:

        def get(track_id: str, key: str | None = api_key):
            return client.get(f"/v1/tracks/{track_id}/skip-kws", headers={"X-API-Key": key} if key else {})

        no_key, wrong_key = await get(rejected_track, None), await get(rejected_track, "ek_wrong")
        unknown, rejected, failed = (
            await get(unknown_track),
            await get(rejected_track),
            await get(failed_track),
        )
        malformed = await get("not-a-sha256")

    assert no_key.status_code == 401 and wrong_key.status_code == 401
    assert unknown.status_code == 404
    assert rejected.status_code == 422 and rejected.json()["error"]["code"] == "corrupt"
    assert failed.status_code == 500 and failed.json()["error"]["code"] == "failed"
    assert malformed.status_code == 422


async def test_a_result_that_is_no_contract_goes_to_the_dead_letter_queue_with_an_errors_row(
    start_service, broker: BrokerProbe, database: DatabaseProbe, store_url: str
) -> None:
    await start_store(start_service, broker, store_url)
    message_id = f"poison-{unique_track_id()[:12]}"

    await broker.publish_raw(
        b'{"contract": "CryResult.v1", "oops": 1}', RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id
    )

    async def dead_lettered() -> bool:
        ready, _ = await broker.ready_and_consumers(dead_letter_queue(STORE_RESULTS_QUEUE))
        return ready == 1

    await eventually(dead_lettered, 20, "the poison result in store.results.dlq")
    errors = await database.rows("SELECT job_kind, error_code FROM errors WHERE key = :k", k=message_id)
    assert errors == [{"job_kind": "store.results", "error_code": "invalid_message"}]


async def test_a_result_whose_chat_message_belongs_to_another_request_is_dead_lettered_not_retried(
    start_service, broker: BrokerProbe, database: DatabaseProbe, store_url: str
) -> None:
    await start_store(start_service, broker, store_url)
    first = cry_result()
    conflicting = first.model_copy(update={"request_id": f"{first.request_id}:other"})

    await broker.publish(first, RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id=first.request_id)
    # Only once the first is stored: the store handles several results at once, so two published together
    # could be written in either order, and then the first would be the one that conflicts.
    await eventually(lambda: _has_prediction(database, first.request_id), 20, "the first result to be stored")
    await broker.publish(conflicting, RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id=conflicting.request_id)

    async def error_recorded() -> bool:
        return await database.count("errors", "key = :k", k=conflicting.request_id) == 1

    await eventually(error_recorded, 20, "an errors row for the conflicting result")
    errors = await database.rows("SELECT error_code FROM errors WHERE key = :k", k=conflicting.request_id)
    assert errors == [{"error_code": "conflicting_result"}]

    async def dead_lettered() -> bool:
        dead = await broker.drain(dead_letter_queue(STORE_RESULTS_QUEUE))
        return conflicting.request_id in {message.message_id for message in dead}

    await eventually(dead_lettered, 20, "the conflicting result in store.results.dlq")
    assert await database.count("predictions", "request_id = :r", r=first.request_id) == 1


async def test_requests_and_readiness_over_http(
    start_service, broker: BrokerProbe, api_key: str, store_url: str, database: DatabaseProbe
) -> None:
    await start_store(start_service, broker, store_url)
    result = cry_result()
    await broker.publish(result, RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id=result.request_id)
    await eventually(lambda: _has_prediction(database, result.request_id), 20, "the prediction to be stored")

    async with httpx.AsyncClient(base_url=store_url, timeout=10) as client:
        found = await client.get(f"/v1/requests/{result.request_id}", headers={"X-API-Key": api_key})
        missing = await client.get("/v1/requests/tg:1:1", headers={"X-API-Key": api_key})
        ready = await client.get("/readyz")

    assert found.status_code == 200
    assert found.json()["state"] == "done" and found.json()["result"]["label"] == "hungry"
    assert missing.status_code == 404
    assert ready.status_code == 200, ready.text


async def _has_prediction(database: DatabaseProbe, request_id: str) -> bool:
    return await database.count("predictions", "request_id = :r", r=request_id) == 1
