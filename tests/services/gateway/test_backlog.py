"""The queue-wait estimate: pure arithmetic on a measured ready count and service rate."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.contracts import utc_now
from services.gateway.backlog import MIN_WAITING_WITHOUT_RATE, Backlog, service_rate
from services.store.repository import RecentResults


def test_the_rate_is_results_over_the_time_since_the_first_of_them() -> None:
    now = utc_now()
    assert service_rate(RecentResults(count=30, first_at=now - timedelta(seconds=60)), now) == 0.5
    # A burst is measured over at least a few seconds, never as an instant.
    assert service_rate(RecentResults(count=5, first_at=now), now) == 1.0
    assert service_rate(RecentResults(count=2, first_at=now - timedelta(seconds=9)), now) is None
    assert service_rate(RecentResults(count=0, first_at=None), now) is None


def test_the_wait_counts_every_job_ahead_and_the_new_one() -> None:
    assert Backlog(waiting=9, consumers=2, rate_per_s=0.5).estimated_wait_s == 20.0
    assert Backlog(waiting=9, consumers=2, rate_per_s=None).estimated_wait_s is None


@pytest.mark.parametrize(
    ("backlog", "backed_up"),
    [
        (Backlog(waiting=0, consumers=0, rate_per_s=None), False),
        (Backlog(waiting=10, consumers=1, rate_per_s=1.0), False),  # 11 s: not worth a word
        (Backlog(waiting=40, consumers=1, rate_per_s=1.0), True),
        (Backlog(waiting=1, consumers=1, rate_per_s=None), False),  # an idle worker picks it up now
        (Backlog(waiting=MIN_WAITING_WITHOUT_RATE, consumers=1, rate_per_s=None), True),
        (Backlog(waiting=1, consumers=0, rate_per_s=None), True),  # nobody consumes the queue
    ],
)
def test_the_parent_hears_of_the_queue_only_when_it_is_backed_up(backlog: Backlog, backed_up: bool) -> None:
    assert backlog.backed_up(notice_s=30) == backed_up
