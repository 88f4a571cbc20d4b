"""Use cases for processes, versions and deployments."""

from __future__ import annotations

from typing import Any

from runplane import bundle as bundles
from runplane.domain import errors
from runplane.domain.auth import Principal, Scope
from runplane.domain.model import Deployment, Environment, Process, Version
from runplane.domain.params import check_values, coerce_integers, out_of_range, split_secrets
from runplane.folder import read_folder
from runplane.manifest import MANIFEST_FILE, ProcessSpec
from runplane.service import schedules
from runplane.service.context import Context
from runplane.store import catalog as store
from runplane.store.database import Tx


async def upload_version(
    ctx: Context, who: Principal, process_name: str, data: bytes, task: str | None = None
) -> tuple[Version, bool]:
    """Store a process bundle as a version of `process_name` (same content, same version).

    A Robocorp robot (robot.yaml, no runplane.toml) runs `task` (or its only task).
    """
    who.require(Scope.PROCESSES_WRITE)
    who.require_not_process_secret()
    try:
        digest = bundles.content_hash(data)
        spec = read_folder(bundles.read_texts(data), process_name, task)
    except bundles.BundleError as exc:
        raise errors.InvalidBundle(str(exc)) from exc
    if spec.name != process_name:
        raise errors.InvalidManifest(
            f"{MANIFEST_FILE} names process {spec.name!r}, but it was uploaded as "
            f"{process_name!r}.",
            problems=[
                {
                    "file": MANIFEST_FILE,
                    "name": "process.name",
                    "code": "name_mismatch",
                    "detail": f"Expected {process_name!r}, found {spec.name!r}.",
                }
            ],
        )
    now = ctx.clock()

    def op(tx: Tx) -> tuple[Version, bool]:
        version, created = store.create_version(
            tx,
            who.workspace_id,
            spec.name,
            spec.to_dict(),
            spec.secret_defaults(),
            digest,
            data,
            now,
        )
        stored_task = (version.spec.get("robot") or {}).get("task")
        if spec.robot is not None and stored_task != spec.robot["task"]:
            raise errors.Conflict(
                f"This robot is version {version.number} of {spec.name!r}, which runs task "
                f"{stored_task!r}. To run task {spec.robot['task']!r}, deploy it as a "
                "process of its own.",
                problems=[
                    {"name": "task", "code": "task_differs", "detail": "one task per process"}
                ],
            )
        return version, created

    return await ctx.db.write(op)


async def deploy(
    ctx: Context,
    who: Principal,
    process_name: str,
    environment_name: str,
    *,
    version: int | None,
    input_arguments: dict[str, Any] | None,
    invokable: bool,
    concurrency_limit: int | None,
) -> tuple[Deployment, bool]:
    """Deploy a version (default: the newest) to an environment with a run configuration;
    `input_arguments` None keeps the deployment's current ones, secret ones included (the
    console's deploy and invokable toggle)."""
    who.require(Scope.PROCESSES_WRITE)
    who.require_not_process_secret()
    now = ctx.clock()

    def op(tx: Tx) -> tuple[Deployment, bool]:
        process = store.get_process(tx.conn, who.workspace_id, process_name)
        env = store.get_environment(tx.conn, who.workspace_id, environment_name)
        who.require_target(process.id, process.name, env.id, env.name)
        ver = store.get_version(tx.conn, process.id, version)
        spec = ProcessSpec.from_dict(ver.spec, {})
        if input_arguments is None:
            public, secret = store.deployment_arguments(tx.conn, process.id, env.id) or ({}, {})
            problems = check_values(spec.parameters, {**public, **secret})
        else:
            arguments = coerce_integers(spec.parameters, input_arguments)
            problems = check_values(spec.parameters, arguments) + out_of_range(arguments)
            public, secret = split_secrets(spec.parameters, arguments)
        if problems:
            raise errors.InvalidInputArguments(
                f"The run configuration's input arguments do not match version {ver.number}'s "
                "parameters.",
                problems=problems,
            )
        before = store.list_deployments(tx.conn, who.workspace_id, process.id, env.id)
        deployed = store.put_deployment(
            tx, process, env, ver, public, secret, invokable, concurrency_limit, now
        )
        if not before or before[0].version_id != ver.id:
            # A version's [[schedules]] are created when it is deployed (not on every
            # redeploy of it, so that one deleted through the API stays deleted).
            schedules.declare_op(tx, ctx, who.workspace_id, process.id, env.id)
        return deployed

    return await ctx.db.write(op)


async def undeploy(ctx: Context, who: Principal, process_name: str, environment_name: str) -> None:
    """Make a deployment not invokable (executions already accepted still run)."""
    who.require(Scope.PROCESSES_WRITE)
    who.require_not_process_secret()

    def op(tx: Tx) -> None:
        process = store.get_process(tx.conn, who.workspace_id, process_name)
        env = store.get_environment(tx.conn, who.workspace_id, environment_name)
        who.require_target(process.id, process.name, env.id, env.name)
        store.delete_deployment(tx, process, env)

    await ctx.db.write(op)


async def list_processes(ctx: Context, who: Principal) -> list[tuple[Process, int | None]]:
    """Every process with its newest version number."""
    who.require_catalog_read()
    return await ctx.db.read(lambda c: store.list_processes(c, who.workspace_id))


async def get_process(
    ctx: Context, who: Principal, name: str
) -> tuple[Process, list[Version], list[Deployment]]:
    """A process with its versions and deployments."""
    who.require_catalog_read()

    def op(conn: Any) -> tuple[Process, list[Version], list[Deployment]]:
        process = store.get_process(conn, who.workspace_id, name)
        return (
            process,
            store.list_versions(conn, process.id),
            store.list_deployments(conn, who.workspace_id, process_id=process.id),
        )

    return await ctx.db.read(op)


async def list_versions(ctx: Context, who: Principal, name: str) -> list[Version]:
    """Every version of a process, newest first."""
    who.require_catalog_read()

    def op(conn: Any) -> list[Version]:
        return store.list_versions(conn, store.get_process(conn, who.workspace_id, name).id)

    return await ctx.db.read(op)


async def get_version(ctx: Context, who: Principal, name: str, number: int) -> Version:
    """One version of a process."""
    who.require_catalog_read()

    def op(conn: Any) -> Version:
        return store.get_version(conn, store.get_process(conn, who.workspace_id, name).id, number)

    return await ctx.db.read(op)


async def list_deployments(
    ctx: Context,
    who: Principal,
    process_name: str | None = None,
    environment_name: str | None = None,
) -> list[Deployment]:
    """Deployments, optionally of one process or environment."""
    who.require_catalog_read()

    def op(conn: Any) -> list[Deployment]:
        pid = store.get_process(conn, who.workspace_id, process_name).id if process_name else None
        eid = (
            store.get_environment(conn, who.workspace_id, environment_name).id
            if environment_name
            else None
        )
        return store.list_deployments(conn, who.workspace_id, pid, eid)

    return await ctx.db.read(op)


async def list_environments(ctx: Context, who: Principal) -> list[Environment]:
    """Every environment of the workspace."""
    who.require_catalog_read()
    return await ctx.db.read(lambda c: store.list_environments(c, who.workspace_id))
