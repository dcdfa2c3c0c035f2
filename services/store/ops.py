"""The store's built-in status page for operators: ``GET /ops`` (HTML, no build step) and ``GET /ops/status``.

``/ops`` is a static page (``ops.html`` beside this module) with no data in it; its script reads the admin
key from the address's fragment (``/ops#key=…``, never sent to the server, so never in an access log) or
asks for it, then fetches ``/ops/status`` with the ``X-Admin-Key`` header every few seconds.

``/ops/status`` (admin key required) gathers:
- each work queue's ready and unacked messages, consumers and publish/deliver/ack/redeliver rates, with its
  retry and dead-letter queues' depths, from the RabbitMQ management API (``EARSHOT_MANAGEMENT_URL``);
- the most recent rows of the errors table;
- throughput and received-to-processed latency (p50, p95) per 5 minutes over the last hour, per job kind;
- the model versions that answered in the last 24 hours.

The admin key is configured only as its sha256 (``EARSHOT_ADMIN_KEY_SHA256``; ``python -m services.store
create-admin-key`` makes one) and compared in constant time; without it the status answers 503.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlsplit

import httpx
from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import HTMLResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.topology import QUEUES, dead_letter_queue, retry_queue
from services.store.settings import StoreSettings

ADMIN_KEY_HEADER = "X-Admin-Key"
RECENT_ERRORS = 20
ERROR_MESSAGE_CHARS = 300
BUCKET_MINUTES = 5
MANAGEMENT_TIMEOUT_S = 3.0
# The page's rate names and the management API's fields they come from.
_RATES = {
    "publish": "publish_details",
    "deliver": "deliver_get_details",
    "ack": "ack_details",
    "redeliver": "redeliver_details",
}

_ANSWERED = """
    SELECT 'cry.classify' AS kind, processed_at, model_version,
           extract(epoch FROM processed_at - received_at) AS latency_s FROM predictions
    UNION ALL
    SELECT 'kws.scan', processed_at, nullif(model_version, ''),
           extract(epoch FROM processed_at - received_at) FROM kws_results
"""
LAST_HOUR_SQL = text(f"""
    SELECT kind, floor(extract(epoch FROM now() - processed_at) / {BUCKET_MINUTES * 60})::int AS bucket,
           count(*) AS jobs,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_s) AS p50_s,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_s) AS p95_s
    FROM ({_ANSWERED}) answered
    WHERE processed_at > now() - interval '1 hour'
    GROUP BY kind, bucket ORDER BY kind, bucket
""")
MODELS_SQL = text(f"""
    SELECT kind, model_version, count(*) AS answers, max(processed_at) AS last_seen
    FROM ({_ANSWERED}) answered
    WHERE processed_at > now() - interval '24 hours' AND model_version IS NOT NULL
    GROUP BY kind, model_version ORDER BY kind, last_seen DESC
""")
ERRORS_SQL = text("""
    SELECT job_kind, key, error_code, left(error_message, :chars) AS error_message, attempts, failed_at
    FROM errors ORDER BY failed_at DESC, id DESC LIMIT :limit
""")


def hash_admin_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_admin_key() -> tuple[str, str]:
    """A fresh admin key and the sha256 to configure as ``EARSHOT_ADMIN_KEY_SHA256``."""
    raw_key = "earshot-admin-" + secrets.token_urlsafe(32)
    return raw_key, hash_admin_key(raw_key)


def check_admin_key(offered: str | None, settings: StoreSettings) -> None:
    """Raise 503 when no admin key is configured, 401 when ``offered`` is missing or wrong."""
    configured = settings.admin_key_sha256
    if not configured:
        raise HTTPException(503, "The status page is off: set EARSHOT_ADMIN_KEY_SHA256.")
    if not offered or not hmac.compare_digest(hash_admin_key(offered), configured.lower()):
        raise HTTPException(401, f"Send the admin key in the {ADMIN_KEY_HEADER} header.")


def broker_vhost(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"


def queue_row(name: str, found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One work queue as the page shows it: its own counters and rates, its retry and DLQ depths."""
    queue = found.get(name, {})
    stats = queue.get("message_stats") or {}
    return {
        "name": name,
        "ready": queue.get("messages_ready", 0),
        "unacked": queue.get("messages_unacknowledged", 0),
        "consumers": queue.get("consumers", 0),
        "rates": {rate: (stats.get(field) or {}).get("rate", 0.0) for rate, field in _RATES.items()},
        "retry_waiting": found.get(retry_queue(name), {}).get("messages", 0),
        "dead_letters": found.get(dead_letter_queue(name), {}).get("messages", 0),
        "dead_letter_queue": dead_letter_queue(name),
    }


def work_queue_names() -> list[str]:
    names = {queue.name for queue in QUEUES}
    return [queue.name for queue in QUEUES if dead_letter_queue(queue.name) in names]


async def queue_overview(settings: StoreSettings) -> dict[str, Any]:
    """The work queues from the management API, or the reason it could not be read."""
    vhost = quote(broker_vhost(settings.amqp_url), safe="")
    auth = (settings.management_user, settings.management_password.get_secret_value())
    try:
        async with httpx.AsyncClient(
            base_url=settings.management_url, auth=auth, timeout=MANAGEMENT_TIMEOUT_S
        ) as api:
            response = await api.get(f"/api/queues/{vhost}")
            response.raise_for_status()
    except httpx.HTTPError as error:
        return {"queues": [], "broker_error": f"RabbitMQ management API: {type(error).__name__}: {error}"}
    found = {queue["name"]: queue for queue in response.json()}
    return {"queues": [queue_row(name, found) for name in work_queue_names()], "broker_error": None}


async def database_overview(session: AsyncSession) -> dict[str, Any]:
    """Throughput and latency per bucket of the last hour, model versions, recent errors."""
    last_hour = await session.execute(LAST_HOUR_SQL)
    models = await session.execute(MODELS_SQL)
    errors = await session.execute(ERRORS_SQL, {"chars": ERROR_MESSAGE_CHARS, "limit": RECENT_ERRORS})
    return {
        "last_hour": [
            {
                "kind": row.kind,
                "minutes_ago": row.bucket * BUCKET_MINUTES,
                "jobs": row.jobs,
                "p50_s": row.p50_s,
                "p95_s": row.p95_s,
            }
            for row in last_hour
        ],  # fmt: skip
        "models": [dict(row._mapping) for row in models],
        "recent_errors": [dict(row._mapping) for row in errors],
    }


def ops_router(sessions: async_sessionmaker[AsyncSession], settings: StoreSettings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    page = files("services.store").joinpath("ops.html").read_text()

    @router.get("/ops")
    async def ops_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @router.get("/ops/status")
    async def ops_status(x_admin_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        check_admin_key(x_admin_key, settings)
        async with sessions() as session:
            database = await database_overview(session)
        return {**await queue_overview(settings), **database, "bucket_minutes": BUCKET_MINUTES}

    return router
