"""What every use case needs: the database gateway, the hub, settings, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from runplane.domain.events import DomainEvent
from runplane.service.hub import Hub
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
    clock: Callable[[], datetime] = utcnow

    def publish(self, events: list[DomainEvent]) -> None:
        """Deliver committed events: drop stale cache entries, then wake waiters."""
        self.targets.observe(events)
        self.hub.publish(events)
