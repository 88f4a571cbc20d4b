"""OAuth2 app store operations, on real SQLite and real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, func, select

from runplane.auth.secrets import digest
from runplane.domain import errors
from runplane.domain.auth import CredentialKind, OAuthApp, Scope
from runplane.domain.events import CredentialsChanged
from runplane.store import apps, catalog, credentials
from runplane.store.database import Tx
from runplane.store.schema import credentials as credentials_table

T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def write(engine: Engine, fn: Callable[[Tx], T]) -> tuple[T, list[Any]]:
    with engine.begin() as conn:
        tx = Tx(conn)
        return fn(tx), tx.events


def read(engine: Engine, fn: Callable[[Any], T]) -> T:
    with engine.connect() as conn:
        return fn(conn)


def make_app(engine: Engine, ws: str, name: str, client_id: str) -> OAuthApp:
    app, _ = write(
        engine,
        lambda tx: apps.create_app(
            tx,
            ws_id=ws,
            name=name,
            client_id=client_id,
            secret_hash="s" * 64,
            scopes=["executions:read"],
            environment_ids=None,
            now=T0,
        ),
    )
    return app


def make_tokens(engine: Engine, app: OAuthApp, count: int, expires_at: datetime) -> list[str]:
    def op(tx: Tx) -> list[str]:
        return [
            credentials.create_credential(
                tx,
                ws_id=app.workspace_id,
                kind=CredentialKind.ACCESS_TOKEN,
                name=app.name,
                token_hash=digest(f"{app.client_id} {expires_at.isoformat()} {i}"),
                scopes=["executions:read"],
                environment_ids=None,
                process_id=None,
                expires_at=expires_at,
                now=T0,
                app_id=app.id,
            )["id"]
            for i in range(count)
        ]

    return write(engine, op)[0]


@pytest.fixture
def ws(engine: Engine) -> str:
    return write(engine, lambda tx: catalog.bootstrap(tx, T0))[0]


def test_an_app_is_found_by_client_id_and_name_until_deleted(engine: Engine, ws: str) -> None:
    app = make_app(engine, ws, "scheduler", "rpc_one")
    assert app.scopes == frozenset({Scope.EXECUTIONS_READ}) and app.environment_ids is None
    found = read(engine, lambda c: apps.get_app_by_client_id(c, "rpc_one"))
    assert found == (app, "s" * 64)
    assert read(engine, lambda c: apps.get_app(c, ws, "scheduler")) == app
    assert read(engine, lambda c: apps.list_apps(c, ws)) == [app]
    write(engine, lambda tx: apps.set_app_secret(tx, app.id, "t" * 64))
    assert read(engine, lambda c: apps.get_app_by_client_id(c, "rpc_one")) == (app, "t" * 64)
    write(engine, lambda tx: apps.delete_app(tx, app.id, T0))
    assert read(engine, lambda c: apps.get_app_by_client_id(c, "rpc_one")) is None
    assert read(engine, lambda c: apps.list_apps(c, ws)) == []
    with pytest.raises(errors.AppNotFound):
        read(engine, lambda c: apps.get_app(c, ws, "scheduler"))


def test_a_name_is_unique_among_live_apps_only(engine: Engine, ws: str) -> None:
    first = make_app(engine, ws, "dup", "rpc_first")
    with pytest.raises(errors.Conflict):  # the partial unique index, not a prior check
        make_app(engine, ws, "dup", "rpc_second")
    write(engine, lambda tx: apps.delete_app(tx, first.id, T0))
    again = make_app(engine, ws, "dup", "rpc_third")
    assert read(engine, lambda c: apps.list_apps(c, ws)) == [again]


def test_revoking_an_apps_tokens_spares_other_apps_and_spans_chunks(
    engine: Engine, ws: str
) -> None:
    app = make_app(engine, ws, "busy", "rpc_busy")
    other = make_app(engine, ws, "other", "rpc_other")
    live = make_tokens(engine, app, apps.REVOKE_CHUNK + 7, T0 + HOUR)
    make_tokens(engine, app, 3, T0 - HOUR)  # expired: nothing to revoke
    other_live = make_tokens(engine, other, 2, T0 + HOUR)
    ids = read(engine, lambda c: apps.live_access_token_ids(c, app.id, T0))
    assert sorted(ids) == sorted(live)
    revoked, events = write(engine, lambda tx: apps.revoke_access_tokens(tx, app, T0))
    assert revoked == len(live)
    assert events and all(ev == CredentialsChanged(ws) for ev in events)
    assert read(engine, lambda c: apps.live_access_token_ids(c, app.id, T0)) == []
    assert sorted(read(engine, lambda c: apps.live_access_token_ids(c, other.id, T0))) == sorted(
        other_live
    )


def test_one_token_is_revoked_only_by_the_app_that_holds_it(engine: Engine, ws: str) -> None:
    app = make_app(engine, ws, "holder", "rpc_holder")
    other = make_app(engine, ws, "stranger", "rpc_stranger")
    [token_id] = make_tokens(engine, app, 1, T0 + HOUR)
    token_hash = read(
        engine,
        lambda c: c.scalar(
            select(credentials_table.c.token_hash).where(credentials_table.c.id == token_id)
        ),
    )
    assert write(engine, lambda tx: apps.revoke_access_token(tx, other, token_hash, T0))[0] is False
    assert write(engine, lambda tx: apps.revoke_access_token(tx, app, "x" * 64, T0))[0] is False
    assert read(engine, lambda c: credentials.find_principal(c, token_hash, T0)) is not None
    done, events = write(engine, lambda tx: apps.revoke_access_token(tx, app, token_hash, T0))
    assert done is True and events == [CredentialsChanged(ws)]
    assert read(engine, lambda c: credentials.find_principal(c, token_hash, T0)) is None


def test_expired_access_tokens_of_an_app_are_purged(engine: Engine, ws: str) -> None:
    app = make_app(engine, ws, "purged", "rpc_purged")
    other = make_app(engine, ws, "kept", "rpc_kept")
    make_tokens(engine, app, 4, T0 - HOUR)
    live = make_tokens(engine, app, 2, T0 + HOUR)
    make_tokens(engine, other, 3, T0 - HOUR)
    purged, _ = write(engine, lambda tx: apps.purge_expired_access_tokens(tx, app.id, T0))
    assert purged == 4

    def count(app_id: str) -> int:
        return int(
            read(
                engine,
                lambda c: c.scalar(
                    select(func.count()).where(credentials_table.c.app_id == app_id)
                ),
            )
        )

    assert count(app.id) == len(live) and count(other.id) == 3
