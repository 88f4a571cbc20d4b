"""Use cases for executions: start, track (long poll), list, cancel (logs: service/logs.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runplane.domain import errors
from runplane.domain.auth import Principal, Scope
from runplane.domain.filters import Filter
from runplane.domain.ids import new_id
from runplane.domain.model import Execution, Page
from runplane.domain.params import (
    effective_inputs,
    fingerprint,
    from_text,
    out_of_range,
    split_secrets,
)
from runplane.domain.states import Status
from runplane.service.context import Context
from runplane.service.hub import Waiter, wait_for
from runplane.store import executions as store
from runplane.store import listing as listing_store
from runplane.store import logs as log_store
from runplane.store.database import Tx

MAX_CLIENT_EXECUTION_ID_CHARS = 255


@dataclass(frozen=True)
class StartRequest:
    """A trigger: which process, with what, where, under which client id."""

    process: str
    input_arguments: dict[str, Any] = field(default_factory=dict)
    environment: str | None = None
    execution_id: str | None = None
    # Vendor surfaces: callers send keys that name no parameter (output parameters,
    # say). True drops them and notes them in the execution log; the native API refuses.
    drop_undeclared: bool = False
    # Vendor surfaces whose values arrive as text (Boomi's properties): convert them
    # to the declared types first; what does not convert is a problem like any other.
    text_inputs: bool = False


async def start(ctx: Context, who: Principal, req: StartRequest) -> tuple[Execution, bool]:
    """Validate and queue an execution, once per client execution id.

    Returns (execution, created). Nothing is stored when the request is
    refused. A repeat with the same effective inputs returns the first
    execution with created False; with different ones, ExecutionIdConflict.
    """
    return await ctx.db.write(start_op(ctx, who, req))


def start_op(
    ctx: Context, who: Principal, req: StartRequest
) -> Callable[[Tx], tuple[Execution, bool]]:
    """The write that `start` makes, for use cases that start executions together with
    other rows in one transaction (Robocorp work items)."""
    who.require(Scope.EXECUTIONS_START)
    if req.execution_id is not None and not (
        0 < len(req.execution_id) <= MAX_CLIENT_EXECUTION_ID_CHARS
        and "\x00" not in req.execution_id
    ):
        raise errors.InvalidRequest(
            "executionId must be 1 to 255 characters, none of them NUL.",
            problems=[
                {
                    "name": "executionId",
                    "code": "invalid_execution_id",
                    "detail": "1 to 255 characters, no NUL.",
                }
            ],
        )
    server_id = new_id()
    now = ctx.clock()

    # Only a client-chosen id can be sent again: the request fingerprint is for those.
    request_fp = (
        fingerprint(req.environment or "", req.input_arguments) if req.execution_id else None
    )

    def op(tx: Tx) -> tuple[Execution, bool]:
        if req.execution_id is not None and request_fp is not None:
            # The same request again is a repeat whatever happened to the deployment
            # since (a client retrying after a lost response must get its 204).
            repeat = store.find_repeat(
                tx.conn, who.workspace_id, req.process, req.execution_id, request_fp
            )
            if repeat is not None:
                who.require_target(
                    repeat.process_id,
                    repeat.process_name,
                    repeat.environment_id,
                    repeat.environment_name,
                )
                return repeat, False
        target = ctx.targets.get(
            tx, who.workspace_id, req.process, req.environment, who.environment_ids
        )
        dep, spec = target.deployment, target.spec
        who.require_target(
            dep.process_id, dep.process_name, dep.environment_id, dep.environment_name
        )
        requested = req.input_arguments
        # A robot declares no parameters: its input, whatever it is, is its work item.
        dropped = [] if spec.robot else sorted(k for k in requested if k not in spec.parameters)
        if req.drop_undeclared and dropped:
            requested = {k: v for k, v in requested.items() if k in spec.parameters}
        text_problems: list[dict[str, Any]] = []
        if req.text_inputs:
            requested, text_problems = from_text(spec.parameters, requested)
        problems: list[dict[str, Any]]
        if spec.robot is not None:
            inputs, problems = {**target.run_configuration, **requested}, []
        else:
            inputs, problems = effective_inputs(
                spec.parameters, target.run_configuration, requested
            )
        unconverted = {p["name"] for p in text_problems}
        problems = text_problems + [p for p in problems if p["name"] not in unconverted]
        problems += out_of_range(inputs)
        if problems:
            raise errors.InvalidInputArguments(
                f"{len(problems)} problem(s) with the input arguments: "
                + ", ".join(sorted({p["name"] for p in problems}))
                + ".",
                problems=problems,
            )
        public, secret = split_secrets(spec.parameters, inputs)
        execution, created = store.create_execution(
            tx,
            store.NewExecution(
                id=server_id,
                workspace_id=who.workspace_id,
                process_id=dep.process_id,
                version_id=dep.version_id,
                deployment_id=dep.id,
                environment_id=dep.environment_id,
                client_execution_id=req.execution_id or server_id,
                max_attempts=spec.retries + 1,
                timeout_seconds=spec.timeout_seconds,
                inputs=public,
                secret_inputs=secret,
                input_fingerprint=fingerprint(dep.environment_id, inputs),
                request_fingerprint=request_fp,
                process_name=dep.process_name,
                version_number=dep.version_number,
                environment_name=dep.environment_name,
            ),
            now,
        )
        if created and req.drop_undeclared and dropped:
            log_store.add_note(
                tx,
                execution.id,
                f"[runplane] ignored input arguments that name no parameter: "
                f"{', '.join(dropped)}\n",
                now,
            )
        return execution, created

    return op


def visible(who: Principal, execution: Execution) -> Execution:
    """The execution, if the credential may see it; else it does not exist for it."""
    who.require(Scope.EXECUTIONS_READ)
    if not (
        who.sees_process(execution.process_id) and who.sees_environment(execution.environment_id)
    ):
        raise errors.ExecutionNotFound(f"No execution {execution.id!r}.")
    return execution


async def _wait_terminal(
    ctx: Context,
    who: Principal,
    first: Execution,
    wait_seconds: float,
    changed: Waiter | None = None,
) -> Execution:
    """Hold until the execution is terminal or `wait_seconds` pass; return the newest record.

    `changed`: a subscription to the execution's changes opened before `first` was
    read, so no change can fall between them and `first` needs no second read. A
    change the hub names as one to a status that does not end the execution is not
    read either: only the end is. A server shutting down answers at once with the
    record as it is.
    """
    execution = first
    if execution.status.terminal or wait_seconds <= 0:
        return execution
    deadline = time.monotonic() + min(wait_seconds, ctx.settings.max_wait_seconds)
    async with contextlib.AsyncExitStack() as stack:
        fresh = changed is not None
        if changed is None:
            changed = await stack.enter_async_context(ctx.hub.execution_changes(first.id))
        while True:
            if not fresh:
                execution = await ctx.db.read_point(
                    lambda c: store.get_execution(c, who.workspace_id, first.id)
                )
            remaining = deadline - time.monotonic()
            if execution.status.terminal or remaining <= 0 or ctx.hub.closed:
                return execution
            changed.status = None
            woken = await wait_for(changed, min(remaining, ctx.hub.fallback_seconds))
            # Heard to what it changed, and not its end: nothing to read yet.
            fresh = woken and changed.status is not None and not Status(changed.status).terminal


async def get(
    ctx: Context, who: Principal, execution_id: str, wait_seconds: float = 0
) -> Execution:
    """The execution record; with `wait_seconds`, once terminal or when the time runs out."""
    if wait_seconds <= 0:
        execution = await ctx.db.read_point(
            lambda c: store.get_execution(c, who.workspace_id, execution_id)
        )
        return visible(who, execution)
    async with ctx.hub.execution_changes(execution_id) as changed:
        execution = await ctx.db.read_point(
            lambda c: store.get_execution(c, who.workspace_id, execution_id)
        )
        return await _wait_terminal(ctx, who, visible(who, execution), wait_seconds, changed)


async def get_by_client_id(
    ctx: Context, who: Principal, process: str, client_execution_id: str, wait_seconds: float = 0
) -> Execution:
    """The execution of `process` with this client execution id."""
    execution = await ctx.db.read_point(
        lambda c: store.get_by_client_id(c, who.workspace_id, process, client_execution_id)
    )
    return await _wait_terminal(ctx, who, visible(who, execution), wait_seconds)


async def list_executions(
    ctx: Context,
    who: Principal,
    *,
    process: str | None = None,
    statuses: list[Status] | None = None,
    environment: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    matching: Filter | None = None,
    cursor: str | None = None,
    limit: int = 50,
    newest_first: bool = True,
) -> Page:
    """The reporting list, newest first (or oldest), keyset-paginated (what the
    credential may see); `matching` filters further, in the database."""
    who.require(Scope.EXECUTIONS_READ)
    return await ctx.db.read(
        lambda c: listing_store.list_executions(
            c,
            who.workspace_id,
            process_name=process,
            statuses=statuses,
            environment_name=environment,
            since=since,
            until=until,
            matching=matching,
            cursor=cursor,
            limit=limit,
            newest_first=newest_first,
            visible_environment_ids=who.environment_ids,
            visible_process_id=who.process_id,
        )
    )


async def cancel(ctx: Context, who: Principal, execution_id: str) -> Execution:
    """Cancel: a queued execution at once; a running one once its runtime killed it."""
    await get(ctx, who, execution_id)  # 404 for what the credential may not see
    who.require(Scope.EXECUTIONS_START)
    now = ctx.clock()
    return await ctx.db.write(
        lambda tx: store.request_cancel(tx, who.workspace_id, execution_id, now)
    )
