"""Named store operations for users, their roles per workspace, and their sessions.

Passwords arrive here hashed and sessions by the digest of their token: the
store never sees a password or a session token. Whatever changes what a
session may do (a sign-out, a disabled user, a new password, a new role) emits
`CredentialsChanged`, so every replica drops its cached principals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from runplane.domain import errors
from runplane.domain.events import CredentialsChanged
from runplane.domain.ids import new_id
from runplane.domain.users import Role, Session, User
from runplane.store.database import Tx
from runplane.store.schema import sessions, user_roles, users, workspaces


@dataclass(frozen=True)
class Account:
    """A user as stored: its password hash and its role in every workspace."""

    id: str
    name: str
    password_hash: str
    disabled: bool
    roles: dict[str, Role]  # workspace id → role


def _insert(conn: Connection) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert


def create_user(tx: Tx, name: str, password_hash: str, now: datetime) -> str:
    """A new user without roles; UserExists when the name is taken."""
    user_id = new_id()
    stmt = (
        _insert(tx.conn)(users)
        .values(
            id=user_id,
            name=name,
            password_hash=password_hash,
            created_at=now,
            password_changed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(users.c.id)
    )
    if tx.conn.execute(stmt).scalar() is None:
        raise errors.UserExists(f"A user named {name!r} exists.", user=name)
    return user_id


def find_user_by_name(conn: Connection, name: str) -> Account | None:
    """The user with this name and its roles, or None."""
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        return None
    roles = conn.execute(
        select(user_roles.c.workspace_id, user_roles.c.role).where(user_roles.c.user_id == row.id)
    )
    return Account(
        id=row.id,
        name=row.name,
        password_hash=row.password_hash,
        disabled=row.disabled_at is not None,
        roles={r.workspace_id: Role(r.role) for r in roles},
    )


def get_account(conn: Connection, ws_id: str, name: str) -> Account:
    """The user `name` holding a role in the workspace; UserNotFound otherwise (a user
    of other workspaces only does not exist for this one)."""
    account = find_user_by_name(conn, name)
    if account is None or ws_id not in account.roles:
        raise errors.UserNotFound(f"No user {name!r} in this workspace.")
    return account


def set_role(tx: Tx, user_id: str, ws_id: str, role: Role) -> None:
    """Give the user this role in the workspace (replacing the one it had there)."""
    stmt = _insert(tx.conn)(user_roles).values(user_id=user_id, workspace_id=ws_id, role=role.value)
    tx.conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "workspace_id"], set_={"role": role.value}
        )
    )
    tx.emit(CredentialsChanged(ws_id))


def _select_users(ws_id: str) -> Any:
    return (
        select(users, user_roles.c.role, workspaces.c.name.label("workspace"))
        .join(user_roles, user_roles.c.user_id == users.c.id)
        .join(workspaces, workspaces.c.id == user_roles.c.workspace_id)
        .where(user_roles.c.workspace_id == ws_id)
    )


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        workspace=row.workspace,
        created_at=row.created_at,
        disabled=row.disabled_at is not None,
        last_sign_in_at=row.last_sign_in_at,
    )


def list_users(conn: Connection, ws_id: str) -> list[User]:
    """Users holding a role in the workspace, by name."""
    return [_user(r) for r in conn.execute(_select_users(ws_id).order_by(users.c.name))]


def user_in_workspace(conn: Connection, ws_id: str, user_id: str) -> User:
    """The user as seen from a workspace it holds a role in."""
    return _user(conn.execute(_select_users(ws_id).where(users.c.id == user_id)).one())


def disable_user(tx: Tx, account: Account, now: datetime) -> None:
    """Disable the user (it can no longer sign in) and end all its sessions."""
    tx.conn.execute(
        update(users)
        .where(users.c.id == account.id, users.c.disabled_at.is_(None))
        .values(disabled_at=now)
    )
    end_sessions_of_user(tx, account.id)
    for ws_id in account.roles:
        tx.emit(CredentialsChanged(ws_id))


def set_password_hash(tx: Tx, user_id: str, password_hash: str, now: datetime) -> None:
    """Store the hash of the user's new password (its sessions are ended apart)."""
    tx.conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, password_changed_at=now)
    )


def rehash_password(tx: Tx, user_id: str, old_hash: str, new_hash: str) -> None:
    """The same password hashed with today's parameters, unless it changed meanwhile."""
    tx.conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.password_hash == old_hash)
        .values(password_hash=new_hash)
    )


def record_sign_in(tx: Tx, user_id: str, now: datetime) -> None:
    """Remember when the user last signed in."""
    tx.conn.execute(update(users).where(users.c.id == user_id).values(last_sign_in_at=now))


def create_session(
    tx: Tx,
    session_id: str,
    user_id: str,
    ws_id: str,
    now: datetime,
    client_address: str | None,
    user_agent: str | None,
) -> None:
    """Store a new session under the digest of its token."""
    tx.conn.execute(
        sessions.insert().values(
            id=session_id,
            user_id=user_id,
            workspace_id=ws_id,
            created_at=now,
            last_seen_at=now,
            client_address=client_address[:100] if client_address else None,
            user_agent=user_agent[:300] if user_agent else None,
        )
    )


def _session(row: Any) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        user_name=row.name,
        workspace_id=row.workspace_id,
        role=None if row.role is None else Role(row.role),
        user_disabled=row.disabled_at is not None,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
    )


def find_session(conn: Connection, session_id: str) -> Session | None:
    """The session with this digest, with its user's state and role, or None."""
    row = conn.execute(
        select(
            sessions.c.id,
            sessions.c.user_id,
            sessions.c.workspace_id,
            sessions.c.created_at,
            sessions.c.last_seen_at,
            users.c.name,
            users.c.disabled_at,
            user_roles.c.role,
        )
        .join(users, users.c.id == sessions.c.user_id)
        .outerjoin(
            user_roles,
            (user_roles.c.user_id == sessions.c.user_id)
            & (user_roles.c.workspace_id == sessions.c.workspace_id),
        )
        .where(sessions.c.id == session_id)
    ).first()
    return None if row is None else _session(row)


def touch_session(tx: Tx, session_id: str, now: datetime, seen_by: datetime) -> None:
    """Mark the session used now, unless it was marked after `seen_by` already (so
    concurrent requests of one session write once)."""
    tx.conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.last_seen_at <= seen_by)
        .values(last_seen_at=now)
    )


def _end(tx: Tx, condition: Any) -> int:
    ended = tx.conn.execute(select(sessions.c.workspace_id).where(condition).distinct()).all()
    if not ended:
        return 0
    for row in ended:
        tx.emit(CredentialsChanged(row.workspace_id))
    return int(tx.conn.execute(delete(sessions).where(condition)).rowcount)


def end_session(tx: Tx, session_id: str) -> bool:
    """End (delete) one session; False when there was none."""
    return _end(tx, sessions.c.id == session_id) > 0


def end_sessions_of_user(tx: Tx, user_id: str, keep: str | None = None) -> int:
    """End every session of the user, but the one whose digest starts with `keep`."""
    condition = sessions.c.user_id == user_id
    if keep:
        condition = condition & ~sessions.c.id.startswith(keep, autoescape=True)
    return _end(tx, condition)


def purge_sessions(tx: Tx, idle_since: datetime, limit: int) -> int:
    """Delete up to `limit` sessions last seen at or before `idle_since` (they are over
    already: nothing is emitted). Returns how many went."""
    batch = (
        select(sessions.c.id)
        .where(sessions.c.last_seen_at <= idle_since)
        .limit(limit)
        .scalar_subquery()
    )
    return int(tx.conn.execute(delete(sessions).where(sessions.c.id.in_(batch))).rowcount)
