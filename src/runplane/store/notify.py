"""Committed events across replicas: PostgreSQL NOTIFY on commit, LISTEN on every node.

A PostgreSQL write batch that emitted events also runs `pg_notify(channel,
payload)` inside its transaction, so the notification is delivered only if
the batch commits. Every node keeps one `Listener` (its own autocommit
connection, `LISTEN channel`) that decodes payloads back into the same
`DomainEvent`s and hands them to the node, which drops its caches and wakes its
waiters exactly as for its own commits. Events a node sent itself are skipped
(it published them already).

Notifications are a hint, never the record: one lost while a listener
reconnects only delays a waiter until its polling fallback re-reads the
database, and on every (re)connect the node wakes everyone and drops its
caches, since it may have missed something.

Channels are per database, so the channel is named after the schema: nodes of
one installation share it, installations in other schemas never hear it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import psycopg
from psycopg import sql
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import URL

from runplane.domain.events import (
    CatalogChanged,
    CredentialsChanged,
    DomainEvent,
    ExecutionChanged,
    LogAppended,
    WorkAvailable,
)

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 7_900  # PostgreSQL's limit is 8000 bytes per notification
LISTENER_APPLICATION_NAME = "runplane-listener"
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0
LIVENESS_CHECK_SECONDS = 30.0  # an idle listener asks its server whether it is still there
# TCP keepalives notice a silently dead connection (a network partition) in ~25 s
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
_PLAIN_SCHEMA = re.compile(r"^[a-z0-9_]{1,40}$")


def channel_name(conn: Connection) -> str:
    """The channel of the installation whose tables `conn` sees: `runplane_<schema>`."""
    schema = str(conn.scalar(select(func.current_schema())) or "public")
    if not _PLAIN_SCHEMA.match(schema):  # channel names are identifiers of ≤ 63 bytes
        schema = hashlib.sha256(schema.encode()).hexdigest()[:16]
    return f"runplane_{schema}"


def _wire(ev: DomainEvent) -> list[str]:
    match ev:
        case ExecutionChanged(execution_id, status):
            return ["x", execution_id, status]
        case WorkAvailable(environment_id):
            return ["w", environment_id]
        case LogAppended(execution_id):
            return ["l", execution_id]
        case CatalogChanged(process_id):
            return ["c", process_id]
        case CredentialsChanged(workspace_id):
            return ["k", workspace_id]


_KINDS: dict[str, Callable[..., DomainEvent]] = {
    "x": ExecutionChanged,
    "w": WorkAvailable,
    "l": LogAppended,
    "c": CatalogChanged,
    "k": CredentialsChanged,
}


def encode(node_id: str, events: Iterable[DomainEvent]) -> list[str]:
    """Compact JSON payloads naming the sending node and each distinct event, in order,
    as many as it takes to keep each under MAX_PAYLOAD_BYTES."""
    head = orjson.dumps(node_id)
    payloads: list[str] = []
    parts: list[bytes] = []
    size = len(head) + 16
    for ev in dict.fromkeys(events):  # a batch of triggers wakes each environment once
        part = orjson.dumps(_wire(ev))
        if parts and size + len(part) + 1 > MAX_PAYLOAD_BYTES:
            payloads.append(_payload(head, parts))
            parts, size = [], len(head) + 16
        parts.append(part)
        size += len(part) + 1
    if parts:
        payloads.append(_payload(head, parts))
    return payloads


def _payload(head: bytes, parts: list[bytes]) -> str:
    return (b'{"n":' + head + b',"e":[' + b",".join(parts) + b"]}").decode()


def decode(payload: str) -> tuple[str, list[DomainEvent]]:
    """(sending node, events) of a payload; kinds this version does not know are skipped
    (a newer replica during a rolling upgrade), so is anything malformed."""
    try:
        doc = orjson.loads(payload)
        node_id = str(doc["n"])
        items = list(doc["e"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "", []
    events: list[DomainEvent] = []
    for item in items:
        if not isinstance(item, list) or not item or item[0] not in _KINDS:
            continue
        if not all(isinstance(arg, str) for arg in item[1:]):
            continue
        try:
            events.append(_KINDS[item[0]](*item[1:]))
        except TypeError:
            continue
    return node_id, events


def send(conn: Connection, channel: str, node_id: str, events: list[DomainEvent]) -> None:
    """Queue the notifications of `events` in the open transaction (sent on commit)."""
    for payload in encode(node_id, events):
        conn.execute(select(func.pg_notify(channel, payload)))


def conninfo(url: URL) -> str:
    """A libpq URL for psycopg from the SQLAlchemy one (query options such as
    `options=-csearch_path=…` kept)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """LISTENs on the channel for the node's lifetime, reconnecting with backoff."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        node_id: str,
        deliver: Callable[[list[DomainEvent]], None],
        on_connect: Callable[[], None],
    ) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.node_id = node_id
        self.deliver = deliver
        self.on_connect = on_connect
        self.connections = 0  # how often it (re)connected

    async def run(self) -> None:
        """Listen until cancelled; a dropped connection is re-established."""
        delay = RECONNECT_MIN_SECONDS
        while True:
            connections = self.connections
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notification listener lost its connection (%s); retrying", exc)
            if self.connections > connections:
                delay = RECONNECT_MIN_SECONDS  # it was connected: retry soon
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _listen_once(self) -> None:
        kwargs: dict[str, Any] = {"autocommit": True, **KEEPALIVES}
        # named so operators (and tests) can find it in pg_stat_activity
        kwargs["application_name"] = f"{LISTENER_APPLICATION_NAME} {self.channel}"
        async with await psycopg.AsyncConnection.connect(self.conninfo, **kwargs) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self.connections += 1
            if self.connections > 1:
                log.info("notification listener reconnected")
            self.on_connect()  # whatever was sent while away is lost: resync
            while True:
                async for note in conn.notifies(timeout=LIVENESS_CHECK_SECONDS):
                    self._receive(note.payload)
                await conn.execute("SELECT 1")

    def _receive(self, payload: str) -> None:
        node_id, events = decode(payload)
        if node_id == self.node_id or not events:
            return
        try:
            self.deliver(events)
        except Exception:
            log.exception("delivering notified events failed")
