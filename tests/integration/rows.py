"""Executions stored as rows at chosen times, statuses and durations (reports, listing).

The rows go in with a Core insert, as the executions list benchmark fills its
table: reports and listings read what the store wrote, whatever wrote it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from runplane.domain.ids import new_id
from runplane.domain.states import Status
from runplane.manifest import parse_manifest
from runplane.store import catalog
from runplane.store.database import Tx
from runplane.store.schema import executions

PROCESSES = ("bot", "etl")
ENVIRONMENTS = ("production", "sandbox")


class Rows:
    """A workspace with processes `bot` and `etl` deployed to production and sandbox."""

    def __init__(self, engine: Engine, at: datetime, workspace: str | None = None) -> None:
        self.engine = engine
        with engine.begin() as conn:
            tx = Tx(conn)
            ws = catalog.bootstrap(tx, at)
            if workspace is not None:
                ws = catalog.create_workspace(tx, workspace, at)
            self.ws = ws
            self.deployments: dict[tuple[str, str], Any] = {}
            for name in PROCESSES:
                spec = parse_manifest(f'[process]\nname = "{name}"\nentrypoint = "m:f"\n')
                version, _ = catalog.create_version(
                    tx, ws, name, spec.to_dict(), {}, name.ljust(64, "0"), b"zip", at
                )
                proc = catalog.get_process(conn, ws, name)
                for env_name in ENVIRONMENTS:
                    env = catalog.get_environment(conn, ws, env_name)
                    dep, _ = catalog.put_deployment(tx, proc, env, version, {}, {}, True, None, at)
                    self.deployments[name, env_name] = dep

    def id_of(self, process: str, environment: str) -> tuple[str, str]:
        """(process id, environment id)."""
        dep = self.deployments[process, environment]
        return dep.process_id, dep.environment_id

    def add(
        self,
        created: datetime,
        status: Status = Status.SUCCEEDED,
        *,
        process: str = "bot",
        environment: str = "production",
        duration: timedelta | None = None,
        execution_id: str | None = None,
    ) -> str:
        """Store one execution; a running or finished one starts 1 s after its creation
        and, when finished with a `duration`, ends that long after its start."""
        dep = self.deployments[process, environment]
        eid = execution_id or new_id()
        started = None
        if status is Status.RUNNING or (status.terminal and duration is not None):
            started = created + timedelta(seconds=1)
        finished = None
        if status.terminal:
            finished = started + duration if started and duration is not None else created
        with self.engine.begin() as conn:
            conn.execute(
                executions.insert().values(
                    id=eid,
                    workspace_id=self.ws,
                    process_id=dep.process_id,
                    version_id=dep.version_id,
                    deployment_id=dep.id,
                    environment_id=dep.environment_id,
                    client_execution_id=eid,
                    status=status.value,
                    attempt=1,
                    max_attempts=1,
                    timeout_seconds=60.0,
                    inputs={},
                    secret_inputs={},
                    input_fingerprint="f" * 64,
                    lease_token=0,
                    cancel_requested=False,
                    run_after=created,
                    created_at=created,
                    started_at=started,
                    finished_at=finished,
                    updated_at=finished or started or created,
                )
            )
        return eid
