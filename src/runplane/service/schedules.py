"""Use cases for schedules: manage a deployment's timetables, and start what is due.

Every replica looks for due schedules about once a second (node.py). A look is
one transaction: it takes the due schedules (on PostgreSQL, ``FOR UPDATE SKIP
LOCKED``, so two replicas never look at one schedule at once), starts an
execution for each due time to run, and moves each schedule to its next due
time. Each execution's client id is derived from the schedule and the due time
(``schedule-<id>-<UTC time>``), so a start that was committed is never made
twice, whichever replica looks next; a look that did not commit (its replica
died) is made again by the next one, within the on-time window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runplane.domain import errors
from runplane.domain.auth import CredentialKind, Principal, Scope
from runplane.domain.params import check_values, coerce_integers, out_of_range, split_secrets
from runplane.domain.schedules import (
    NAME_RE,
    Missed,
    Schedule,
    check_cron,
    check_timezone,
    execution_id,
    first_due,
    look,
)
from runplane.manifest import ProcessSpec
from runplane.service import executions
from runplane.service.context import Context
from runplane.store import catalog as catalog_store
from runplane.store import schedules as store
from runplane.store.database import Tx, database_now

log = logging.getLogger("runplane.schedules")

SOURCE_API = "api"
SOURCE_MANIFEST = "manifest"


@dataclass(frozen=True)
class ScheduleInput:
    """What a caller (or runplane.toml) says about a schedule; None: unchanged."""

    name: str | None = None
    cron: str | None = None
    timezone: str | None = None
    input_arguments: dict[str, Any] | None = None
    missed: str | None = None
    enabled: bool | None = None


def _problem(name: str, code: str, detail: str) -> dict[str, Any]:
    return {"name": name, "code": code, "detail": detail}


def check(body: ScheduleInput) -> list[dict[str, Any]]:
    """The problems of the fields given (types aside: the API's model checks those)."""
    problems: list[dict[str, Any]] = []
    if body.name is not None and not NAME_RE.match(body.name):
        problems.append(_problem("name", "invalid_name", "1-100 letters, digits, '.', '_' or '-'"))
    if body.cron is not None and (why := check_cron(body.cron)) is not None:
        problems.append(_problem("cron", "invalid_cron", why))
    if body.timezone is not None and (why := check_timezone(body.timezone)) is not None:
        problems.append(_problem("timezone", "invalid_timezone", why))
    if body.missed is not None and body.missed not in {m.value for m in Missed}:
        problems.append(_problem("missed", "invalid_missed", "'skip' or 'last'"))
    return problems


def _refuse(problems: list[dict[str, Any]]) -> None:
    if problems:
        raise errors.InvalidRequest(
            f"{len(problems)} problem(s) with the schedule: "
            + ", ".join(sorted({p["name"] for p in problems}))
            + ".",
            problems=problems,
        )


def _deployed_spec(tx: Tx, workspace_id: str, process_id: str, environment_id: str) -> ProcessSpec:
    deployed = catalog_store.list_deployments(
        tx.conn, workspace_id, process_id=process_id, environment_id=environment_id
    )
    if not deployed:
        raise errors.NotFound("The process is not deployed to this environment.")
    version = catalog_store.get_version(tx.conn, process_id, deployed[0].version_number)
    return ProcessSpec.from_dict(version.spec, {})


def _arguments(
    spec: ProcessSpec, arguments: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public, secret) input arguments, checked against the deployed version."""
    arguments = coerce_integers(spec.parameters, arguments)
    problems = check_values(spec.parameters, arguments) + out_of_range(arguments)
    if problems:
        raise errors.InvalidInputArguments(
            f"{len(problems)} problem(s) with the schedule's input arguments: "
            + ", ".join(sorted({p["name"] for p in problems}))
            + ".",
            problems=problems,
        )
    return split_secrets(spec.parameters, arguments)


def create_op(
    ctx: Context,
    workspace_id: str,
    process_id: str,
    environment_id: str,
    body: ScheduleInput,
    source: str,
) -> Any:
    """The write that creates a schedule (also used at deploy for runplane.toml's)."""
    problems = check(body)
    if body.name is None:
        problems.append(_problem("name", "missing", "a name is required"))
    if body.cron is None:
        problems.append(_problem("cron", "missing", "a cron expression is required"))
    _refuse(problems)
    assert body.name is not None and body.cron is not None
    timezone = body.timezone or "UTC"

    def op(tx: Tx) -> Schedule:
        spec = _deployed_spec(tx, workspace_id, process_id, environment_id)
        public, secret = _arguments(spec, body.input_arguments or {})
        now = database_now(tx.conn, ctx.clock)
        enabled = True if body.enabled is None else body.enabled
        return store.create(
            tx,
            workspace_id=workspace_id,
            process_id=process_id,
            environment_id=environment_id,
            name=body.name or "",
            cron=body.cron or "",
            timezone=timezone,
            input_arguments=public,
            secret_arguments=secret,
            missed=Missed(body.missed or Missed.SKIP.value),
            enabled=enabled,
            source=source,
            next_due_at=first_due(body.cron or "", timezone, now) if enabled else None,
            now=now,
        )

    return op


async def create(
    ctx: Context, who: Principal, process_name: str, environment_name: str, body: ScheduleInput
) -> Schedule:
    """A new schedule of the deployment of `process_name` to `environment_name`."""
    who.require_not_process_secret()
    who.require(Scope.PROCESSES_WRITE)

    def op(tx: Tx) -> Schedule:
        process = catalog_store.get_process(tx.conn, who.workspace_id, process_name)
        env = catalog_store.get_environment(tx.conn, who.workspace_id, environment_name)
        who.require_target(process.id, process.name, env.id, env.name)
        made: Schedule = create_op(ctx, who.workspace_id, process.id, env.id, body, SOURCE_API)(tx)
        return made

    return await ctx.db.write(op)


def declare_op(tx: Tx, ctx: Context, workspace_id: str, process_id: str, env_id: str) -> None:
    """At deploy: create the schedules runplane.toml declares that the deployment lacks
    (by name). Schedules changed or deleted through the API stay as they are."""
    declared = _deployed_spec(tx, workspace_id, process_id, env_id).schedules
    present = store.names(tx.conn, process_id, env_id)
    for entry in declared:
        if entry["name"] in present:
            continue
        body = ScheduleInput(
            name=entry["name"],
            cron=entry["cron"],
            timezone=entry.get("timezone"),
            input_arguments=entry.get("inputs") or {},
            missed=entry.get("missed"),
            enabled=entry.get("enabled"),
        )
        create_op(ctx, workspace_id, process_id, env_id, body, SOURCE_MANIFEST)(tx)


async def list_schedules(
    ctx: Context, who: Principal, process_name: str | None = None
) -> list[Schedule]:
    """The workspace's schedules (of one process), where the caller may look."""
    who.require_catalog_read()

    def op(conn: Any) -> list[Schedule]:
        pid = (
            catalog_store.get_process(conn, who.workspace_id, process_name).id
            if process_name
            else None
        )
        return store.list_schedules(conn, who.workspace_id, pid, who.environment_ids)

    return await ctx.db.read(op)


async def get(ctx: Context, who: Principal, schedule_id: str) -> Schedule:
    who.require_catalog_read()
    schedule = await ctx.db.read(lambda c: store.get(c, who.workspace_id, schedule_id))
    return _visible(who, schedule)


async def update(ctx: Context, who: Principal, schedule_id: str, body: ScheduleInput) -> Schedule:
    """Change what is given; a changed timetable (or a resume) starts from now."""
    who.require_not_process_secret()
    who.require(Scope.PROCESSES_WRITE)
    _refuse(check(body))

    def op(tx: Tx) -> Schedule:
        current = _visible(who, store.get(tx.conn, who.workspace_id, schedule_id))
        values: dict[str, Any] = {}
        if body.name is not None and body.name != current.name:
            if body.name in store.names(tx.conn, current.process_id, current.environment_id):
                raise errors.Conflict(
                    f"This deployment already has a schedule named {body.name!r}.",
                    problems=[_problem("name", "name_taken", "already in use")],
                )
            values["name"] = body.name
        if body.input_arguments is not None:
            spec = _deployed_spec(
                tx, current.workspace_id, current.process_id, current.environment_id
            )
            public, secret = _arguments(spec, body.input_arguments)
            values |= {"input_arguments": public, "secret_arguments": secret}
        if body.missed is not None:
            values["missed"] = body.missed
        cron = body.cron or current.cron
        timezone = body.timezone or current.timezone
        enabled = current.enabled if body.enabled is None else body.enabled
        values |= {"cron": cron, "timezone": timezone, "enabled": enabled}
        now = database_now(tx.conn, ctx.clock)
        retimed = (cron, timezone, enabled) != (current.cron, current.timezone, current.enabled)
        if retimed or not enabled:
            values["next_due_at"] = first_due(cron, timezone, now) if enabled else None
        store.change(tx, schedule_id, now, **values)
        return store.get(tx.conn, who.workspace_id, schedule_id)

    return await ctx.db.write(op)


async def delete(ctx: Context, who: Principal, schedule_id: str) -> None:
    who.require_not_process_secret()
    who.require(Scope.PROCESSES_WRITE)

    def op(tx: Tx) -> None:
        _visible(who, store.get(tx.conn, who.workspace_id, schedule_id))
        store.remove(tx, schedule_id)

    await ctx.db.write(op)


def _visible(who: Principal, schedule: Schedule) -> Schedule:
    if who.environment_ids is not None and schedule.environment_id not in who.environment_ids:
        raise errors.NotFound("No such schedule.")
    return schedule


def _starter(schedule: Schedule) -> Principal:
    """Who starts a schedule's executions: the schedule, on its workspace's behalf."""
    return Principal(
        workspace_id=schedule.workspace_id,
        credential_id=f"schedule:{schedule.id}",
        kind=CredentialKind.API_TOKEN,
        name=f"schedule {schedule.name}",
        scopes=frozenset({Scope.ADMIN}),
    )


async def earliest_due(ctx: Context) -> datetime | None:
    """The soonest due instant of any enabled schedule (a cheap read, every interval)."""
    return await ctx.db.read(store.earliest_due)


async def fire_due(ctx: Context, now: datetime | None = None) -> list[str]:
    """One look: start what is due, move each due schedule on. Returns the client
    execution ids started (or found started already). `now` is for tests; else the
    database's clock."""

    def op(tx: Tx) -> list[str]:
        at = now or database_now(tx.conn, ctx.clock)
        started: list[str] = []
        for schedule in store.due(tx, at):
            assert schedule.next_due_at is not None
            decided = look(
                schedule.cron, schedule.timezone, schedule.next_due_at, at, schedule.missed
            )
            values: dict[str, Any] = {"next_due_at": decided.next_due}
            if decided.skipped:
                log.info(
                    "schedule %s of %s: %d missed due time(s) not run",
                    schedule.name,
                    schedule.process_name,
                    decided.skipped,
                )
            if decided.run:
                inputs = {
                    **schedule.input_arguments,
                    **store.secret_arguments(tx.conn, schedule.id),
                }
            for due in decided.run:
                client_id = execution_id(schedule.id, due)
                request = executions.StartRequest(
                    process=schedule.process_name,
                    input_arguments=inputs,
                    environment=schedule.environment_name,
                    execution_id=client_id,
                )
                values["last_due_at"] = due
                try:
                    execution, _ = executions.start_op(ctx, _starter(schedule), request)(tx)
                except errors.RunplaneError as exc:
                    values["last_error"] = f"{exc.detail} (due {due.isoformat()})"
                    log.warning("schedule %s could not start: %s", schedule.name, exc.detail)
                    continue
                values |= {"last_execution_id": execution.id, "last_error": None}
                started.append(client_id)
            store.change(tx, schedule.id, at, **values)
        return started

    return await ctx.db.write(op)
