"""Events across replicas: the NOTIFY payload codec, notify on commit only, the listener."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest

from runplane.domain.events import (
    CatalogChanged,
    CredentialsChanged,
    DomainEvent,
    ExecutionChanged,
    LogAppended,
    WorkAvailable,
)
from runplane.store import notify
from runplane.store.database import Database, Tx
from runplane.store.schema import workspaces
from tests.support import postgres_url

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EVERY_KIND: list[DomainEvent] = [
    ExecutionChanged("0190a1b2-c3d4-7e5f-8a9b-0123456789ab", "running"),
    WorkAvailable("env-1"),
    LogAppended("0190a1b2-c3d4-7e5f-8a9b-0123456789ab"),
    CatalogChanged("proc-1"),
    CredentialsChanged("ws-1"),
]


def test_payload_round_trips_every_event_kind_with_its_node() -> None:
    [payload] = notify.encode("node-a", EVERY_KIND)
    assert notify.decode(payload) == ("node-a", EVERY_KIND)


def test_repeated_events_are_sent_once_in_order() -> None:
    events: list[DomainEvent] = [WorkAvailable("e"), ExecutionChanged("x", "queued")] * 50
    [payload] = notify.encode("n", events)
    assert notify.decode(payload)[1] == [WorkAvailable("e"), ExecutionChanged("x", "queued")]


def test_a_large_batch_is_split_into_payloads_under_the_limit() -> None:
    events: list[DomainEvent] = [
        ExecutionChanged(f"0190a1b2-c3d4-7e5f-8a9b-{i:012d}", "queued") for i in range(600)
    ]
    payloads = notify.encode("n", events)
    assert len(payloads) > 1
    assert all(len(p.encode()) <= notify.MAX_PAYLOAD_BYTES for p in payloads)
    assert [ev for p in payloads for ev in notify.decode(p)[1]] == events


def test_unknown_kinds_and_malformed_payloads_are_skipped() -> None:
    payload = '{"n":"b","e":[["z","new kind"],["w"],["x",1,"queued"],"x",["w","env"]]}'
    assert notify.decode(payload) == ("b", [WorkAvailable("env")])
    assert notify.decode("not json") == ("", [])
    assert notify.decode('{"e": []}') == ("", [])


def _schema_url(schema: str) -> str:
    return f"{postgres_url()}?options=-csearch_path%3D{schema}"


def _insert(name: str, fail: bool = False):  # type: ignore[no-untyped-def]
    def op(tx: Tx) -> str:
        tx.conn.execute(workspaces.insert().values(id=name, name=name, created_at=NOW))
        tx.emit(WorkAvailable(name))
        if fail:
            raise RuntimeError(name)
        return name

    return op


@pytest.mark.postgres
def test_committed_events_reach_the_other_node_and_rolled_back_ones_do_not(
    pg_schema: str,
) -> None:
    async def scenario() -> tuple[list[DomainEvent], list[DomainEvent], int]:
        sender, receiver = Database(_schema_url(pg_schema)), Database(_schema_url(pg_schema))
        await asyncio.to_thread(sender.migrate)
        got: list[DomainEvent] = []
        own: list[DomainEvent] = []
        arrived = asyncio.Event()
        connected = asyncio.Event()

        def deliver(events: list[DomainEvent]) -> None:
            got.extend(events)
            arrived.set()

        for db in (sender, receiver):
            db.start()
        listener = await receiver.enable_notify(deliver, connected.set)
        own_listener = await sender.enable_notify(own.extend, lambda: None)
        assert listener is not None and own_listener is not None
        assert listener.channel == f"runplane_{pg_schema}"
        tasks = [asyncio.create_task(x.run()) for x in (listener, own_listener)]
        try:
            await asyncio.wait_for(connected.wait(), 10)
            results = await asyncio.gather(
                sender.write(_insert("kept")),
                sender.write(_insert("undone", fail=True)),
                return_exceptions=True,
            )
            assert results[0] == "kept" and isinstance(results[1], RuntimeError)
            await asyncio.wait_for(arrived.wait(), 10)
            await asyncio.sleep(0.2)  # anything else (the undone write's event) would be here
            return got, own, listener.connections
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await sender.close()
            await receiver.close()

    got, own, connections = asyncio.run(scenario())
    assert got == [WorkAvailable("kept")]
    assert own == []  # a node does not hear itself: it published its events already
    assert connections == 1


@pytest.mark.postgres
def test_the_listener_reconnects_after_its_backend_is_terminated(pg_schema: str) -> None:
    async def scenario() -> list[DomainEvent]:
        sender, receiver = Database(_schema_url(pg_schema)), Database(_schema_url(pg_schema))
        await asyncio.to_thread(sender.migrate)
        got: list[DomainEvent] = []
        arrived = asyncio.Event()
        resyncs: list[int] = []
        resynced = asyncio.Event()

        def deliver(events: list[DomainEvent]) -> None:
            got.extend(events)
            arrived.set()

        def on_connect() -> None:
            resyncs.append(1)
            resynced.set()

        for db in (sender, receiver):
            db.start()
        assert await sender.enable_notify(lambda events: None, lambda: None) is not None
        listener = await receiver.enable_notify(deliver, on_connect)
        assert listener is not None
        task = asyncio.create_task(listener.run())
        try:
            await asyncio.wait_for(resynced.wait(), 10)
            resynced.clear()
            app = f"{notify.LISTENER_APPLICATION_NAME} {listener.channel}"
            async with await psycopg.AsyncConnection.connect(
                postgres_url(), autocommit=True
            ) as admin:
                cur = await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s",
                    (app,),
                )
                assert [r[0] for r in await cur.fetchall()] == [True]
            await asyncio.wait_for(resynced.wait(), 10)  # reconnected, and resynced
            assert len(resyncs) == 2
            await sender.write(_insert("after"))
            await asyncio.wait_for(arrived.wait(), 10)
            return got
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await sender.close()
            await receiver.close()

    assert asyncio.run(scenario()) == [WorkAvailable("after")]
