"""Things that happened in a committed transaction, for wake-ups.

The store emits them inside a transaction; they are delivered only after it
committed (in-process on SQLite; LISTEN/NOTIFY will carry them across replicas).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExecutionChanged:
    """An execution's status or lease changed."""

    execution_id: str
    status: str


@dataclass(frozen=True)
class WorkAvailable:
    """An execution became claimable in an environment."""

    environment_id: str


@dataclass(frozen=True)
class LogAppended:
    """A log chunk was appended to an execution."""

    execution_id: str


@dataclass(frozen=True)
class CatalogChanged:
    """A deployment of a process was created, changed or removed."""

    process_id: str


@dataclass(frozen=True)
class CredentialsChanged:
    """A credential was revoked or its secret rotated."""

    workspace_id: str


DomainEvent = ExecutionChanged | WorkAvailable | LogAppended | CatalogChanged | CredentialsChanged
