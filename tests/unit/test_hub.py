"""The hub: who is woken by what, and what a waiter learns of the change."""

from __future__ import annotations

import asyncio

import pytest

from runplane.domain.events import ExecutionChanged, LogAppended, WorkAvailable
from runplane.service.hub import (
    RELIABLE_FALLBACK_SECONDS,
    UNRELIABLE_FALLBACK_SECONDS,
    Hub,
    wait_for,
)


def test_a_waiter_learns_the_status_its_execution_changed_to() -> None:
    async def main() -> None:
        hub = Hub()
        async with hub.execution_changes("e1") as mine, hub.execution_changes("e2") as other:
            hub.publish([ExecutionChanged("e1", "running")])
            assert mine.is_set() and mine.status == "running"
            assert not other.is_set() and other.status is None
            hub.publish([ExecutionChanged("e1", "running"), ExecutionChanged("e1", "succeeded")])
            assert mine.status == "succeeded"  # the latest
            hub.wake_all()  # events may have been missed: the status is unknown
            assert mine.status is None and other.is_set()

    asyncio.run(main())


def test_waiters_re_read_rarely_only_where_every_change_reaches_the_hub() -> None:
    assert Hub().fallback_seconds == RELIABLE_FALLBACK_SECONDS
    assert Hub(reliable=False).fallback_seconds == UNRELIABLE_FALLBACK_SECONDS < 2


def test_a_wait_cancelled_as_its_event_is_set_ends_cancelled() -> None:
    # The node's stop cancels the embedded runtime's claim right after a write that woke
    # it; a wait that answered instead of ending let the claim run on for its 30 s.
    async def main() -> None:
        ev = asyncio.Event()
        waiting = asyncio.create_task(wait_for(ev, 30))
        for _ in range(3):
            await asyncio.sleep(0)  # the wait has begun
        ev.set()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())


def test_a_closed_hub_wakes_every_waiter() -> None:
    async def main() -> None:
        hub = Hub()
        async with (
            hub.execution_changes("e1") as execution,
            hub.log_changes("e1") as log,
            hub.work() as work,
            hub.any_execution_changes() as any_execution,
        ):
            hub.close()
            assert hub.closed
            assert all(w.is_set() for w in (execution, log, work, any_execution))

    asyncio.run(main())


def test_a_drained_look_holds_until_news_that_may_make_work_claimable() -> None:
    hub = Hub()
    assert hub.drained_for("rt", 1.0) == 0  # never looked: look
    for news in (
        lambda: hub.publish([WorkAvailable("env")]),  # a trigger or a retry
        lambda: hub.publish([ExecutionChanged("e1", "succeeded")]),  # capacity freed
        lambda: hub.publish([ExecutionChanged("e1", "cancelled")]),
        hub.wake_claimers,
        hub.wake_all,
    ):
        hub.note_drained("rt", hub.work_news)
        assert 0.9 < hub.drained_for("rt", 1.0) <= 1.0
        assert hub.drained_for("other-runtime", 1.0) == 0
        hub.publish([ExecutionChanged("e1", "running"), LogAppended("e1")])  # no news
        assert hub.drained_for("rt", 1.0) > 0
        news()
        assert hub.drained_for("rt", 1.0) == 0


def test_a_drained_look_begun_before_news_does_not_hold() -> None:
    hub = Hub()
    before = hub.work_news  # the look starts...
    hub.publish([WorkAvailable("env")])  # ...a trigger commits while it runs...
    hub.note_drained("rt", before)  # ...and it found nothing: the trigger's work is not seen
    assert hub.drained_for("rt", 1.0) == 0


def test_a_drained_look_expires_and_never_holds_where_changes_go_unheard() -> None:
    hub = Hub()
    hub.note_drained("rt", hub.work_news)
    assert hub.drained_for("rt", 0.0) == 0  # executions come due with no news: look again
    unheard = Hub(reliable=False)
    unheard.note_drained("rt", unheard.work_news)
    assert unheard.drained_for("rt", 1.0) == 0
    hub.note_drained("rt", hub.work_news)
    hub.close()
    assert hub.drained_for("rt", 1.0) == 0
