"""Named store operations for the catalog: workspaces, environments, processes,
versions and deployments. Reads take a Connection; writes take a Tx."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, select

from runplane.domain import errors
from runplane.domain.events import CatalogChanged
from runplane.domain.ids import new_id
from runplane.domain.model import Deployment, Environment, Process, Version
from runplane.store.database import Tx
from runplane.store.schema import (
    deployments,
    environments,
    process_versions,
    processes,
    workspaces,
)

DEFAULT_WORKSPACE = "default"
DEFAULT_ENVIRONMENTS = ("sandbox", "production")


def bootstrap(tx: Tx, now: datetime) -> str:
    """Make sure workspace `default` and its environments exist; return its id."""
    ws_id = tx.conn.scalar(select(workspaces.c.id).where(workspaces.c.name == DEFAULT_WORKSPACE))
    if ws_id is None:
        ws_id = create_workspace(tx, DEFAULT_WORKSPACE, now)
    return str(ws_id)


def create_workspace(tx: Tx, name: str, now: datetime) -> str:
    """A new workspace with the default environments; returns its id."""
    conn = tx.conn
    if conn.scalar(select(workspaces.c.id).where(workspaces.c.name == name)) is not None:
        raise errors.Conflict(f"A workspace named {name!r} exists.", workspace=name)
    ws_id = new_id()
    conn.execute(workspaces.insert().values(id=ws_id, name=name, created_at=now))
    for env in DEFAULT_ENVIRONMENTS:
        create_environment(tx, ws_id, env, now)
    return ws_id


def list_workspaces(conn: Connection) -> list[tuple[str, str, datetime]]:
    """(id, name, created_at) of every workspace, by name."""
    rows = conn.execute(
        select(workspaces.c.id, workspaces.c.name, workspaces.c.created_at).order_by(
            workspaces.c.name
        )
    )
    return [(r.id, r.name, r.created_at) for r in rows]


def create_environment(tx: Tx, ws_id: str, name: str, now: datetime) -> Environment:
    """A new environment in the workspace."""
    conn = tx.conn
    exists = conn.scalar(
        select(environments.c.id).where(
            environments.c.workspace_id == ws_id, environments.c.name == name
        )
    )
    if exists is not None:
        raise errors.Conflict(f"An environment named {name!r} exists.", environment=name)
    env_id = new_id()
    conn.execute(
        environments.insert().values(id=env_id, workspace_id=ws_id, name=name, created_at=now)
    )
    return Environment(env_id, ws_id, name, now)


def _environment(row: Row[Any]) -> Environment:
    return Environment(row.id, row.workspace_id, row.name, row.created_at)


def get_environment(conn: Connection, ws_id: str, name: str) -> Environment:
    """The environment `name` of the workspace."""
    row = conn.execute(
        select(environments).where(
            environments.c.workspace_id == ws_id, environments.c.name == name
        )
    ).first()
    if row is None:
        raise errors.EnvironmentNotFound(f"No environment {name!r} in this workspace.")
    return _environment(row)


def list_environments(conn: Connection, ws_id: str) -> list[Environment]:
    """Every environment of the workspace, by name."""
    rows = conn.execute(
        select(environments)
        .where(environments.c.workspace_id == ws_id)
        .order_by(environments.c.name)
    )
    return [_environment(r) for r in rows]


def _process(row: Row[Any]) -> Process:
    return Process(row.id, row.workspace_id, row.name, row.created_at)


def get_process(conn: Connection, ws_id: str, name: str) -> Process:
    """The process `name` of the workspace."""
    row = conn.execute(
        select(processes).where(processes.c.workspace_id == ws_id, processes.c.name == name)
    ).first()
    if row is None:
        raise errors.ProcessNotFound(f"No process {name!r}.")
    return _process(row)


def list_processes(conn: Connection, ws_id: str) -> list[tuple[Process, int | None]]:
    """Every process of the workspace with its newest version number."""
    latest = (
        select(func.max(process_versions.c.number))
        .where(process_versions.c.process_id == processes.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(processes, latest.label("latest"))
        .where(processes.c.workspace_id == ws_id)
        .order_by(processes.c.name)
    )
    return [(_process(r), r.latest) for r in rows]


_VERSION_COLUMNS: list[Any] = [
    process_versions.c.id,
    process_versions.c.process_id,
    processes.c.name.label("process_name"),
    process_versions.c.number,
    process_versions.c.content_hash,
    process_versions.c.spec,
    process_versions.c.bundle_bytes,
    process_versions.c.created_at,
]


def _version(row: Row[Any]) -> Version:
    return Version(
        id=row.id,
        process_id=row.process_id,
        process_name=row.process_name,
        number=row.number,
        content_hash=row.content_hash,
        spec=row.spec,
        bundle_bytes=row.bundle_bytes,
        created_at=row.created_at,
    )


def _select_versions() -> Any:
    return select(*_VERSION_COLUMNS).join(
        processes, processes.c.id == process_versions.c.process_id
    )


def create_version(
    tx: Tx,
    ws_id: str,
    name: str,
    spec: dict[str, Any],
    secret_defaults: dict[str, Any],
    content_hash: str,
    bundle: bytes,
    now: datetime,
) -> tuple[Version, bool]:
    """Store a version of process `name` (creating the process); the same content is the
    same version. Returns (version, created)."""
    conn = tx.conn
    proc_id = conn.scalar(
        select(processes.c.id).where(processes.c.workspace_id == ws_id, processes.c.name == name)
    )
    if proc_id is None:
        proc_id = new_id()
        conn.execute(
            processes.insert().values(id=proc_id, workspace_id=ws_id, name=name, created_at=now)
        )
    existing = conn.execute(
        _select_versions().where(
            process_versions.c.process_id == proc_id,
            process_versions.c.content_hash == content_hash,
        )
    ).first()
    if existing is not None:
        return _version(existing), False
    number = (
        conn.scalar(
            select(func.max(process_versions.c.number)).where(
                process_versions.c.process_id == proc_id
            )
        )
        or 0
    ) + 1
    version_id = new_id()
    conn.execute(
        process_versions.insert().values(
            id=version_id,
            process_id=proc_id,
            number=number,
            content_hash=content_hash,
            spec=spec,
            secret_defaults=secret_defaults,
            bundle=bundle,
            bundle_bytes=len(bundle),
            created_at=now,
        )
    )
    row = conn.execute(_select_versions().where(process_versions.c.id == version_id)).one()
    return _version(row), True


def list_versions(conn: Connection, process_id: str) -> list[Version]:
    """Every version of a process, newest first."""
    rows = conn.execute(
        _select_versions()
        .where(process_versions.c.process_id == process_id)
        .order_by(process_versions.c.number.desc())
    )
    return [_version(r) for r in rows]


def get_version(conn: Connection, process_id: str, number: int | None) -> Version:
    """Version `number` of a process, or its newest when `number` is None."""
    q = _select_versions().where(process_versions.c.process_id == process_id)
    if number is None:
        q = q.order_by(process_versions.c.number.desc()).limit(1)
    else:
        q = q.where(process_versions.c.number == number)
    row = conn.execute(q).first()
    if row is None:
        raise errors.VersionNotFound(
            "The process has no versions." if number is None else f"No version {number}."
        )
    return _version(row)


def get_bundle(conn: Connection, version_id: str, ws_id: str | None = None) -> tuple[str, bytes]:
    """(content hash, zip bytes) of a version (of the workspace `ws_id`, when given)."""
    q = select(process_versions.c.content_hash, process_versions.c.bundle).where(
        process_versions.c.id == version_id
    )
    if ws_id is not None:
        q = q.join(processes, processes.c.id == process_versions.c.process_id).where(
            processes.c.workspace_id == ws_id
        )
    row = conn.execute(q).first()
    if row is None:
        raise errors.VersionNotFound("No such version.")
    return row.content_hash, bytes(row.bundle)


_DEPLOYMENT_COLUMNS: list[Any] = [
    deployments,
    processes.c.name.label("process_name"),
    environments.c.name.label("environment_name"),
    process_versions.c.number.label("version_number"),
]


def _select_deployments() -> Any:
    return (
        select(*_DEPLOYMENT_COLUMNS)
        .join(processes, processes.c.id == deployments.c.process_id)
        .join(environments, environments.c.id == deployments.c.environment_id)
        .join(process_versions, process_versions.c.id == deployments.c.version_id)
    )


def _deployment(row: Any) -> Deployment:
    return Deployment(
        id=row.id,
        process_id=row.process_id,
        process_name=row.process_name,
        environment_id=row.environment_id,
        environment_name=row.environment_name,
        version_id=row.version_id,
        version_number=row.version_number,
        input_arguments=row.input_arguments,
        invokable=row.invokable,
        concurrency_limit=row.concurrency_limit,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def put_deployment(
    tx: Tx,
    process: Process,
    environment: Environment,
    version: Version,
    input_arguments: dict[str, Any],
    secret_arguments: dict[str, Any],
    invokable: bool,
    concurrency_limit: int | None,
    now: datetime,
) -> tuple[Deployment, bool]:
    """Deploy `version` to `environment` with a run configuration. Returns (deployment, created)."""
    conn = tx.conn
    values = {
        "version_id": version.id,
        "input_arguments": input_arguments,
        "secret_arguments": secret_arguments,
        "invokable": invokable,
        "concurrency_limit": concurrency_limit,
        "updated_at": now,
    }
    where = and_(
        deployments.c.process_id == process.id, deployments.c.environment_id == environment.id
    )
    existing = conn.scalar(select(deployments.c.id).where(where))
    if existing is None:
        dep_id = new_id()
        conn.execute(
            deployments.insert().values(
                id=dep_id,
                process_id=process.id,
                environment_id=environment.id,
                created_at=now,
                **values,
            )
        )
    else:
        dep_id = existing
        conn.execute(deployments.update().where(deployments.c.id == dep_id).values(**values))
    row = conn.execute(_select_deployments().where(deployments.c.id == dep_id)).one()
    tx.emit(CatalogChanged(process.id))
    return _deployment(row), existing is None


def deployment_arguments(
    conn: Connection, process_id: str, environment_id: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(public, secret) input arguments of a deployment's run configuration, or None when
    the process is not deployed there."""
    row = conn.execute(
        select(deployments.c.input_arguments, deployments.c.secret_arguments).where(
            deployments.c.process_id == process_id,
            deployments.c.environment_id == environment_id,
        )
    ).one_or_none()
    if row is None:
        return None
    return dict(row.input_arguments or {}), dict(row.secret_arguments or {})


def delete_deployment(tx: Tx, process: Process, environment: Environment) -> None:
    """Undeploy a process from an environment (its executions stay)."""
    result = tx.conn.execute(
        deployments.update()
        .where(
            deployments.c.process_id == process.id,
            deployments.c.environment_id == environment.id,
        )
        .values(invokable=False)
    )
    if result.rowcount == 0:
        raise errors.DeploymentNotFound(
            f"Process {process.name!r} is not deployed to {environment.name!r}."
        )
    tx.emit(CatalogChanged(process.id))


def list_deployments(
    conn: Connection,
    ws_id: str,
    process_id: str | None = None,
    environment_id: str | None = None,
) -> list[Deployment]:
    """Deployments of the workspace, optionally of one process or environment."""
    q = _select_deployments().where(processes.c.workspace_id == ws_id)
    if process_id is not None:
        q = q.where(deployments.c.process_id == process_id)
    if environment_id is not None:
        q = q.where(deployments.c.environment_id == environment_id)
    rows = conn.execute(q.order_by(processes.c.name, environments.c.name))
    return [_deployment(r) for r in rows]


def deployed_specs(
    conn: Connection, ws_id: str, environment_id: str | None, names: list[str] | None
) -> tuple[list[tuple[str, int, dict[str, Any]]], list[str]]:
    """(process, version number, spec) of each version of `names` (None: of every
    process) deployed to the environment (None: to any), and the names deployed
    nowhere there."""
    deployed: dict[str, set[int]] = {}
    for d in list_deployments(conn, ws_id, environment_id=environment_id):
        deployed.setdefault(d.process_name, set()).add(d.version_number)
    if names is None:
        names = sorted(deployed)
    found: list[tuple[str, int, dict[str, Any]]] = []
    missing: list[str] = []
    for name in dict.fromkeys(names):
        if name not in deployed:
            missing.append(name)
            continue
        process = get_process(conn, ws_id, name)
        for number in sorted(deployed[name]):
            found.append((name, number, get_version(conn, process.id, number).spec))
    return found, missing


# Built once: a statement object memoizes its cache key, so the hot path
# (every trigger) skips SQLAlchemy's statement construction and key generation.
_TRIGGER_TARGET = (
    select(*_DEPLOYMENT_COLUMNS, process_versions.c.spec, process_versions.c.secret_defaults)
    .select_from(deployments)
    .join(processes, processes.c.id == deployments.c.process_id)
    .join(environments, environments.c.id == deployments.c.environment_id)
    .join(process_versions, process_versions.c.id == deployments.c.version_id)
    .where(processes.c.workspace_id == bindparam("ws"), processes.c.name == bindparam("process"))
)


def trigger_target(
    conn: Connection,
    ws_id: str,
    process_name: str,
    environment_name: str | None,
    usable_environment_ids: frozenset[str] | None = None,
) -> tuple[Deployment, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Where a trigger goes: (deployment, version spec, version secret defaults,
    deployment secret arguments). Raises the clear error for every reason it cannot go.

    Without an environment, the one where the process is deployed invokable is
    used, counting only `usable_environment_ids` when the caller is limited to some.
    """
    rows = conn.execute(_TRIGGER_TARGET, {"ws": ws_id, "process": process_name}).all()
    if not rows:
        get_process(conn, ws_id, process_name)  # raises ProcessNotFound when it is unknown
    if environment_name is not None:
        row = next((r for r in rows if r.environment_name == environment_name), None)
        if row is None:
            get_environment(conn, ws_id, environment_name)  # raises when it is unknown
            raise errors.ProcessNotDeployed(
                f"Process {process_name!r} is not deployed to environment {environment_name!r}.",
                process=process_name,
                environment=environment_name,
            )
        if not row.invokable:
            raise errors.ProcessNotInvokable(
                f"Process {process_name!r} is deployed to {environment_name!r} "
                "but not invokable over the API.",
                process=process_name,
                environment=environment_name,
            )
    else:
        if usable_environment_ids is not None:
            rows = [r for r in rows if r.environment_id in usable_environment_ids]
        invokable = [r for r in rows if r.invokable]
        if not rows:
            raise errors.ProcessNotDeployed(
                f"Process {process_name!r} is not deployed to any environment.",
                process=process_name,
            )
        if not invokable:
            raise errors.ProcessNotInvokable(
                f"Process {process_name!r} is not invokable in any environment.",
                process=process_name,
            )
        if len(invokable) > 1:
            names = sorted(r.environment_name for r in invokable)
            raise errors.EnvironmentRequired(
                f"Process {process_name!r} is deployed invokable to {', '.join(names)}: "
                "name one in 'environment'.",
                problems=[
                    {
                        "name": "environment",
                        "code": "environment_required",
                        "detail": f"One of: {', '.join(names)}.",
                    }
                ],
                environments=names,
            )
        row = invokable[0]
    return _deployment(row), row.spec, row.secret_defaults or {}, row.secret_arguments or {}


def workspace_id(conn: Connection, name: str) -> str:
    """The id of the workspace with this name."""
    ws_id = conn.scalar(select(workspaces.c.id).where(workspaces.c.name == name))
    if ws_id is None:
        raise errors.WorkspaceNotFound(f"No workspace {name!r}.")
    return str(ws_id)


def workspace_name(conn: Connection, ws_id: str) -> str:
    """The name of the workspace with this id."""
    name = conn.scalar(select(workspaces.c.name).where(workspaces.c.id == ws_id))
    if name is None:
        raise errors.WorkspaceNotFound(f"No workspace {ws_id!r}.")
    return str(name)


def get_process_by_id(conn: Connection, ws_id: str, process_id: str) -> Process | None:
    """The process with this id in the workspace, or None."""
    row = conn.execute(
        select(processes).where(processes.c.workspace_id == ws_id, processes.c.id == process_id)
    ).first()
    return None if row is None else _process(row)
