"""Use cases for runs and work items, the nouns of Robocorp's Control Room APIs.

A run is an execution; a work item is the payload it was started with. A
payload that is a JSON object gives the input arguments (older callers wrap
them as `{"variables": {...}}`); keys that name no parameter are dropped and
noted in the execution log, as on every vendor surface. A payload that is not
an object (an array, a string) gives no arguments: the run takes the
deployment's defaults, and the log says so.

Items made with `create_item` wait until a run-request gives them to runs (one
run each); `retry_item` gives an item whose run failed to a new run. Every
change here is one transaction: either all runs of a request start, or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runplane.auth import secrets
from runplane.domain import errors
from runplane.domain.auth import Principal, Scope
from runplane.domain.ids import new_id
from runplane.domain.model import Execution, Process, WorkItem
from runplane.domain.states import Status
from runplane.service import executions as svc
from runplane.service.context import Context
from runplane.store import catalog as catalog_store
from runplane.store import executions as execution_store
from runplane.store import logs as log_store
from runplane.store import work_items as store
from runplane.store.database import Tx

MAX_ITEMS_PER_REQUEST = 1000
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_FILE_NAME_CHARS = 255
UPLOAD_TTL = timedelta(hours=1)
RETRYABLE = frozenset({Status.FAILED, Status.TIMED_OUT, Status.CANCELLED})


@dataclass(frozen=True)
class Run:
    """An execution as a run: with its number within the process and its work items."""

    execution: Execution
    number: int
    work_item_ids: tuple[str, ...]


def inputs_of(payload: Any) -> dict[str, Any]:
    """The input arguments a work item payload gives."""
    if not isinstance(payload, dict):
        return {}
    variables = payload.get("variables")
    if len(payload) == 1 and isinstance(variables, dict):
        return variables
    return payload


def _visible_process(conn: Any, who: Principal, process: str) -> Process:
    found = catalog_store.get_process(conn, who.workspace_id, process)
    if not who.sees_process(found.id):
        raise errors.Forbidden("This credential is for another process.")
    return found


def _start(tx: Tx, ctx: Context, who: Principal, process: str, payload: Any) -> Execution:
    """Start one run with this payload (inside the caller's transaction)."""
    request = svc.StartRequest(process, inputs_of(payload), drop_undeclared=True)
    execution, _ = svc.start_op(ctx, who, request)(tx)
    if not isinstance(payload, dict):
        log_store.add_note(
            tx,
            execution.id,
            "[runplane] the work item payload is not a JSON object: "
            "no input arguments were taken from it\n",
            ctx.clock(),
        )
    return execution


def _check_count(n: int) -> None:
    if n > MAX_ITEMS_PER_REQUEST:
        raise errors.InvalidRequest(
            f"At most {MAX_ITEMS_PER_REQUEST} work items per request.",
            problems=[
                {"name": "body", "code": "too_many", "detail": f"≤ {MAX_ITEMS_PER_REQUEST}."}
            ],
        )


async def start_runs(ctx: Context, who: Principal, process: str, payloads: list[Any]) -> list[Run]:
    """One run per payload, each with a new work item holding it; all or none."""
    who.require(Scope.EXECUTIONS_START)
    _check_count(len(payloads))
    now = ctx.clock()

    def op(tx: Tx) -> list[Run]:
        secrets: dict[str, frozenset[str]] = {}  # process id → secret names, read once
        return [_start_with_new_item(tx, ctx, who, process, p, now, secrets) for p in payloads]

    return await ctx.db.write(op)


def _start_with_new_item(
    tx: Tx,
    ctx: Context,
    who: Principal,
    process: str,
    payload: Any,
    now: datetime,
    secrets: dict[str, frozenset[str]],
) -> Run:
    """Start a run and make the work item holding its payload (`secrets` caches the
    process's secret parameter names across the runs of one request)."""
    execution = _start(tx, ctx, who, process, payload)
    if execution.process_id not in secrets:
        secrets[execution.process_id] = store.secret_names(tx.conn, execution.process_id)
    item_id = new_id()
    store.create(
        tx,
        item_id=item_id,
        ws_id=who.workspace_id,
        process_id=execution.process_id,
        payload=payload,
        secrets=secrets[execution.process_id],
        execution_id=execution.id,
        now=now,
    )
    return Run(execution, 0, (item_id,))


async def create_item(ctx: Context, who: Principal, process: str, payload: Any) -> WorkItem:
    """A work item that waits for a run-request."""
    who.require(Scope.EXECUTIONS_START)
    now = ctx.clock()
    item_id = new_id()

    def op(tx: Tx) -> WorkItem:
        found = _visible_process(tx.conn, who, process)
        secrets = store.secret_names(tx.conn, found.id)
        store.create(
            tx,
            item_id=item_id,
            ws_id=who.workspace_id,
            process_id=found.id,
            payload=payload,
            secrets=secrets,
            execution_id=None,
            now=now,
        )
        return store.get(tx.conn, who.workspace_id, found.id, item_id)

    return await ctx.db.write(op)


async def run_items(
    ctx: Context, who: Principal, process: str, item_ids: list[str] | None
) -> list[Run]:
    """Start one run per named waiting item; with None, per waiting item of the
    process (oldest first), or one run with an empty payload when none waits."""
    who.require(Scope.EXECUTIONS_START)
    if item_ids is not None:
        _check_count(len(item_ids))
        if len(set(item_ids)) != len(item_ids):
            raise errors.InvalidRequest(
                "workItemIds names an item twice.",
                problems=[{"name": "workItemIds", "code": "duplicate", "detail": "Unique ids."}],
            )
    now = ctx.clock()

    def op(tx: Tx) -> list[Run]:
        found = _visible_process(tx.conn, who, process)
        if item_ids is None:
            waiting = store.list_items(
                tx.conn,
                who.workspace_id,
                found.id,
                waiting=True,
                oldest_first=True,
                limit=MAX_ITEMS_PER_REQUEST,
            )
            ids = [item.id for item in waiting]
        else:
            ids = item_ids
            for item_id in ids:
                item = store.get(tx.conn, who.workspace_id, found.id, item_id)
                if item.execution_id is not None:
                    raise errors.WorkItemConflict(
                        f"Work item {item_id!r} was given to run {item.execution_id!r} already.",
                        problems=[
                            {
                                "name": "workItemIds",
                                "code": "work_item_taken",
                                "detail": f"{item_id} is not waiting.",
                            }
                        ],
                    )
        if not ids:
            return [_start_with_new_item(tx, ctx, who, process, {}, now, {})]
        runs = []
        for item_id in ids:
            execution = _start(tx, ctx, who, process, store.payload_of(tx.conn, item_id))
            store.attach(tx, item_id, execution.id, None, now)
            runs.append(Run(execution, 0, (item_id,)))
        return runs

    return await ctx.db.write(op)


async def retry_item(ctx: Context, who: Principal, process: str, item_id: str) -> WorkItem:
    """Give an item whose run failed, timed out or was cancelled to a new run."""
    who.require(Scope.EXECUTIONS_START)
    now = ctx.clock()

    def op(tx: Tx) -> WorkItem:
        found = _visible_process(tx.conn, who, process)
        item = store.get(tx.conn, who.workspace_id, found.id, item_id)
        if item.execution_status not in RETRYABLE:
            state = "waiting" if item.execution_status is None else item.execution_status.value
            raise errors.WorkItemConflict(
                f"Work item {item_id!r} is {state}: only an item whose run failed is retried."
            )
        execution = _start(tx, ctx, who, process, store.payload_of(tx.conn, item_id))
        store.attach(tx, item_id, execution.id, item.execution_id, now)
        return store.get(tx.conn, who.workspace_id, found.id, item_id)

    return await ctx.db.write(op)


async def get_item(ctx: Context, who: Principal, process: str, item_id: str) -> WorkItem:
    """One work item of the process."""
    who.require(Scope.EXECUTIONS_READ)

    def op(conn: Any) -> WorkItem:
        found = _visible_process(conn, who, process)
        return store.get(conn, who.workspace_id, found.id, item_id)

    return await ctx.db.read(op)


async def list_items(
    ctx: Context,
    who: Principal,
    process: str,
    run_id: str | None = None,
    limit: int = 100,
    oldest_first: bool = False,
) -> list[WorkItem]:
    """The process's work items, newest (or oldest) first; of one run when `run_id` is given."""
    who.require(Scope.EXECUTIONS_READ)

    def op(conn: Any) -> list[WorkItem]:
        found = _visible_process(conn, who, process)
        if run_id is not None:
            _run_of(conn, who, found, run_id)
        return store.list_items(
            conn,
            who.workspace_id,
            found.id,
            execution_id=run_id,
            limit=limit,
            oldest_first=oldest_first,
        )

    return await ctx.db.read(op)


def _run_of(conn: Any, who: Principal, process: Process, run_id: str) -> Execution:
    execution = execution_store.get_execution(conn, who.workspace_id, run_id)
    if execution.process_id != process.id or not (
        who.sees_process(execution.process_id) and who.sees_environment(execution.environment_id)
    ):
        raise errors.ExecutionNotFound(f"No run {run_id!r} of process {process.name!r}.")
    return execution


def _runs(conn: Any, executions: list[Execution]) -> list[Run]:
    ids = [e.id for e in executions]
    numbers = execution_store.run_numbers(conn, ids)
    items = store.for_executions(conn, ids)
    return [Run(e, numbers.get(e.id, 0), tuple(items.get(e.id, ()))) for e in executions]


async def get_run(ctx: Context, who: Principal, process: str, run_id: str) -> Run:
    """A run of the process."""
    who.require(Scope.EXECUTIONS_READ)

    def op(conn: Any) -> Run:
        found = catalog_store.get_process(conn, who.workspace_id, process)
        return _runs(conn, [_run_of(conn, who, found, run_id)])[0]

    return await ctx.db.read(op)


async def list_runs(
    ctx: Context, who: Principal, process: str | None, limit: int = 100
) -> list[Run]:
    """The newest runs of a process, or of every process of the workspace."""
    page = await svc.list_executions(ctx, who, process=process, limit=limit)
    if process is not None and not page.items:
        await ctx.db.read(lambda c: catalog_store.get_process(c, who.workspace_id, process))
    return await ctx.db.read(lambda c: _runs(c, page.items))


async def request_upload(
    ctx: Context, who: Principal, process: str, item_id: str, file_name: Any, file_size: Any
) -> tuple[str, str]:
    """An upload slot for a file of the item: (file id, one-time upload token).

    The token is shown once, stored as a digest, and good for one upload
    within UPLOAD_TTL.
    """
    who.require(Scope.EXECUTIONS_START)
    slot = UploadSlot(file_name, file_size, ctx.clock())

    def op(tx: Tx) -> None:
        found = _visible_process(tx.conn, who, process)
        store.get(tx.conn, who.workspace_id, found.id, item_id)
        slot.add(tx, item_id)

    await ctx.db.write(op)
    return slot.file_id, slot.token


class UploadSlot:
    """A file to upload to a work item, checked (InvalidRequest): its id and one-time
    token, made before the write that adds it (`add`), within UPLOAD_TTL of `now`."""

    def __init__(self, file_name: Any, file_size: Any, now: datetime) -> None:
        check_file(file_name, file_size)
        self.file_name: str = file_name
        self.file_size: int = file_size
        self.now = now
        self.file_id = new_id()
        self.token = secrets.new_upload_token()

    def add(self, tx: Tx, item_id: str) -> None:
        store.add_file_slot(
            tx,
            file_id=self.file_id,
            item_id=item_id,
            file_name=self.file_name,
            file_size=self.file_size,
            upload_hash=secrets.digest(self.token),
            expires_at=self.now + UPLOAD_TTL,
            now=self.now,
        )


async def upload(ctx: Context, file_id: str, token: str, content: bytes) -> None:
    """Fill an upload slot: the token is the credential (presigned-POST style)."""
    presented = secrets.digest(token)
    now = ctx.clock()

    def op(tx: Tx) -> None:
        slot = store.file_slot(tx.conn, file_id)
        stored = slot[0] if slot is not None else secrets.digest("")
        if not secrets.same_digest(presented, stored) or slot is None:
            raise errors.Forbidden("The upload token is not valid for this file (or was used).")
        _, size, expires_at = slot
        if expires_at <= now:
            raise errors.Forbidden("The upload token has expired: ask for a new upload.")
        if len(content) != size:
            raise errors.InvalidRequest(
                f"The file has {len(content)} bytes; {size} were announced.",
                problems=[{"name": "file", "code": "size_mismatch", "detail": f"{size} bytes."}],
            )
        if not store.fill_file(tx, file_id, presented, content, now):
            raise errors.Forbidden("The upload token is not valid for this file (or was used).")

    await ctx.db.write(op)


async def get_file(
    ctx: Context, who: Principal, process: str, item_id: str, file_id: str
) -> tuple[str, bytes]:
    """(name, bytes) of a file uploaded to the item."""
    who.require(Scope.EXECUTIONS_READ)

    def op(conn: Any) -> tuple[str, bytes]:
        found = _visible_process(conn, who, process)
        store.get(conn, who.workspace_id, found.id, item_id)
        return store.file_content(conn, item_id, file_id)

    return await ctx.db.read(op)


def check_file(file_name: Any, file_size: Any) -> None:
    """InvalidRequest unless the name and announced size are those of an acceptable file."""
    problems = []
    if not (
        isinstance(file_name, str)
        and 0 < len(file_name) <= MAX_FILE_NAME_CHARS
        and not any(c in file_name for c in "/\\\x00")
    ):
        problems.append(
            {
                "name": "fileName",
                "code": "invalid",
                "detail": f"1 to {MAX_FILE_NAME_CHARS} characters, no '/', '\\' or NUL.",
            }
        )
    if (
        not isinstance(file_size, int)
        or isinstance(file_size, bool)
        or not 0 <= file_size <= MAX_FILE_BYTES
    ):
        problems.append(
            {"name": "fileSize", "code": "invalid", "detail": f"0 to {MAX_FILE_BYTES} bytes."}
        )
    if problems:
        raise errors.InvalidRequest(
            "The file to upload is not valid: " + ", ".join(p["name"] for p in problems) + ".",
            problems=problems,
        )
