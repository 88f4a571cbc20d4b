"""The execution state machine: THE one place that decides a status.

```
queued ──claim──▶ running ──▶ succeeded
   │                 │  └──▶ failed      (process error, or runtime lost and no retry left)
   │                 │  └──▶ timed_out   (exceeded its timeout; process killed)
   └──cancel──▶ cancelled ◀──cancel── running (process killed, then reported)
running ──failed, timed out or lease expired, retries left──▶ queued (attempt + 1)
```

The store asks this module for the next status and writes it with the
expected previous status in its WHERE clause, so a race surfaces as an error
rather than a silent overwrite. Terminal states never change again.
"""

from __future__ import annotations

from enum import StrEnum

from runplane.domain.errors import InvalidTransition


class Status(StrEnum):
    """Where an execution is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True when the status can never change again."""
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT, Status.CANCELLED})


class Event(StrEnum):
    """What happened to an execution; the input of the state machine."""

    CLAIM = "claim"  # a runtime took a lease on it
    SUCCEED = "succeed"  # the attempt returned a result
    FAIL = "fail"  # the attempt raised, exited non-zero or returned a bad result
    TIME_OUT = "time_out"  # the attempt outlived its timeout and was killed
    LOSE = "lose"  # the lease expired: the runtime vanished mid-attempt
    CANCEL = "cancel"  # someone asked for it to stop


# Events that end an attempt early and may be retried when retries remain.
_RETRYABLE = frozenset({Event.FAIL, Event.TIME_OUT, Event.LOSE})

_TABLE: dict[tuple[Status, Event], Status] = {
    (Status.QUEUED, Event.CLAIM): Status.RUNNING,
    (Status.QUEUED, Event.CANCEL): Status.CANCELLED,
    (Status.RUNNING, Event.SUCCEED): Status.SUCCEEDED,
    (Status.RUNNING, Event.FAIL): Status.FAILED,
    (Status.RUNNING, Event.TIME_OUT): Status.TIMED_OUT,
    (Status.RUNNING, Event.LOSE): Status.FAILED,
    (Status.RUNNING, Event.CANCEL): Status.CANCELLED,
}

RUNTIME_LOST = "RUNTIME_LOST"
"""Error code of an execution whose runtime vanished and that had no retry left."""


def next_status(
    current: Status,
    event: Event,
    *,
    attempt: int = 1,
    max_attempts: int = 1,
    cancel_requested: bool = False,
) -> Status:
    """The status after `event`, or InvalidTransition when the event is illegal now.

    A running attempt that fails, times out or loses its runtime goes back to
    `queued` while attempts remain (`attempt < max_attempts`), unless someone
    asked for a cancel meanwhile: a cancelled execution is never retried.
    """
    target = _TABLE.get((current, event))
    if target is None:
        raise InvalidTransition(
            f"An execution in status {current.value!r} cannot {event.value.replace('_', ' ')}.",
            current=current.value,
            event=event.value,
        )
    if current is Status.RUNNING and event in _RETRYABLE:
        if cancel_requested:
            return Status.CANCELLED
        if attempt < max_attempts:
            return Status.QUEUED
    return target


def retry_backoff_seconds(
    attempt: int, base_seconds: float = 1.0, cap_seconds: float = 300.0
) -> float:
    """Exponential backoff before attempt `attempt + 1` starts: 1 s, 2 s, 4 s, … capped."""
    return float(min(cap_seconds, base_seconds * (2 ** max(0, attempt - 1))))
