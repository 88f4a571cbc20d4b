"""Where triggers go, cached: the deployment, its parsed spec and run configuration.

Every trigger needs its process's deployment and declared parameters. Reading
and parsing them per trigger was the largest cost of accepting one
(docs/benchmarks.md), so they are cached per (workspace, process, environment).
An entry is dropped as soon as a deploy or undeploy of that process commits
(`CatalogChanged`, delivered before the deploy's own response), and lives at
most TARGET_TTL_SECONDS in any case. Deploys through another replica on
PostgreSQL arrive as the same event by LISTEN/NOTIFY; the TTL bounds staleness
should a notification be lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runplane.domain.events import CatalogChanged, DomainEvent
from runplane.domain.model import Deployment
from runplane.manifest import ProcessSpec
from runplane.store import catalog as store
from runplane.store.database import Tx

TARGET_TTL_SECONDS = 1.0
MAX_TARGETS = 10_000


@dataclass(frozen=True)
class Target:
    """A deployment ready to take triggers."""

    deployment: Deployment
    spec: ProcessSpec
    run_configuration: dict[str, Any]  # deployment defaults, secrets in plain text


class TargetCache:
    """(workspace, process, environment or None, usable environments) → Target, briefly."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[
            tuple[str, str, str | None, frozenset[str] | None], tuple[float, Target]
        ] = {}

    def get(
        self,
        tx: Tx,
        ws_id: str,
        process: str,
        environment: str | None,
        usable_environment_ids: frozenset[str] | None = None,
    ) -> Target:
        """The target of a trigger; raises the store's clear error when there is none.

        Without an environment, only `usable_environment_ids` (when given) count.
        """
        usable = usable_environment_ids if environment is None else None
        key = (ws_id, process, environment, usable)
        now = self._clock()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        dep, spec_data, version_secrets, dep_secrets = store.trigger_target(
            tx.conn, ws_id, process, environment, usable
        )
        target = Target(
            deployment=dep,
            spec=ProcessSpec.from_dict(spec_data, version_secrets),
            run_configuration={**dep.input_arguments, **dep_secrets},
        )
        if len(self._items) >= MAX_TARGETS:
            self._items = {}
        self._items[key] = (now + TARGET_TTL_SECONDS, target)
        return target

    def clear(self) -> None:
        """Drop every entry."""
        self._items = {}

    def observe(self, events: list[DomainEvent]) -> None:
        """Drop the entries of every process whose deployments changed."""
        changed = {ev.process_id for ev in events if isinstance(ev, CatalogChanged)}
        if changed:
            self._items = {
                k: v for k, v in self._items.items() if v[1].deployment.process_id not in changed
            }
