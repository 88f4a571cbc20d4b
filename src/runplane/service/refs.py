"""Vendor references: a workspace, process, environment or runtime by runplane name or id.

Vendor clients carry the platform's ids in paths and bodies (`workspaceId`,
`processId`, `accountId`, `atomId`). On runplane's vendor routers each of those
accepts the runplane name as well as the runplane id: a name is tried first,
then an id. Workspaces and processes are never renamed, so what a lookup finds
is cached for the life of the server.
"""

from __future__ import annotations

import uuid
from typing import Any

from runplane.domain import errors
from runplane.domain.auth import Principal
from runplane.domain.model import Environment
from runplane.service.context import Context
from runplane.store import catalog as store
from runplane.store import runtimes as runtime_store

MAX_CACHED = 10_000
_names: dict[tuple[str, str], str] = {}  # (kind:workspace id, id) -> name


def _looks_like_id(ref: str) -> bool:
    try:
        uuid.UUID(ref)
    except ValueError:
        return False
    return True


def _remember(key: tuple[str, str], name: str) -> str:
    if len(_names) >= MAX_CACHED:
        _names.clear()
    _names[key] = name
    return name


async def workspace(ctx: Context, who: Principal, ref: str) -> str:
    """The caller's workspace id when `ref` names it (by name or id); else WorkspaceNotFound.

    Another workspace is not found, whether it exists or not.
    """
    if ref == who.workspace_id:
        return ref
    key = ("workspace", who.workspace_id)
    name = _names.get(key)
    if name is None:
        name = _remember(
            key, await ctx.db.read(lambda c: store.workspace_name(c, who.workspace_id))
        )
    if ref != name:
        raise errors.WorkspaceNotFound(f"No workspace {ref!r}.", workspace=ref)
    return who.workspace_id


async def process_name(ctx: Context, who: Principal, ref: str) -> str:
    """The name of the process `ref` names (by name, else by id) in the caller's workspace.

    A ref that names no process comes back unchanged, so the use case it goes
    to answers its own clear ProcessNotFound.
    """
    if not _looks_like_id(ref):
        return ref
    key = (f"process:{who.workspace_id}", ref)
    name = _names.get(key)
    if name is not None:
        return name

    def op(conn: Any) -> str:
        try:
            return store.get_process(conn, who.workspace_id, ref).name
        except errors.ProcessNotFound:
            found = store.get_process_by_id(conn, who.workspace_id, ref)
            return ref if found is None else _remember(key, found.name)

    return await ctx.db.read(op)


async def environment(ctx: Context, who: Principal, ref: str) -> Environment:
    """The environment `ref` names (by name or id) in the caller's workspace."""

    def op(conn: Any) -> Environment:
        envs = store.list_environments(conn, who.workspace_id)
        found = next((e for e in envs if e.name == ref), None) or next(
            (e for e in envs if e.id == ref), None
        )
        if found is None:
            raise errors.EnvironmentNotFound(f"No environment {ref!r}.", environment=ref)
        return found

    return await ctx.db.read(op)


async def runtime_or_environment(ctx: Context, who: Principal, ref: str) -> Environment | None:
    """Where `ref` sends work: the environment it names (by name or id), else the
    environment of the runtime it names (by name or id).

    None for a runtime that serves every environment (the embedded one): the
    process goes wherever it is deployed invokable. EnvironmentNotFound when
    `ref` names neither.
    """

    def op(conn: Any) -> Environment | None:
        envs = store.list_environments(conn, who.workspace_id)
        found = next((e for e in envs if e.name == ref), None) or next(
            (e for e in envs if e.id == ref), None
        )
        if found is not None:
            return found
        runtimes = runtime_store.list_runtimes(conn, who.workspace_id)
        runtime = next((r for r in runtimes if r.name == ref), None) or next(
            (r for r in runtimes if r.id == ref), None
        )
        if runtime is None:
            raise errors.EnvironmentNotFound(f"No environment or runtime {ref!r}.", environment=ref)
        if runtime.environment_id is None:
            return None
        return next(e for e in envs if e.id == runtime.environment_id)

    return await ctx.db.read(op)
