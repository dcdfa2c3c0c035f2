"""Metrics and logs of real running services: a job of each kind moves the counters and histograms of the
service it passes through, and every service's JSON log lines name the job's request_id or track_id."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.classifier.analysis import CryClassifier
from services.common.topology import (
    CRY_CLASSIFY_QUEUE,
    GATEWAY_REPLIES_QUEUE,
    JOBS_EXCHANGE,
    KWS_SCAN_QUEUE,
    STORE_RESULTS_QUEUE,
)
from services.kws.spotter import KeywordSpotter
from tests.services.harness import BrokerProbe, DatabaseProbe, eventually, free_port, wait_until_serving
from tests.services.messages import cry_job

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CRY_SAMPLE = SAMPLES / "cry" / "hungry-donateacry.ogg"
PLAYBACK_SAMPLE = SAMPLES / "playback" / "keyword.flac"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, keyed by (name, sorted labels)."""
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= set(found))


def json_lines(log_path: Path) -> list[dict]:
    lines = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def test_jobs_move_every_services_metrics_and_logs_carry_their_ids(
    start_service, broker: BrokerProbe, database: DatabaseProbe, api_key: str, store_url: str
) -> None:
    kws_port, cry_port, gateway_port = free_port(), free_port(), free_port()
    store = start_service("store")
    kws = start_service("kws", EARSHOT_METRICS_PORT=str(kws_port))
    classifier = start_service("classifier", EARSHOT_METRICS_PORT=str(cry_port))
    gateway = start_service("gateway", EARSHOT_HTTP_PORT=str(gateway_port), EARSHOT_TELEGRAM_TOKEN="")
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE, started=store)
    await broker.wait_for_consumers(KWS_SCAN_QUEUE, started=kws)
    await broker.wait_for_consumers(CRY_CLASSIFY_QUEUE, started=classifier)
    await wait_until_serving(store_url, store)
    gateway_url = f"http://127.0.0.1:{gateway_port}"

    async def gateway_ready() -> bool:
        assert gateway.running(), gateway.output()[-3000:]
        try:
            return httpx.get(f"{gateway_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(gateway_ready, 60, "the gateway")

    # A client's track through the gateway, a parent's voice note as the bot would publish it, a poison job.
    headers = {"X-API-Key": api_key, "X-Request-ID": "ops-test-request-1"}
    async with httpx.AsyncClient(timeout=40) as client:
        posted = await client.post(
            f"{gateway_url}/v1/tracks", content=PLAYBACK_SAMPLE.read_bytes(),
            headers={**headers, "Content-Type": "audio/flac"},
        )  # fmt: skip
        assert posted.status_code == 202, posted.text
        assert posted.headers["x-request-id"] == "ops-test-request-1"
        track_id = posted.json()["track_id"]
        job = cry_job(CRY_SAMPLE.read_bytes())
        await broker.publish(job, JOBS_EXCHANGE, CRY_CLASSIFY_QUEUE, message_id=job.request_id)
        await broker.publish_raw(b"{not a job", JOBS_EXCHANGE, KWS_SCAN_QUEUE, message_id="ops-poison")
        answer = await client.get(
            f"{store_url}/v1/tracks/{track_id}/skip-kws", params={"wait": 30}, headers={"X-API-Key": api_key}
        )
        assert answer.status_code == 200, answer.text

    async def cry_stored() -> bool:
        return await database.count("predictions", "request_id = :r", r=job.request_id) == 1

    await eventually(cry_stored, 60, "the cry result in PostgreSQL")
    await eventually(lambda: _reply_ready(broker), 30, "the reply on gateway.replies")

    kws_metrics = scrape(f"http://127.0.0.1:{kws_port}/metrics")
    assert value(kws_metrics, "earshot_jobs_received_total", kind="kws.scan") == 2
    assert value(kws_metrics, "earshot_jobs_processed_total", kind="kws.scan", status="done") == 1
    assert value(kws_metrics, "earshot_jobs_failed_total", kind="kws.scan", reason="invalid_message") == 1
    for stage in ("decode", "features", "inference"):
        assert value(kws_metrics, "earshot_job_stage_seconds_count", kind="kws.scan", stage=stage) == 1
    assert value(kws_metrics, "earshot_job_queue_wait_seconds_count", kind="kws.scan") == 1
    version = KeywordSpotter.load().metadata.version
    assert value(kws_metrics, "earshot_model_info", kind="kws.scan", version=version) == 1

    cry_metrics = scrape(f"http://127.0.0.1:{cry_port}/metrics")
    assert value(cry_metrics, "earshot_jobs_processed_total", kind="cry.classify") == 1
    assert value(cry_metrics, "earshot_job_stage_seconds_count", kind="cry.classify", stage="inference") == 1
    assert value(cry_metrics, "earshot_job_processing_seconds_sum", kind="cry.classify") > 0
    cry_version = CryClassifier.load().metadata.version
    assert value(cry_metrics, "earshot_model_info", kind="cry.classify", version=cry_version) == 1

    store_metrics = scrape(f"{store_url}/metrics")
    assert value(store_metrics, "earshot_result_write_seconds_count", contract="KwsResult.v1") == 1
    assert value(store_metrics, "earshot_result_write_seconds_count", contract="CryResult.v1") == 1
    assert value(store_metrics, "earshot_job_end_to_end_seconds_count", kind="kws.scan") == 1
    route = "/v1/tracks/{track_id}/skip-kws"
    assert value(store_metrics, "earshot_http_requests_total", route=route, status="200") == 1
    assert value(store_metrics, "earshot_http_request_duration_seconds_count", route=route) == 1

    gateway_metrics = scrape(f"{gateway_url}/metrics")
    assert value(
        gateway_metrics, "earshot_http_requests_total", service="gateway", route="/v1/tracks", status="202"
    ) == 1  # fmt: skip

    # Every service the track passed through logged it under its track_id; the classifier and the store
    # logged the voice note under its request_id; the gateway's lines carry the client's X-Request-ID.
    for service in (gateway, kws, store):
        lines = json_lines(service.log_path)
        assert any(line.get("track_id") == track_id for line in lines), (service.name, lines[-5:])
    for service in (classifier, store):
        lines = json_lines(service.log_path)
        assert any(line.get("request_id") == job.request_id for line in lines), (service.name, lines[-5:])
    gateway_lines = json_lines(gateway.log_path)
    assert any(line.get("request_id") == "ops-test-request-1" for line in gateway_lines)
    assert {line["service"] for line in json_lines(kws.log_path)} == {"kws"}


async def _reply_ready(broker: BrokerProbe) -> bool:
    return (await broker.ready_and_consumers(GATEWAY_REPLIES_QUEUE))[0] >= 1
