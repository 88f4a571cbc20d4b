"""Who a presented secret is, cached briefly so a request's credential check costs no query."""

from __future__ import annotations

import time
from collections.abc import Callable

from runplane.domain.auth import Principal
from runplane.domain.events import CredentialsChanged, DomainEvent

PRINCIPAL_TTL_SECONDS = 5.0
MAX_CACHED_PRINCIPALS = 10_000


class PrincipalCache:
    """digest → principal, briefly, so a request's credential check costs no query.

    Dropped whole when any credential is revoked or rotated through this server
    (`CredentialsChanged`, delivered before that call answers) or, on PostgreSQL,
    through another replica (the same event by LISTEN/NOTIFY); entries live at
    most PRINCIPAL_TTL_SECONDS, which bounds expiry and lost notifications.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, tuple[float, Principal]] = {}

    def get(self, digest: str) -> Principal | None:
        hit = self._items.get(digest)
        if hit is None or hit[0] <= self._clock():
            return None
        return hit[1]

    def put(self, digest: str, principal: Principal) -> None:
        if len(self._items) >= MAX_CACHED_PRINCIPALS:
            self._items = {}
        self._items[digest] = (self._clock() + PRINCIPAL_TTL_SECONDS, principal)

    def clear(self) -> None:
        """Drop every entry."""
        self._items = {}

    def observe(self, events: list[DomainEvent]) -> None:
        """Drop everything when a credential was revoked or rotated."""
        if any(isinstance(ev, CredentialsChanged) for ev in events):
            self._items = {}
