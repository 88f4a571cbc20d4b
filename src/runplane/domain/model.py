"""The nouns, as plain values the store hands to the service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runplane.domain.states import Status


@dataclass(frozen=True)
class Environment:
    """A stage inside a workspace (`sandbox`, `production`) that runtimes serve."""

    id: str
    workspace_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Process:
    """A named automation with versions."""

    id: str
    workspace_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Version:
    """An immutable, content-addressed bundle of a process and what it declares."""

    id: str
    process_id: str
    process_name: str
    number: int
    content_hash: str
    spec: dict[str, Any]
    bundle_bytes: int
    created_at: datetime


@dataclass(frozen=True)
class Deployment:
    """Process P, version V, deployed to environment E with a run configuration."""

    id: str
    process_id: str
    process_name: str
    environment_id: str
    environment_name: str
    version_id: str
    version_number: int
    input_arguments: dict[str, Any]  # secrets masked
    invokable: bool
    concurrency_limit: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Execution:
    """One run of a deployed process version."""

    id: str
    workspace_id: str
    process_id: str
    process_name: str
    version_id: str
    version_number: int
    deployment_id: str
    environment_id: str
    environment_name: str
    client_execution_id: str
    status: Status
    attempt: int
    max_attempts: int
    timeout_seconds: float
    inputs: dict[str, Any]  # effective inputs, secrets masked
    result: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    runtime_id: str | None
    runtime_name: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    input_fingerprint: str = ""

    @property
    def duration_ms(self) -> int | None:
        """Wall time of the last attempt, or None before it started."""
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            return None
        return int((end - self.started_at).total_seconds() * 1000)


@dataclass(frozen=True)
class Claim:
    """A lease on one execution, handed to a runtime: everything it needs to run it."""

    execution_id: str
    attempt: int
    lease_token: int
    lease_expires_at: datetime
    version_id: str
    content_hash: str
    spec: dict[str, Any]
    inputs: dict[str, Any]  # effective inputs with secrets in plain text
    secret_names: tuple[str, ...]
    timeout_seconds: float
    # a Robocorp robot's run: the ids and token its work-items calls use (RC_* variables)
    robot_run: dict[str, str] | None = None


@dataclass(frozen=True)
class Runtime:
    """A worker agent registered to serve an environment (or all, when embedded)."""

    id: str
    workspace_id: str
    name: str
    environment_id: str | None
    slots: int
    labels: dict[str, str]
    version: str
    state: str
    started_at: datetime
    last_heartbeat_at: datetime
    busy: int = 0  # executions it is running (listings only)


@dataclass(frozen=True)
class LogChunk:
    """A piece of an execution's log, in order of `id`."""

    id: int
    attempt: int
    created_at: datetime
    text: str


@dataclass(frozen=True)
class ExecutionEvent:
    """A status change of an execution, as the event stream hands it out (`seq` is its id)."""

    seq: int
    execution_id: str
    client_execution_id: str
    process_name: str
    version_number: int
    environment_name: str
    status: Status
    attempt: int
    error_code: str | None
    at: datetime


@dataclass
class Page:
    """One page of a keyset-paginated listing."""

    items: list[Any] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass(frozen=True)
class WorkItemFile:
    """A file uploaded to a work item."""

    id: str
    name: str
    size: int


@dataclass(frozen=True)
class WorkItem:
    """A payload for one run of a process (Robocorp's work item). Its run is an
    execution; its state follows that execution's status."""

    id: str
    workspace_id: str
    process_id: str
    process_name: str
    execution_id: str | None
    execution_status: Status | None  # None: waiting for a run
    payload: Any  # secret parameters masked
    created_at: datetime
    queued_at: datetime | None
    state_at: datetime  # when the state last changed
    files: tuple[WorkItemFile, ...] = ()
    released: str | None = None  # COMPLETED / FAILED, as a robot released it in its run
    exception: dict[str, Any] | None = None  # the exception it was released FAILED with
    parent_id: str | None = None  # an output item's input item
