"""Named store operations for OAuth2 client-credentials apps and their access tokens.

An app keeps only the digest of its client secret. Its access tokens are rows of
`credentials` (kind `access_token`) pointing back at it by `app_id`; revoking
them goes through `store.credentials.revoke`, which tells the principal caches.
A deleted app keeps its row (`deleted_at`), so its tokens' rows stay valid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update
from sqlalchemy import exc as sa_exc

from runplane.domain import errors
from runplane.domain.auth import OAuthApp, Scope
from runplane.domain.ids import new_id
from runplane.store import credentials as credentials_store
from runplane.store.database import Tx
from runplane.store.schema import credentials, oauth_apps

REVOKE_CHUNK = 500  # ids per UPDATE … IN (…): far below every backend's bound-parameter limit


def _app(row: Row[Any]) -> OAuthApp:
    envs = row.environment_ids
    return OAuthApp(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        client_id=row.client_id,
        scopes=frozenset(Scope(s) for s in row.scopes),
        environment_ids=None if envs is None else frozenset(envs),
        created_at=row.created_at,
    )


def create_app(
    tx: Tx,
    *,
    ws_id: str,
    name: str,
    client_id: str,
    secret_hash: str,
    scopes: list[str],
    environment_ids: list[str] | None,
    now: datetime,
) -> OAuthApp:
    """Store a new app; Conflict when a live app of the workspace has this name."""
    values = {
        "id": new_id(),
        "workspace_id": ws_id,
        "name": name,
        "client_id": client_id,
        "secret_hash": secret_hash,
        "scopes": scopes,
        "environment_ids": environment_ids,
        "created_at": now,
    }
    try:
        tx.conn.execute(oauth_apps.insert().values(**values))
    except sa_exc.IntegrityError as exc:  # another replica created the name first
        raise errors.Conflict(f"An app named {name!r} exists: rotate or delete it.") from exc
    return _app(tx.conn.execute(select(oauth_apps).where(oauth_apps.c.id == values["id"])).one())


def find_app(conn: Connection, ws_id: str, name: str) -> OAuthApp | None:
    """The live app of this name in the workspace, or None."""
    row = conn.execute(
        select(oauth_apps).where(
            oauth_apps.c.workspace_id == ws_id,
            oauth_apps.c.name == name,
            oauth_apps.c.deleted_at.is_(None),
        )
    ).first()
    return None if row is None else _app(row)


def get_app(conn: Connection, ws_id: str, name: str) -> OAuthApp:
    """The live app of this name in the workspace; AppNotFound otherwise."""
    app = find_app(conn, ws_id, name)
    if app is None:
        raise errors.AppNotFound(f"No app named {name!r}.")
    return app


def get_app_by_client_id(conn: Connection, client_id: str) -> tuple[OAuthApp, str] | None:
    """The live app with this client id and its secret's digest, or None."""
    row = conn.execute(
        select(oauth_apps).where(
            oauth_apps.c.client_id == client_id, oauth_apps.c.deleted_at.is_(None)
        )
    ).first()
    return None if row is None else (_app(row), str(row.secret_hash))


def list_apps(conn: Connection, ws_id: str) -> list[OAuthApp]:
    """Live apps of the workspace, oldest first."""
    rows = conn.execute(
        select(oauth_apps)
        .where(oauth_apps.c.workspace_id == ws_id, oauth_apps.c.deleted_at.is_(None))
        .order_by(oauth_apps.c.id)
    )
    return [_app(r) for r in rows]


def set_app_secret(tx: Tx, app_id: str, secret_hash: str) -> None:
    """Give an app a new client secret: the old one stops working at once."""
    tx.conn.execute(
        update(oauth_apps).where(oauth_apps.c.id == app_id).values(secret_hash=secret_hash)
    )


def delete_app(tx: Tx, app_id: str, now: datetime) -> None:
    """Delete an app (soft: its row stays, its name may be reused)."""
    tx.conn.execute(
        update(oauth_apps)
        .where(oauth_apps.c.id == app_id, oauth_apps.c.deleted_at.is_(None))
        .values(deleted_at=now)
    )


def live_access_token_ids(conn: Connection, app_id: str, now: datetime) -> list[str]:
    """Ids of the app's access tokens that still work (not revoked, not expired)."""
    return list(
        conn.scalars(
            select(credentials.c.id).where(
                credentials.c.app_id == app_id,
                credentials.c.expires_at > now,
                credentials.c.revoked_at.is_(None),
            )
        )
    )


def revoke_access_tokens(tx: Tx, app: OAuthApp, now: datetime) -> int:
    """Revoke every live access token of the app; returns how many."""
    ids = live_access_token_ids(tx.conn, app.id, now)
    return sum(
        credentials_store.revoke(tx, app.workspace_id, ids[i : i + REVOKE_CHUNK], now)
        for i in range(0, len(ids), REVOKE_CHUNK)
    )


def revoke_access_token(tx: Tx, app: OAuthApp, token_hash: str, now: datetime) -> bool:
    """Revoke one access token if the app issued it; False for any other secret."""
    cred_id = tx.conn.scalar(
        select(credentials.c.id).where(
            credentials.c.token_hash == token_hash, credentials.c.app_id == app.id
        )
    )
    if cred_id is None:
        return False
    return credentials_store.revoke(tx, app.workspace_id, [cred_id], now) > 0


def purge_expired_access_tokens(tx: Tx, app_id: str, now: datetime) -> int:
    """Delete the app's expired access tokens (their rows serve nobody); returns how many.

    Run on every issue, so a client that fetches a token per call keeps at most
    an hour of rows; the (app_id, expires_at) index makes it a short range scan.
    """
    return int(
        tx.conn.execute(
            delete(credentials).where(
                credentials.c.app_id == app_id, credentials.c.expires_at <= now
            )
        ).rowcount
    )
