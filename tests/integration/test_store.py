"""The store's named operations, on real SQLite and real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, select

from runplane.domain import errors
from runplane.domain.filters import EVERYTHING, NOTHING, AllOf, AnyOf, Condition, Field, Not, Op
from runplane.domain.ids import new_id
from runplane.domain.params import fingerprint
from runplane.domain.states import Status
from runplane.manifest import parse_manifest
from runplane.store import catalog, executions, leases, listing, logs
from runplane.store.database import Tx
from runplane.store.schema import executions as executions_table

T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = 30.0

MANIFEST = """
[process]
name = "bot"
entrypoint = "bot:main"
retries = {retries}
[parameters.x]
type = "integer"
default = 1
"""


def write(engine: Engine, fn: Callable[[Tx], T]) -> T:
    with engine.begin() as conn:
        return fn(Tx(conn))


def read(engine: Engine, fn: Callable[[Any], T]) -> T:
    with engine.connect() as conn:
        return fn(conn)


class World:
    """A workspace with process `bot` deployed to production."""

    def __init__(self, engine: Engine, retries: int = 0, limit: int | None = None) -> None:
        self.engine = engine
        self.ws = write(engine, lambda tx: catalog.bootstrap(tx, T0))
        spec = parse_manifest(MANIFEST.format(retries=retries))
        version, _ = write(
            engine,
            lambda tx: catalog.create_version(
                tx, self.ws, "bot", spec.to_dict(), {}, "a" * 64, b"zip", T0
            ),
        )
        self.version = version
        self.env = read(engine, lambda c: catalog.get_environment(c, self.ws, "production"))
        self.sandbox = read(engine, lambda c: catalog.get_environment(c, self.ws, "sandbox"))
        proc = read(engine, lambda c: catalog.get_process(c, self.ws, "bot"))
        self.deployment, _ = write(
            engine,
            lambda tx: catalog.put_deployment(tx, proc, self.env, version, {}, {}, True, limit, T0),
        )
        self.max_attempts = retries + 1

    def new(self, client_id: str | None = None, x: int = 1, at: datetime = T0) -> tuple[Any, bool]:
        eid = new_id()
        item = executions.NewExecution(
            id=eid,
            workspace_id=self.ws,
            process_id=self.deployment.process_id,
            version_id=self.version.id,
            deployment_id=self.deployment.id,
            environment_id=self.env.id,
            client_execution_id=client_id or eid,
            max_attempts=self.max_attempts,
            timeout_seconds=60,
            inputs={"x": x},
            secret_inputs={},
            input_fingerprint=fingerprint(self.env.id, {"x": x}),
            request_fingerprint=fingerprint("", {"x": x}),
            process_name="bot",
            version_number=self.version.number,
            environment_name="production",
        )
        return write(self.engine, lambda tx: executions.create_execution(tx, item, at))

    def claim(self, at: datetime = T0, envs: list[str] | None = None) -> Any:
        return write(self.engine, lambda tx: leases.claim_next(tx, "rt-1", envs, at, TTL))

    def get(self, eid: str) -> Any:
        return read(self.engine, lambda c: executions.get_execution(c, self.ws, eid))


def test_bootstrap_is_idempotent(engine: Engine) -> None:
    a = write(engine, lambda tx: catalog.bootstrap(tx, T0))
    b = write(engine, lambda tx: catalog.bootstrap(tx, T0))
    assert a == b
    names = [e.name for e in read(engine, lambda c: catalog.list_environments(c, a))]
    assert names == ["production", "sandbox"]


def test_same_content_is_the_same_version(engine: Engine) -> None:
    w = World(engine)
    spec = parse_manifest(MANIFEST.format(retries=0)).to_dict()
    again, created = write(
        engine, lambda tx: catalog.create_version(tx, w.ws, "bot", spec, {}, "a" * 64, b"z", T0)
    )
    assert not created and again.number == 1
    other, created = write(
        engine, lambda tx: catalog.create_version(tx, w.ws, "bot", spec, {}, "b" * 64, b"z", T0)
    )
    assert created and other.number == 2


def test_client_execution_id_is_idempotent_and_conflicts_on_other_inputs(engine: Engine) -> None:
    w = World(engine)
    first, created = w.new("job-1", x=1)
    assert created and first.status is Status.QUEUED
    assert first == w.get(first.id)  # the record built from the insert is the stored one
    again, created = w.new("job-1", x=1)
    assert not created and again.id == first.id
    with pytest.raises(errors.ExecutionIdConflict):
        w.new("job-1", x=2)
    count = read(engine, lambda c: len(c.execute(select(executions_table.c.id)).all()))
    assert count == 1


def test_claim_leases_oldest_first_with_increasing_fencing_token(engine: Engine) -> None:
    w = World(engine)
    a, _ = w.new()
    b, _ = w.new()
    claim = w.claim()
    assert claim.execution_id == a.id and claim.lease_token == 1 and claim.attempt == 1
    assert claim.lease_expires_at == T0 + timedelta(seconds=TTL)
    assert w.get(a.id).status is Status.RUNNING
    assert w.claim().execution_id == b.id
    assert w.claim() is None


def test_claim_only_serves_the_runtimes_environments(engine: Engine) -> None:
    w = World(engine)
    w.new()
    assert w.claim(envs=[w.sandbox.id]) is None
    assert w.claim(envs=[w.env.id]) is not None


def test_concurrency_limit_is_checked_at_claim(engine: Engine) -> None:
    w = World(engine, limit=1)
    w.new()
    w.new()
    first = w.claim()
    assert first is not None
    assert w.claim() is None
    write(engine, lambda tx: leases.finish(tx, first.execution_id, 1, Status.SUCCEEDED, T0))
    assert w.claim() is not None


def test_report_with_stale_fencing_token_is_refused(engine: Engine) -> None:
    w = World(engine)
    e, _ = w.new()
    claim = w.claim()
    with pytest.raises(errors.StaleLease):
        write(
            engine,
            lambda tx: leases.finish(tx, e.id, claim.lease_token + 1, Status.SUCCEEDED, T0),
        )
    with pytest.raises(errors.StaleLease):
        write(engine, lambda tx: leases.renew_lease(tx, e.id, 99, T0, TTL))
    with pytest.raises(errors.StaleLease):
        write(engine, lambda tx: logs.append_log(tx, e.id, 99, 1, "x", T0))
    assert w.get(e.id).status is Status.RUNNING
    status = write(
        engine,
        lambda tx: leases.finish(
            tx, e.id, claim.lease_token, Status.SUCCEEDED, T0, result={"ok": True}
        ),
    )
    assert status is Status.SUCCEEDED
    done = w.get(e.id)
    assert done.result == {"ok": True} and done.finished_at == T0


def test_terminal_execution_never_changes(engine: Engine) -> None:
    w = World(engine)
    e, _ = w.new()
    claim = w.claim()
    write(engine, lambda tx: leases.finish(tx, e.id, claim.lease_token, Status.FAILED, T0))
    with pytest.raises(errors.StaleLease):
        write(engine, lambda tx: leases.finish(tx, e.id, claim.lease_token, Status.SUCCEEDED, T0))
    with pytest.raises(errors.ExecutionFinished):
        write(engine, lambda tx: executions.request_cancel(tx, w.ws, e.id, T0))
    assert w.get(e.id).status is Status.FAILED


def test_failed_attempt_with_retries_left_is_requeued_after_backoff(engine: Engine) -> None:
    w = World(engine, retries=1)
    e, _ = w.new()
    claim = w.claim()
    status = write(
        engine,
        lambda tx: leases.finish(
            tx, e.id, claim.lease_token, Status.FAILED, T0, error_code="PROCESS_ERROR"
        ),
    )
    assert status is Status.QUEUED
    again = w.get(e.id)
    assert again.attempt == 2 and again.runtime_id is None
    assert w.claim(at=T0) is None  # backoff not over yet
    second = w.claim(at=T0 + timedelta(seconds=5))
    assert second.attempt == 2 and second.lease_token == 2


def test_heartbeat_extends_the_lease_and_reports_cancel_requests(engine: Engine) -> None:
    w = World(engine)
    e, _ = w.new()
    claim = w.claim()
    later = T0 + timedelta(seconds=10)
    expires, cancel = write(engine, lambda tx: leases.renew_lease(tx, e.id, 1, later, TTL))
    assert expires == later + timedelta(seconds=TTL) and not cancel
    write(engine, lambda tx: executions.request_cancel(tx, w.ws, e.id, later))
    _, cancel = write(
        engine, lambda tx: leases.renew_lease(tx, e.id, claim.lease_token, later, TTL)
    )
    assert cancel
    write(engine, lambda tx: leases.finish(tx, e.id, claim.lease_token, Status.CANCELLED, later))
    assert w.get(e.id).status is Status.CANCELLED


def test_cancel_of_queued_execution_is_immediate(engine: Engine) -> None:
    w = World(engine)
    e, _ = w.new()
    got = write(engine, lambda tx: executions.request_cancel(tx, w.ws, e.id, T0))
    assert got.status is Status.CANCELLED and got.error_code == "CANCELLED"
    assert w.claim() is None


@pytest.mark.parametrize(
    ("retries", "cancel", "expected"),
    [(0, False, Status.FAILED), (1, False, Status.QUEUED), (1, True, Status.CANCELLED)],
)
def test_expired_lease_is_reclaimed(
    engine: Engine, retries: int, cancel: bool, expected: Status
) -> None:
    w = World(engine, retries=retries)
    e, _ = w.new()
    w.claim()
    if cancel:
        write(engine, lambda tx: executions.request_cancel(tx, w.ws, e.id, T0))
    assert write(engine, lambda tx: leases.reclaim_expired(tx, T0 + timedelta(seconds=1))) == []
    swept = write(engine, lambda tx: leases.reclaim_expired(tx, T0 + timedelta(seconds=TTL + 1)))
    assert swept == [(e.id, expected)]
    got = w.get(e.id)
    assert got.status is expected
    if expected is Status.FAILED:
        assert got.error_code == "RUNTIME_LOST"
    with pytest.raises(errors.StaleLease):  # the lost runtime's late report changes nothing
        write(engine, lambda tx: leases.finish(tx, e.id, 1, Status.SUCCEEDED, T0))


def test_list_is_newest_first_with_keyset_cursor_and_filters(engine: Engine) -> None:
    w = World(engine)
    ids = [w.new(at=T0 + timedelta(seconds=i))[0].id for i in range(7)]
    w.claim()  # the oldest becomes running
    seen: list[str] = []
    cursor = None
    while True:
        page = read(
            engine, lambda c, at=cursor: listing.list_executions(c, w.ws, cursor=at, limit=3)
        )
        seen += [e.id for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    running = read(engine, lambda c: listing.list_executions(c, w.ws, statuses=[Status.RUNNING]))
    assert [e.id for e in running.items] == [ids[0]]
    window = read(
        engine,
        lambda c: listing.list_executions(
            c, w.ws, since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4)
        ),
    )
    assert [e.id for e in window.items] == [ids[3], ids[2]]
    with pytest.raises(errors.InvalidRequest):
        read(engine, lambda c: listing.list_executions(c, w.ws, cursor="not-a-cursor"))


def test_a_filter_is_applied_in_the_query_with_oldest_first_paging(engine: Engine) -> None:
    w = World(engine)
    ids = [w.new(at=T0 + timedelta(seconds=i))[0].id for i in range(6)]
    w.claim()  # ids[0] becomes running

    def ids_of(flt: Any, newest_first: bool = True) -> list[str]:
        page = read(
            engine,
            lambda c: listing.list_executions(
                c, w.ws, matching=flt, newest_first=newest_first, limit=50
            ),
        )
        return [e.id for e in page.items]

    at = lambda i: T0 + timedelta(seconds=i)  # noqa: E731
    window = AllOf(
        (Condition(Field.CREATED_AT, Op.GE, (at(1),)), Condition(Field.CREATED_AT, Op.LE, (at(3),)))
    )
    assert ids_of(window) == [ids[3], ids[2], ids[1]]
    assert ids_of(window, newest_first=False) == [ids[1], ids[2], ids[3]]
    queued_or_first = AnyOf(
        (Condition(Field.STATUS, Op.IN, (Status.RUNNING,)), Condition(Field.ID, Op.IN, (ids[5],)))
    )
    assert ids_of(queued_or_first) == [ids[5], ids[0]]
    not_running = Not(Condition(Field.STATUS, Op.IN, (Status.RUNNING,)))
    assert ids_of(not_running) == list(reversed(ids[1:]))
    by_names = AllOf(
        (
            Condition(Field.PROCESS_NAME, Op.IN, ("bot",)),
            Condition(Field.ENVIRONMENT_NAME, Op.IN, ("production",)),
            Condition(Field.ENVIRONMENT_ID, Op.IN, (w.env.id,)),
            Condition(Field.PROCESS_ID, Op.IN, (w.deployment.process_id,)),
            Condition(Field.UPDATED_AT, Op.LT, (at(5),)),
        )
    )
    assert ids_of(by_names) == list(reversed(ids[:5]))
    assert ids_of(EVERYTHING) == list(reversed(ids))
    assert ids_of(NOTHING) == []
    assert ids_of(Condition(Field.ID, Op.IN, ())) == []
    pages: list[str] = []
    cursor = None
    while True:
        page = read(
            engine,
            lambda c, at=cursor: listing.list_executions(
                c, w.ws, matching=not_running, cursor=at, limit=2, newest_first=False
            ),
        )
        pages += [e.id for e in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == ids[1:]


def test_logs_are_read_in_order_after_a_chunk(engine: Engine) -> None:
    w = World(engine)
    e, _ = w.new()
    claim = w.claim()
    for text in ("a\n", "b\n", "c\n"):
        write(engine, lambda tx, t=text: logs.append_log(tx, e.id, claim.lease_token, 1, t, T0))
    chunks = read(engine, lambda c: logs.read_logs(c, e.id))
    assert "".join(c.text for c in chunks) == "a\nb\nc\n"
    rest = read(engine, lambda c: logs.read_logs(c, e.id, chunks[0].id))
    assert [c.text for c in rest] == ["b\n", "c\n"]


def test_concurrent_claimers_never_take_the_same_execution(engine: Engine) -> None:
    w = World(engine)
    for _ in range(40):
        w.new()
    claimed: list[str] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def claimer() -> None:
        try:
            while True:
                c = w.claim()
                if c is None:
                    return
                with lock:
                    claimed.append(c.execution_id)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    assert len(claimed) == 40 and len(set(claimed)) == 40


def test_a_full_deployment_never_hides_other_work(engine: Engine) -> None:
    w = World(engine, limit=1)
    for _ in range(leases.CLAIM_CANDIDATES + 8):
        w.new()
    spec = parse_manifest('[process]\nname = "other"\nentrypoint = "o:main"\n')
    version, _ = write(
        engine,
        lambda tx: catalog.create_version(
            tx, w.ws, "other", spec.to_dict(), {}, "c" * 64, b"zip", T0
        ),
    )
    proc = read(engine, lambda c: catalog.get_process(c, w.ws, "other"))
    dep, _ = write(
        engine,
        lambda tx: catalog.put_deployment(tx, proc, w.env, version, {}, {}, True, None, T0),
    )
    other_id = new_id()
    item = executions.NewExecution(
        id=other_id,
        workspace_id=w.ws,
        process_id=proc.id,
        version_id=version.id,
        deployment_id=dep.id,
        environment_id=w.env.id,
        client_execution_id=other_id,
        max_attempts=1,
        timeout_seconds=60,
        inputs={},
        secret_inputs={},
        input_fingerprint="f",
        request_fingerprint="f",
        process_name="other",
        version_number=1,
        environment_name="production",
    )
    write(engine, lambda tx: executions.create_execution(tx, item, T0))
    first = w.claim()
    assert first is not None and first.execution_id != other_id
    second = w.claim()
    assert second is not None and second.execution_id == other_id
    assert w.claim() is None


def test_secret_inputs_are_sealed_at_rest(engine: Engine) -> None:
    w = World(engine)
    eid = new_id()
    canary = "canary-SEALED-5150"
    item = executions.NewExecution(
        id=eid,
        workspace_id=w.ws,
        process_id=w.deployment.process_id,
        version_id=w.version.id,
        deployment_id=w.deployment.id,
        environment_id=w.env.id,
        client_execution_id=eid,
        max_attempts=1,
        timeout_seconds=60,
        inputs={"x": 1, "token": "***"},
        secret_inputs={"token": canary},
        input_fingerprint="f",
        request_fingerprint=None,
        process_name="bot",
        version_number=1,
        environment_name="production",
    )
    write(engine, lambda tx: executions.create_execution(tx, item, T0))
    with engine.connect() as conn:
        raw = conn.exec_driver_sql(
            "SELECT secret_inputs FROM executions WHERE id = '" + eid + "'"
        ).scalar_one()
    assert canary not in str(raw) and "sealed" in str(raw)
    claim = w.claim()
    assert claim.inputs["token"] == canary and claim.secret_names == ("token",)
