"""The store's /ops page in headless Chromium against a real store, broker and database: it shows the queues,
the dead-letter depths, recent errors, the last hour and the model versions, and only with the admin key."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from services.common.contracts import JobFailed
from services.common.topology import (
    DEAD_LETTER_EXCHANGE,
    JOB_FAILED_KEY,
    KWS_RESULT_KEY,
    KWS_SCAN_QUEUE,
    RESULTS_EXCHANGE,
    STORE_RESULTS_QUEUE,
    dead_letter_queue,
)
from services.store.ops import new_admin_key, work_queue_names
from tests.services.harness import BrokerProbe, DatabaseProbe, eventually, wait_until_serving
from tests.services.messages import kws_done, unique_track_id

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]  # fmt: skip
MODEL_VERSION = "9.9.9+ops-page-test"


class Tables(HTMLParser):
    """The text of every table row, by table id: {"queues": [["kws.scan", "0", …], …], …}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def chromium(url: str, tmp_path: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000", *mode, url],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip


def loaded_tables(url: str, tmp_path: Path, attempts: int = 3) -> dict[str, list[list[str]]]:
    """The page's tables once its script has shown a status (a loaded machine may need another try)."""
    for _ in range(attempts):
        dumped = chromium(url, tmp_path, "--dump-dom")
        assert dumped.returncode == 0, dumped.stderr[-3000:]
        if re.search(r'id="status"[^>]*>Updated ', dumped.stdout):
            parsed = Tables()
            parsed.feed(dumped.stdout)
            return parsed.tables
    raise AssertionError(f"the page never showed the status; last DOM:\n{dumped.stdout[-3000:]}")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by `make setup`")
async def test_the_ops_page_shows_queues_dead_letters_errors_throughput_and_models(
    start_service, broker: BrokerProbe, database: DatabaseProbe, store_url: str, tmp_path: Path
) -> None:
    admin_key, admin_key_sha256 = new_admin_key()
    store = start_service("store", EARSHOT_ADMIN_KEY_SHA256=admin_key_sha256)
    await broker.wait_for_consumers(STORE_RESULTS_QUEUE, started=store)
    await wait_until_serving(store_url, store)

    # A stored answer (its model version), a job the worker gave up on, two dead-lettered kws jobs.
    answered = kws_done(unique_track_id()).model_copy(update={"model_version": MODEL_VERSION})
    await broker.publish(answered, RESULTS_EXCHANGE, KWS_RESULT_KEY, message_id=answered.track_id)
    failure = JobFailed(job_kind="kws.scan", key=unique_track_id(), error_code="ops_page_test_failure",
                        error_message="the model raised <script>alert(1)</script>", attempts=3)  # fmt: skip
    await broker.publish(failure, RESULTS_EXCHANGE, JOB_FAILED_KEY, message_id=f"failed:{failure.key}")
    dlq = dead_letter_queue(KWS_SCAN_QUEUE)
    for index in range(2):
        await broker.publish_raw(b"{}", DEAD_LETTER_EXCHANGE, dlq, message_id=f"dead-{index}")
    await eventually(lambda: _errors_row(database, failure.key), 20, "the store to record the failure")

    async with httpx.AsyncClient(base_url=store_url, timeout=10) as client:
        assert (await client.get("/ops/status")).status_code == 401
        assert (await client.get("/ops/status", headers={"X-Admin-Key": "wrong"})).status_code == 401

        async def dead_letters_visible() -> bool:
            status = (await client.get("/ops/status", headers={"X-Admin-Key": admin_key})).json()
            rows = {queue["name"]: queue for queue in status["queues"]}
            consumers = rows.get(STORE_RESULTS_QUEUE, {}).get("consumers")
            return rows.get(KWS_SCAN_QUEUE, {}).get("dead_letters") == 2 and consumers == 1

        # The management API refreshes its queue counters every few seconds.
        await eventually(dead_letters_visible, 30, "the management API to count dead letters and consumers")

    url = f"{store_url}/ops#key={admin_key}"
    tables = loaded_tables(url, tmp_path)

    assert [row[0] for row in tables["queues"]] == work_queue_names()
    store_row = next(row for row in tables["queues"] if row[0] == STORE_RESULTS_QUEUE)
    # The store is consuming store.results. Not "== 1": the management API's counts lag, and a store that
    # an earlier test stopped a moment ago may still be listed.
    assert int(store_row[3]) >= 1
    dead = {row[0]: row[1] for row in tables["dead-letters"]}
    assert dead[dead_letter_queue(KWS_SCAN_QUEUE)] == "2"
    assert any(row[:3] == ["kws.scan", MODEL_VERSION, "1"] for row in tables["models"])
    error_row = next(row for row in tables["errors"] if row[3] == "ops_page_test_failure")
    assert error_row[4] == "the model raised <script>alert(1)</script>"  # shown as text, never run
    # The answer stored a moment ago counts in the newest 5-minute bucket (other tests may add theirs).
    assert any(row[:2] == ["kws.scan", "0–5"] and int(row[2]) >= 1 for row in tables["last-hour"])

    screenshot = tmp_path / "ops.png"
    shot = chromium(url, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,1500")
    assert shot.returncode == 0 and screenshot.stat().st_size > 20_000, shot.stderr[-3000:]
    if keep := os.environ.get("EARSHOT_OPS_SCREENSHOT"):
        shutil.copy(screenshot, keep)

    without_key = chromium(f"{store_url}/ops", tmp_path, "--dump-dom")
    assert "Enter the admin key to see the status." in without_key.stdout
    assert MODEL_VERSION not in without_key.stdout


async def _errors_row(database: DatabaseProbe, key: str) -> bool:
    return await database.count("errors", "key = :k", k=key) == 1
