"""Robocorp robots' runs: the work-items API their libraries call from inside a run.

When a runtime claims an execution of a robot (robot.py), the claim carries the
run's context (``begin``): the ids ``RC_WORKSPACE_ID``, ``RC_PROCESS_ID``,
``RC_PROCESS_RUN_ID`` (the execution), ``RC_ACTIVITY_RUN_ID`` (the attempt) and
``RC_WORKITEM_ID`` (the run's input item: the one the Robocorp surface started it
with, else one made now from the trigger's input), and a token for
``RC_API_WORKITEM_TOKEN`` and ``RC_API_PROCESS_TOKEN``. The token is a credential
of its own kind (``run_token``): it has no scope, names the execution and
attempt, and is refused once that attempt no longer runs.

What the robot does with its items is kept on them (work_items columns): its
outputs (children of the input item), the state it released the input in, with
the exception it gave. At the run's end (``settle``, in the report's
transaction) an item it did not release is COMPLETED when the run succeeded and
FAILED (APPLICATION) otherwise; an input the robot released FAILED fails the
execution with its exception's code and message, whatever the exit status; and
a succeeded run's result is its last output item's payload (an object as it is,
anything else as ``{"payload": ...}``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from runplane.auth import secrets
from runplane.domain import errors
from runplane.domain.auth import CredentialKind, Principal
from runplane.domain.ids import new_id
from runplane.domain.model import Claim, Execution, WorkItemFile
from runplane.domain.states import Status
from runplane.service import executions
from runplane.service.context import Context
from runplane.service.work_items import UploadSlot
from runplane.store import credentials as credential_store
from runplane.store import executions as execution_store
from runplane.store import sealing
from runplane.store import work_items as store
from runplane.store.database import Tx

RELEASE_STATES = ("COMPLETED", "FAILED")
EXCEPTION_TYPES = ("BUSINESS", "APPLICATION")
MAX_CODE_CHARS = 200
MAX_MESSAGE_CHARS = 4000
DOWNLOAD_TTL_SECONDS = 3600


def begin(tx: Tx, claim: Claim, now: datetime) -> Claim:
    """The claim of a robot's attempt, with its run's context (ids and token)."""
    ws_id, process_id = store.run_of_execution(tx.conn, claim.execution_id)
    item_id = store.run_input(tx.conn, claim.execution_id)
    if item_id is None:
        item_id = new_id()
        store.create(
            tx,
            item_id=item_id,
            ws_id=ws_id,
            process_id=process_id,
            payload=claim.inputs,
            secrets=frozenset(claim.secret_names),
            execution_id=claim.execution_id,
            now=now,
        )
    token = secrets.new_secret(CredentialKind.RUN_TOKEN)
    credential_store.create_credential(
        tx,
        ws_id=ws_id,
        kind=CredentialKind.RUN_TOKEN,
        name=f"{claim.execution_id}:{claim.attempt}",
        token_hash=secrets.digest(token),
        scopes=[],
        environment_ids=None,
        process_id=process_id,
        expires_at=None,
        now=now,
    )
    context = {
        "workspaceId": ws_id,
        "processId": process_id,
        "runId": claim.execution_id,
        "activityRunId": f"{claim.execution_id}-{claim.attempt}",
        "workItemId": item_id,
        "token": token,
    }
    return replace(claim, robot_run=context)


def settle(
    tx: Tx,
    execution_id: str,
    outcome: Status,
    result: dict[str, Any] | None,
    error_code: str | None,
    error_message: str | None,
    now: datetime,
) -> tuple[Status, dict[str, Any] | None, str | None, str | None]:
    """A robot's reported end, with what it did to its work items: (outcome, result,
    error code, error message) to record; its unreleased items settled."""
    state, kind, code, message = store.released(tx.conn, execution_id)
    if outcome is Status.SUCCEEDED and state == "FAILED":
        outcome, result = Status.FAILED, None
        error_code = code or kind or "APPLICATION"
        error_message = message or f"The robot failed its work item ({kind or 'APPLICATION'})."
    if outcome is Status.SUCCEEDED:
        made, payload = store.last_output(tx.conn, execution_id)
        if made:
            result = payload if isinstance(payload, dict) else {"payload": payload}
    store.settle(tx, execution_id, outcome is Status.SUCCEEDED, error_code, error_message)
    credential_store.revoke_run_tokens(tx, execution_id, now)
    return outcome, result, error_code, error_message


def _run(conn: Any, who: Principal) -> tuple[str, int]:
    """(execution id, attempt) of a run token whose attempt still runs; else refused."""
    if who.kind is not CredentialKind.RUN_TOKEN:
        raise errors.Forbidden("This API is for a robot's run: use the run's token.")
    execution_id, _, attempt = who.name.rpartition(":")
    execution = execution_store.get_execution(conn, who.workspace_id, execution_id)
    if execution.status is not Status.RUNNING or execution.attempt != int(attempt):
        raise errors.WorkItemConflict("This run has ended: its token no longer works.")
    return execution_id, int(attempt)


def _item(conn: Any, who: Principal, item_id: str) -> tuple[str, store.WorkItemRef]:
    execution_id, _ = _run(conn, who)
    item = store.ref(conn, item_id)
    if item is None or item.execution_id != execution_id:
        raise errors.WorkItemNotFound(f"No work item {item_id!r} in this run.")
    return execution_id, item


def check_path(who: Principal, workspace_id: str, process_id: str, run_id: str | None) -> None:
    """The ids in the path must be the run's own."""
    execution_id = who.name.rpartition(":")[0]
    if (
        workspace_id != who.workspace_id
        or process_id != who.process_id
        or (run_id is not None and run_id != execution_id)
    ):
        raise errors.NotFound("No such run.")


async def reserve_next(ctx: Context, who: Principal) -> str | None:
    """The next input item for the run: none, as each run has the one it started with."""
    await ctx.db.read(lambda c: _run(c, who))
    return None


async def release(ctx: Context, who: Principal, body: Any) -> None:
    """Record how the robot released an item (again the same way: no change)."""
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The body must be a JSON object.")
    problems = []
    item_id, state, exception = body.get("workItemId"), body.get("state"), body.get("exception")
    if not isinstance(item_id, str):
        problems.append({"name": "workItemId", "code": "missing", "detail": "An item id."})
    if state not in RELEASE_STATES:
        problems.append({"name": "state", "code": "invalid", "detail": "COMPLETED or FAILED."})
    kind = code = message = None
    if exception is not None:
        if not isinstance(exception, dict) or exception.get("type") not in EXCEPTION_TYPES:
            problems.append(
                {"name": "exception.type", "code": "invalid", "detail": "BUSINESS or APPLICATION."}
            )
        else:
            kind = str(exception["type"])
            code = None if exception.get("code") is None else str(exception["code"])
            message = None if exception.get("message") is None else str(exception["message"])
    if problems:
        raise errors.InvalidRequest("The release is not valid.", problems=problems)
    assert isinstance(item_id, str) and isinstance(state, str)

    def op(tx: Tx) -> None:
        _, item = _item(tx.conn, who, item_id)
        if item.parent_id is not None:
            raise errors.WorkItemConflict("Only the run's input item is released.")
        store.release(
            tx,
            item_id,
            state,
            (
                kind,
                None if code is None else code[:MAX_CODE_CHARS],
                None if message is None else message[:MAX_MESSAGE_CHARS],
            ),
        )

    await ctx.db.write(op)


async def create_output(ctx: Context, who: Principal, input_id: str, body: Any) -> str:
    """A new output item of the run, a child of its input item."""
    payload = body.get("payload") if isinstance(body, dict) else None
    output_id = new_id()
    now = ctx.clock()

    def op(tx: Tx) -> None:
        _, item = _item(tx.conn, who, input_id)
        if item.parent_id is not None:
            raise errors.WorkItemConflict("An output item is made from the run's input item.")
        store.create_output(tx, item_id=output_id, parent=item, payload=payload, now=now)

    await ctx.db.write(op)
    return output_id


async def get_data(ctx: Context, who: Principal, item_id: str) -> Any:
    """An item's payload, secrets included (the run's own input)."""

    def op(conn: Any) -> Any:
        _item(conn, who, item_id)
        return store.payload_of(conn, item_id)

    return await ctx.db.read(op)


async def put_data(ctx: Context, who: Principal, item_id: str, payload: Any) -> None:
    def op(tx: Tx) -> None:
        _, item = _item(tx.conn, who, item_id)
        store.set_payload(tx, item_id, payload, store.secret_names(tx.conn, item.process_id))

    await ctx.db.write(op)


async def list_files(ctx: Context, who: Principal, item_id: str) -> list[WorkItemFile]:
    def op(conn: Any) -> list[WorkItemFile]:
        _item(conn, who, item_id)
        return store.files_of(conn, [item_id]).get(item_id, [])

    return await ctx.db.read(op)


async def request_upload(ctx: Context, who: Principal, item_id: str, body: Any) -> tuple[str, str]:
    """An upload slot for a file of the run's item: (file id, one-time token)."""
    fields = body if isinstance(body, dict) else {}
    slot = UploadSlot(fields.get("fileName"), fields.get("fileSize"), ctx.clock())

    def op(tx: Tx) -> None:
        _item(tx.conn, who, item_id)
        slot.add(tx, item_id)

    await ctx.db.write(op)
    return slot.file_id, slot.token


async def download_token(ctx: Context, who: Principal, item_id: str, file_id: str) -> str:
    """A link token for one of the run's item's files (good for DOWNLOAD_TTL_SECONDS)."""

    def op(conn: Any) -> None:
        _item(conn, who, item_id)
        found = store.file_by_id(conn, file_id)
        if found is None or found[0] != item_id:
            raise errors.NotFound("The work item has no such file.")

    await ctx.db.read(op)
    return sealing.sign(file_id)


async def download(ctx: Context, file_id: str, token: str) -> tuple[str, bytes]:
    """(name, bytes) of a file, for a link token made for it."""
    if sealing.signed(token, DOWNLOAD_TTL_SECONDS) != file_id:
        raise errors.Forbidden("The download link is not valid (or has expired).")
    found = await ctx.db.read(lambda c: store.file_by_id(c, file_id))
    if found is None:
        raise errors.NotFound("No such file.")
    return found[1], found[2]


async def delete_file(ctx: Context, who: Principal, item_id: str, file_id: str) -> None:
    def op(tx: Tx) -> None:
        _item(tx.conn, who, item_id)
        if not store.delete_file(tx, item_id, file_id):
            raise errors.NotFound("The work item has no such file.")

    await ctx.db.write(op)


async def list_items(ctx: Context, who: Principal, execution_id: str) -> list[dict[str, Any]]:
    """A run's work items for the native API (the caller must see the execution)."""
    return await items_of(ctx, await executions.get(ctx, who, execution_id))


async def items_of(ctx: Context, execution: Execution) -> list[dict[str, Any]]:
    """The work items of an execution the caller has already read (so may see)."""
    return await ctx.db.read(lambda c: store.run_items(c, execution.id))
