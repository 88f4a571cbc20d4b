"""What every use case needs: the database gateway, the hub, settings, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from runplane.domain.auth import CredentialKind, Principal, Scope
from runplane.domain.events import DomainEvent
from runplane.service.hub import Hub
from runplane.service.limits import FailureLimiter
from runplane.service.principals import PrincipalCache
from runplane.service.targets import TargetCache
from runplane.settings import Settings
from runplane.store.database import Database


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


@dataclass
class Context:
    """Shared by the services of one server process."""

    db: Database
    settings: Settings
    workspace_id: str = ""
    hub: Hub = field(default_factory=Hub)
    targets: TargetCache = field(default_factory=TargetCache)
    principals: PrincipalCache = field(default_factory=PrincipalCache)
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    clock: Callable[[], datetime] = utcnow

    def system(self) -> Principal:
        """The node itself (demo, embedded runtime): admin of the default workspace."""
        return Principal(
            workspace_id=self.workspace_id,
            credential_id="system",
            kind=CredentialKind.API_TOKEN,
            name="system",
            scopes=frozenset({Scope.ADMIN}),
        )

    def publish(self, events: list[DomainEvent]) -> None:
        """Deliver committed events: drop stale cache entries, then wake waiters."""
        self.targets.observe(events)
        self.principals.observe(events)
        self.hub.publish(events)

    def resync(self) -> None:
        """After events may have been missed (the listener reconnected): drop every
        cached entry and wake every waiter to re-read."""
        self.targets.clear()
        self.principals.clear()
        self.hub.wake_all()
