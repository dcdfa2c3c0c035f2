"""The streams' scan batcher without the network: scans that wait for a busy thread go to it together."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.gateway.streams import ScanBatcher


async def test_scans_that_wait_for_a_busy_thread_go_to_it_together_and_fail_alone():
    release = threading.Event()

    def first() -> str:
        release.wait(5)
        return "first"

    def failing() -> str:
        raise ValueError("bad chunk")

    with ThreadPoolExecutor(1) as executor:
        batcher = ScanBatcher(executor, threads=1)
        running = asyncio.ensure_future(batcher.run(first))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(batcher.run(work)) for work in (lambda: "second", failing)]
        await asyncio.sleep(0.05)
        assert (batcher.running, len(batcher.waiting)) == (1, 2), "both wait for the one busy thread"
        release.set()
        assert await running == "first"
        assert await waiting[0] == "second"
        with pytest.raises(ValueError, match="bad chunk"):
            await waiting[1]
        assert (batcher.running, batcher.waiting) == (0, [])
