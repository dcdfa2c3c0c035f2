"""Outages: the database goes away while results arrive; the broker drops the store's connection."""

from __future__ import annotations

import httpx
from sqlalchemy.engine import make_url

from services.common.topology import (
    CRY_RESULT_KEY,
    KWS_RESULT_KEY,
    RESULTS_EXCHANGE,
    STORE_RESULTS_QUEUE,
    dead_letter_queue,
)
from tests.services.harness import (
    BrokerProbe,
    DatabaseProbe,
    TcpProxy,
    eventually,
    free_port,
    wait_until_serving,
)
from tests.services.messages import cry_result, kws_done, unique_track_id


async def test_results_wait_in_the_queue_while_the_database_is_down_and_none_is_lost(
    start_service, broker: BrokerProbe, database: DatabaseProbe, database_url: str, store_url: str
) -> None:
    real = make_url(database_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432, free_port())
    await proxy.start()
    through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    store = start_service("store", EARSHOT_DATABASE_URL=through_proxy)
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE, started=store)
    await wait_until_serving(store_url, store)
    before = cry_result()
    await broker.publish(before, RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id=before.request_id)
    await eventually(lambda: _replied(database, before.request_id), 20, "the first result and its reply")

    await proxy.stop()
    cries = [cry_result() for _ in range(4)]
    tracks = [unique_track_id() for _ in range(4)]
    for result in cries:
        await broker.publish(result, RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id=result.request_id)
    for track_id in tracks:
        await broker.publish(kws_done(track_id), RESULTS_EXCHANGE, KWS_RESULT_KEY, message_id=track_id)

    async def all_waiting() -> bool:
        ready, _ = await broker.ready_and_consumers(STORE_RESULTS_QUEUE)
        return ready + broker.unacked(STORE_RESULTS_QUEUE) == 8

    await eventually(all_waiting, 20, "the 8 results to wait in store.results")
    async with httpx.AsyncClient(base_url=store_url, timeout=10) as client:
        not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503, not_ready.text
    assert await _stored(database, [r.request_id for r in cries], tracks, expected=0)
    assert store.running()

    await proxy.start()
    await eventually(lambda: _stored(database, [r.request_id for r in cries], tracks), 30, "all 8 results")
    await eventually(lambda: _settled(broker), 20, "store.results to be empty")
    async with httpx.AsyncClient(base_url=store_url, timeout=10) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert (await broker.ready_and_consumers(dead_letter_queue(STORE_RESULTS_QUEUE)))[0] == 0
    assert await store.stop() == 0, store.output()
    await proxy.stop()


async def test_the_store_reconnects_after_the_broker_drops_its_connection(
    start_service, broker: BrokerProbe, database: DatabaseProbe, store_url: str
) -> None:
    store = start_service("store")
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE, started=store)
    await wait_until_serving(store_url, store)
    first = cry_result()
    await broker.publish(first, RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id=first.request_id)
    await eventually(lambda: _stored(database, [first.request_id], []), 20, "the first result")

    await eventually(lambda: _listed(broker), 30, "the store's connection")
    dropped = broker.close_connections()

    async def reconnected() -> bool:
        names = broker.service_connections()
        return bool(names) and not set(names) & set(dropped)

    await eventually(reconnected, 30, "the store to reconnect")
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE)
    second = cry_result()
    await broker.publish(second, RESULTS_EXCHANGE, CRY_RESULT_KEY, message_id=second.request_id)
    await eventually(lambda: _replied(database, second.request_id), 20, "the result and reply, reconnected")
    assert store.running()


async def _replied(database: DatabaseProbe, request_id: str) -> bool:
    """The store's last database step for a cry result: noting that its reply was confirmed."""
    rows = await database.rows("SELECT reply_published_at FROM requests WHERE request_id = :r", r=request_id)
    return bool(rows) and rows[0]["reply_published_at"] is not None


async def _listed(broker: BrokerProbe) -> bool:
    return bool(broker.service_connections())


async def _stored(
    database: DatabaseProbe, request_ids: list[str], track_ids: list[str], expected: int = 1
) -> bool:
    """True when every request has ``expected`` predictions and every track ``expected`` kws results."""
    predictions = await database.count("predictions", "request_id = ANY(:ids)", ids=request_ids)
    kws = await database.count("kws_results", "track_id = ANY(:ids)", ids=track_ids) if track_ids else 0
    return predictions == expected * len(request_ids) and kws == expected * len(track_ids)


async def _settled(broker: BrokerProbe) -> bool:
    ready, _ = await broker.ready_and_consumers(STORE_RESULTS_QUEUE)
    return ready == 0 and broker.unacked(STORE_RESULTS_QUEUE) == 0
