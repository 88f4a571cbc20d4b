"""Named store operations for credentials (stored as digests, never as secrets)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from runplane.domain import errors
from runplane.domain.auth import CredentialKind, Principal, Scope
from runplane.domain.events import CredentialsChanged
from runplane.domain.ids import new_id
from runplane.store.database import Tx
from runplane.store.schema import credentials


def _principal(row: Row[Any]) -> Principal:
    envs = row.environment_ids
    return Principal(
        workspace_id=row.workspace_id,
        credential_id=row.id,
        kind=CredentialKind(row.kind),
        name=row.name,
        scopes=frozenset(Scope(s) for s in row.scopes),
        environment_ids=None if envs is None else frozenset(envs),
        process_id=row.process_id,
        expires_at=row.expires_at,
    )


def describe(row: Any) -> dict[str, Any]:
    """A credential as listed: everything but its digest."""
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "scopes": list(row.scopes),
        "environment_ids": row.environment_ids,
        "process_id": row.process_id,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "created_at": row.created_at,
    }


def create_credential(
    tx: Tx,
    *,
    ws_id: str,
    kind: CredentialKind,
    name: str,
    token_hash: str,
    scopes: list[str],
    environment_ids: list[str] | None,
    process_id: str | None,
    expires_at: datetime | None,
    now: datetime,
    app_id: str | None = None,
) -> dict[str, Any]:
    """Store a credential's digest and its rights (`app_id`: an access token's OAuth2 app)."""
    cred_id = new_id()
    tx.conn.execute(
        credentials.insert().values(
            id=cred_id,
            workspace_id=ws_id,
            kind=kind.value,
            name=name,
            token_hash=token_hash,
            scopes=scopes,
            environment_ids=environment_ids,
            process_id=process_id,
            expires_at=expires_at,
            created_at=now,
            app_id=app_id,
        )
    )
    row = tx.conn.execute(select(credentials).where(credentials.c.id == cred_id)).one()
    return describe(row)


def find_principal(conn: Connection, token_hash: str, now: datetime) -> Principal | None:
    """The principal of a live (not revoked, not expired) credential with this digest."""
    row = conn.execute(select(credentials).where(credentials.c.token_hash == token_hash)).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    return _principal(row)


def list_credentials(
    conn: Connection, ws_id: str, kind: CredentialKind, process_id: str | None = None
) -> list[dict[str, Any]]:
    """Live credentials of a kind in the workspace, oldest first."""
    q = select(credentials).where(
        credentials.c.workspace_id == ws_id,
        credentials.c.kind == kind.value,
        credentials.c.revoked_at.is_(None),
    )
    if process_id is not None:
        q = q.where(credentials.c.process_id == process_id)
    return [describe(r) for r in conn.execute(q.order_by(credentials.c.id))]


def get_credential(conn: Connection, ws_id: str, kind: CredentialKind, name: str) -> Any:
    """The live credential of this kind and name in the workspace."""
    row = conn.execute(
        select(credentials).where(
            credentials.c.workspace_id == ws_id,
            credentials.c.kind == kind.value,
            credentials.c.name == name,
            credentials.c.revoked_at.is_(None),
        )
    ).first()
    if row is None:
        raise errors.CredentialNotFound(f"No {kind.value.replace('_', ' ')} named {name!r}.")
    return row


def revoke(tx: Tx, ws_id: str, credential_ids: list[str], now: datetime) -> int:
    """Revoke credentials; returns how many were live."""
    if not credential_ids:
        return 0
    tx.emit(CredentialsChanged(ws_id))
    return int(
        tx.conn.execute(
            update(credentials)
            .where(
                credentials.c.workspace_id == ws_id,
                credentials.c.id.in_(credential_ids),
                credentials.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        ).rowcount
    )


def set_secret(tx: Tx, ws_id: str, credential_id: str, token_hash: str) -> None:
    """Give a credential a new secret (rotation): the old one stops working at once."""
    tx.emit(CredentialsChanged(ws_id))
    tx.conn.execute(
        update(credentials).where(credentials.c.id == credential_id).values(token_hash=token_hash)
    )


def revoke_run_tokens(tx: Tx, execution_id: str, now: datetime) -> None:
    """A run's tokens stop working when its execution reports its end. (Caches may
    still hold their principal a few seconds: every use checks that the run runs.)"""
    tx.conn.execute(
        update(credentials)
        .where(
            credentials.c.kind == CredentialKind.RUN_TOKEN.value,
            credentials.c.name.like(f"{execution_id}:%"),
            credentials.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
