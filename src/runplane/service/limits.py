"""Failed authentication is rate limited per client address and per claimed username.

Counters live in the database (fixed windows), so the limit holds across API
replicas. A key with `limit` failures in its window is refused (429 with
Retry-After) until the window ends, before its credential is even checked:
otherwise a blocked caller could keep guessing and learn from a success.
Checking costs a query only once a second per key (a short local cache),
so the hot path of authenticated triggers stays cheap.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import TYPE_CHECKING

from runplane.domain import errors
from runplane.store import auth_failures as store

if TYPE_CHECKING:  # the context holds the limiter
    from runplane.service.context import Context

DEFAULT_LIMIT = 10
DEFAULT_WINDOW_SECONDS = 60.0

CHECK_CACHE_SECONDS = 1.0
MAX_CACHED_KEYS = 10_000


class FailureLimiter:
    """Refuses keys over the failure limit; records failures."""

    def __init__(
        self, limit: int = DEFAULT_LIMIT, window_seconds: float = DEFAULT_WINDOW_SECONDS
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._checked: dict[tuple[str, ...], tuple[float, datetime | None]] = {}

    async def check(self, ctx: Context, keys: list[str]) -> None:
        """TooManyRequests while any of `keys` is blocked."""
        keys = _storable(keys)
        now = ctx.clock()
        cache_key = tuple(keys)
        hit = self._checked.get(cache_key)
        if hit is not None and hit[0] > time.monotonic():
            until = hit[1]
        else:
            until = await ctx.db.read(
                lambda c: store.blocked_until(c, keys, now, self.limit, self.window_seconds)
            )
            if len(self._checked) >= MAX_CACHED_KEYS:
                self._checked = {}
            self._checked[cache_key] = (time.monotonic() + CHECK_CACHE_SECONDS, until)
        if until is not None and until > now:
            raise _too_many(until, now)

    async def fail(self, ctx: Context, keys: list[str]) -> None:
        """Count a failed attempt; TooManyRequests once the limit is reached."""
        keys = _storable(keys)
        now = ctx.clock()
        counts = await ctx.db.write(
            lambda tx: store.record_failure(tx, keys, now, self.window_seconds)
        )
        if max(counts.values()) >= self.limit:
            until = await ctx.db.read(
                lambda c: store.blocked_until(c, keys, now, self.limit, self.window_seconds)
            )
            self._checked[tuple(keys)] = (time.monotonic() + CHECK_CACHE_SECONDS, until)


def _storable(keys: list[str]) -> list[str]:
    """Keys the database can store: lone surrogates escaped, length bounded."""
    return [k.encode("utf-8", "backslashreplace").decode()[:300] for k in keys]


def _too_many(until: datetime, now: datetime) -> errors.TooManyRequests:
    retry = max(1, math.ceil((until - now).total_seconds()))
    return errors.TooManyRequests(
        f"Too many failed authentication attempts: try again in {retry} s.", retry_after=retry
    )
