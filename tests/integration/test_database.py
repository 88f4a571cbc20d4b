"""The database gateway: group commit, per-write failure isolation, events after commit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from runplane.domain import errors
from runplane.domain.events import DomainEvent, WorkAvailable
from runplane.store.database import Database, Tx, database_now
from runplane.store.schema import workspaces
from tests.conftest import isolated_engine
from tests.support import on_test_database

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Boom(Exception):
    """A write that fails after it wrote something."""


def _insert(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
    def op(tx: Tx) -> str:
        tx.conn.execute(workspaces.insert().values(id=name, name=name, created_at=NOW))
        tx.emit(WorkAvailable(name))
        if fail:
            raise Boom(name)
        return name

    return op


async def _run(db: Database, count: int) -> tuple[list[object], list[DomainEvent]]:
    delivered: list[DomainEvent] = []
    db.on_events = delivered.extend
    db.start()
    try:
        results = await asyncio.gather(
            *(db.write(_insert(f"ws{i}", fail=i % 3 == 0)) for i in range(count)),
            return_exceptions=True,
        )
    finally:
        await db.close()
    return results, delivered


@pytest.mark.parametrize("count", [1, 2, 50])
def test_a_failing_write_is_undone_alone_and_others_commit(
    backend: str, tmp_path: Path, count: int
) -> None:
    with isolated_engine(backend, tmp_path) as engine:
        db = Database(str(engine.url.render_as_string(hide_password=False)))
        on_test_database(db, engine)
        results, delivered = asyncio.run(_run(db, count))
        expected_ok = {f"ws{i}" for i in range(count) if i % 3}
        assert {r for r in results if isinstance(r, str)} == expected_ok
        assert sum(isinstance(r, Boom) for r in results) == count - len(expected_ok)
        with engine.connect() as conn:
            stored = set(conn.scalars(select(workspaces.c.name)))
        assert stored == expected_ok
        assert {e.environment_id for e in delivered if isinstance(e, WorkAvailable)} == expected_ok


def test_many_concurrent_writes_share_commits(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'g.db'}")
    db.migrate()

    async def go() -> None:
        db.start()
        try:
            await asyncio.gather(*(db.write(_insert(f"w{i}")) for i in range(200)))
        finally:
            await db.close()

    asyncio.run(go())
    assert db.writes == 200
    assert db.batches < 200  # group commit: fewer transactions than writes


def test_leases_read_the_database_clock(engine: Engine, backend: str) -> None:
    """On PostgreSQL a lease is measured by the server's clock, not the caller's (a skewed
    replica or runtime does not shorten or stretch leases); SQLite is one node's clock."""
    skewed = datetime(2000, 1, 1, tzinfo=UTC)
    with engine.connect() as conn:
        now = database_now(conn, lambda: skewed)
    if backend == "postgres":
        assert abs((now - datetime.now(UTC)).total_seconds()) < 60
        assert now.tzinfo is not None
    else:
        assert now == skewed


def test_an_unreachable_database_is_503_database_unavailable_not_a_crash() -> None:
    """Reads and writes against a database that does not answer (here: nothing listens
    on the port) raise DatabaseUnavailable, which the API answers 503 + Retry-After."""
    db = Database("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")

    async def main() -> None:
        db.start()
        try:
            with pytest.raises(errors.DatabaseUnavailable) as read:
                await db.read(lambda conn: conn.execute(select(workspaces)).all())
            with pytest.raises(errors.DatabaseUnavailable):
                await db.write(lambda tx: tx.conn.execute(select(workspaces)).all())
        finally:
            await db.close()
        assert read.value.status == 503 and read.value.extra["retry_after"] >= 1

    asyncio.run(main())
