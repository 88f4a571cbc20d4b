"""Every legal and illegal transition of the execution state machine."""

from __future__ import annotations

import itertools

import pytest

from runplane.domain.errors import InvalidTransition
from runplane.domain.states import TERMINAL, Event, Status, next_status, retry_backoff_seconds

LEGAL = {
    (Status.QUEUED, Event.CLAIM): Status.RUNNING,
    (Status.QUEUED, Event.CANCEL): Status.CANCELLED,
    (Status.RUNNING, Event.SUCCEED): Status.SUCCEEDED,
    (Status.RUNNING, Event.FAIL): Status.FAILED,
    (Status.RUNNING, Event.TIME_OUT): Status.TIMED_OUT,
    (Status.RUNNING, Event.LOSE): Status.FAILED,
    (Status.RUNNING, Event.CANCEL): Status.CANCELLED,
}
ALL_PAIRS = list(itertools.product(Status, Event))


@pytest.mark.parametrize(("current", "event"), list(LEGAL))
def test_legal_transition_reaches_its_target(current: Status, event: Event) -> None:
    assert next_status(current, event) is LEGAL[(current, event)]


@pytest.mark.parametrize(("current", "event"), [p for p in ALL_PAIRS if p not in LEGAL])
def test_illegal_transition_is_refused(current: Status, event: Event) -> None:
    with pytest.raises(InvalidTransition):
        next_status(current, event)


@pytest.mark.parametrize(("status", "event"), [p for p in ALL_PAIRS if p[0] in TERMINAL])
def test_terminal_states_never_change(status: Status, event: Event) -> None:
    with pytest.raises(InvalidTransition):
        next_status(status, event, attempt=1, max_attempts=5)


@pytest.mark.parametrize("event", [Event.FAIL, Event.TIME_OUT, Event.LOSE])
def test_failed_attempt_with_retries_left_is_requeued(event: Event) -> None:
    assert next_status(Status.RUNNING, event, attempt=1, max_attempts=2) is Status.QUEUED


@pytest.mark.parametrize("event", [Event.FAIL, Event.TIME_OUT, Event.LOSE])
def test_last_attempt_is_not_requeued(event: Event) -> None:
    assert (
        next_status(Status.RUNNING, event, attempt=2, max_attempts=2)
        is LEGAL[(Status.RUNNING, event)]
    )


@pytest.mark.parametrize("event", [Event.FAIL, Event.TIME_OUT, Event.LOSE])
def test_cancel_requested_execution_is_never_retried(event: Event) -> None:
    got = next_status(Status.RUNNING, event, attempt=1, max_attempts=3, cancel_requested=True)
    assert got is Status.CANCELLED


def test_success_is_success_even_with_retries_left() -> None:
    assert next_status(Status.RUNNING, Event.SUCCEED, attempt=1, max_attempts=3) is Status.SUCCEEDED


def test_backoff_grows_exponentially_and_is_capped() -> None:
    assert [retry_backoff_seconds(a) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_backoff_seconds(30) == 300.0
