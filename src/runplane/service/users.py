"""Use cases for users of the web console: manage users and their roles, sign in and
out, the principal of a session, the bootstrap user `admin`.

Rules:
- Managing users needs a full admin (`require_full_admin`) of the workspace;
  users without a role in the caller's workspace do not exist for it (404).
- Creating a user whose name exists (names are unique in the installation)
  gives that user the role in the workspace instead: allowed when the user
  already holds a role there, or for an admin of workspace `default` (the
  installation's admin); otherwise, and whenever a password comes with it,
  409 `user_exists`. Passwords change through `set_password` only.
- A user holding roles in several workspaces is disabled or given a new
  password by the installation's admin only: a workspace's admin cannot take
  over an account another workspace relies on.
- A session token (`rpw_…`, 256 random bits) is stored as its SHA-256 digest;
  it acts in one workspace with the scopes of the user's role there, and ends
  on sign-out, when its user is disabled or gets a new password, or after
  RUNPLANE_SESSION_IDLE_TIMEOUT_SECONDS without use.
- Argon2 work runs in a thread: it must not stall the event loop (SQLite's
  writes run on it).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Any

from runplane.auth import passwords
from runplane.auth import secrets as rsecrets
from runplane.domain import errors
from runplane.domain.auth import CredentialKind, Principal
from runplane.domain.users import (
    Role,
    SignedIn,
    User,
    password_problems,
    role_problem,
    session_id_prefix,
)
from runplane.service.context import Context
from runplane.service.workspaces import NAME_RE
from runplane.store import catalog as catalog_store
from runplane.store import users as store
from runplane.store.database import Tx

BOOTSTRAP_USER = "admin"
SIGN_IN_FAILED = "Wrong user name or password."
TOUCH_INTERVAL_SECONDS = 60.0  # at most one last_seen_at write per session per interval
PURGE_BATCH = 500  # idle sessions deleted per transaction
SESSION_CACHE_PREFIX = "session:"  # principal cache keys: a session token is no bearer token
CSRF_LABEL = b"runplane console csrf v1"


# -- managing users (full admins) ---------------------------------------------------


async def create_user(
    ctx: Context,
    who: Principal,
    name: str,
    role: str,
    workspace: str | None = None,
    password: str | None = None,
) -> tuple[User, str | None]:
    """Create a user with a role in a workspace (default: the caller's); returns the user
    and its generated password (shown once) when none was given.

    An existing user gets the role in the workspace instead (see the module's rules).
    """
    who.require_full_admin()
    problems = []
    if not NAME_RE.match(name):
        problems.append(
            {
                "name": "name",
                "code": "invalid_name",
                "detail": "1-100 lower-case letters, digits, '.', '_' or '-'.",
            }
        )
    if (bad_role := role_problem(role)) is not None:
        problems.append(bad_role)
    if password is not None:
        problems += password_problems(password, name)
    if problems:
        names = ", ".join(dict.fromkeys(p["name"] for p in problems))
        raise errors.InvalidRequest(f"The user request is not valid: {names}.", problems=problems)
    generated = passwords.generate_password() if password is None else None
    password_hash = await asyncio.to_thread(passwords.hash_password, password or generated or "")
    now = ctx.clock()

    def op(tx: Tx) -> tuple[User, str | None]:
        ws_id = _workspace_for(ctx, who, tx, workspace)
        account = store.find_user_by_name(tx.conn, name)
        if account is None:
            user_id = store.create_user(tx, name, password_hash, now)
            store.set_role(tx, user_id, ws_id, Role(role))
            return store.user_in_workspace(tx.conn, ws_id, user_id), generated
        if password is not None:
            raise errors.UserExists(
                f"A user named {name!r} exists: a password is set with its own request."
            )
        if ws_id not in account.roles and not _installation_admin(ctx, who):
            raise errors.UserExists(f"A user named {name!r} exists.")
        store.set_role(tx, account.id, ws_id, Role(role))
        return store.user_in_workspace(tx.conn, ws_id, account.id), None

    return await ctx.db.write(op)


async def list_users(ctx: Context, who: Principal) -> list[User]:
    """Users holding a role in the caller's workspace, by name."""
    who.require_full_admin()
    return await ctx.db.read(lambda c: store.list_users(c, who.workspace_id))


async def disable_user(ctx: Context, who: Principal, name: str) -> User:
    """Disable a user: it cannot sign in, and all its sessions end at once."""
    who.require_full_admin()
    now = ctx.clock()

    def op(tx: Tx) -> User:
        account = store.get_account(tx.conn, who.workspace_id, name)
        _require_may_manage(ctx, who, account)
        store.disable_user(tx, account, now)
        return store.user_in_workspace(tx.conn, who.workspace_id, account.id)

    return await ctx.db.write(op)


async def set_password(ctx: Context, who: Principal, name: str, password: str) -> None:
    """Give a user a new password; its other sessions (all but the caller's) end."""
    who.require_full_admin()
    problems = password_problems(password, name)
    if problems:
        raise errors.InvalidRequest("The password is not acceptable.", problems=problems)
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    now = ctx.clock()
    own = who.kind == CredentialKind.SESSION and who.name == name
    keep = session_id_prefix(who.credential_id) if own else None

    def op(tx: Tx) -> None:
        account = store.get_account(tx.conn, who.workspace_id, name)
        _require_may_manage(ctx, who, account)
        store.set_password_hash(tx, account.id, password_hash, now)
        store.end_sessions_of_user(tx, account.id, keep=keep)

    await ctx.db.write(op)


def _installation_admin(ctx: Context, who: Principal) -> bool:
    return who.workspace_id == ctx.workspace_id


def _workspace_for(ctx: Context, who: Principal, tx: Tx, workspace: str | None) -> str:
    """The id of the workspace a user request names (default: the caller's). Only the
    installation's admin sees other workspaces; for anyone else they do not exist."""
    if workspace is None:
        return who.workspace_id
    ws_id = catalog_store.workspace_id(tx.conn, workspace)
    if ws_id != who.workspace_id and not _installation_admin(ctx, who):
        raise errors.WorkspaceNotFound(f"No workspace {workspace!r}.")
    return ws_id


def _require_may_manage(ctx: Context, who: Principal, account: store.Account) -> None:
    if set(account.roles) - {who.workspace_id} and not _installation_admin(ctx, who):
        raise errors.Forbidden(
            f"User {account.name!r} also holds a role in another workspace: only an admin "
            "of workspace 'default' may disable it or set its password."
        )


# -- sessions --------------------------------------------------------------------------


async def sign_in(
    ctx: Context,
    name: str,
    password: str,
    client_address: str,
    *,
    workspace: str | None = None,
    user_agent: str | None = None,
) -> SignedIn:
    """Check a user's password and start a session.

    The session acts in `workspace` (by name) when given, else in workspace
    `default` when the user holds a role there, else in the oldest workspace it
    holds one in. A wrong name, a wrong password, a disabled user or a workspace
    without a role for it get the same 401 after the same work; failures count
    against the address and the name (429 once over the limit).
    """
    name = name.strip().lower()
    keys = [f"addr:{client_address}", f"user:{name[:200]}"]
    await ctx.limiter.check(ctx, keys)

    def find(conn: Any) -> tuple[store.Account | None, str | None]:
        account = store.find_user_by_name(conn, name)
        if workspace is None:
            return account, None
        try:
            return account, catalog_store.workspace_id(conn, workspace)
        except errors.WorkspaceNotFound:
            return account, ""  # holds no role: refused like a wrong password

    account, wanted = await ctx.db.read(find)
    stored_hash = account.password_hash if account is not None else None
    matched = await asyncio.to_thread(passwords.verify_password, stored_hash, password)
    ws_id = _session_workspace(ctx, account, wanted)
    if not matched or account is None or account.disabled or ws_id is None:
        await ctx.limiter.fail(ctx, keys)
        raise errors.InvalidCredentials(SIGN_IN_FAILED)
    user_id, old_hash, session_ws = account.id, account.password_hash, ws_id
    rehashed = None
    if passwords.needs_rehash(old_hash):
        rehashed = await asyncio.to_thread(passwords.hash_password, password)
    token = rsecrets.new_secret(CredentialKind.SESSION)
    now = ctx.clock()

    def op(tx: Tx) -> User:
        session_id = rsecrets.digest(token)
        store.create_session(tx, session_id, user_id, session_ws, now, client_address, user_agent)
        store.record_sign_in(tx, user_id, now)
        if rehashed is not None:
            store.rehash_password(tx, user_id, old_hash, rehashed)
        return store.user_in_workspace(tx.conn, session_ws, user_id)

    user = await ctx.db.write(op)
    return SignedIn(token=token, user=user, workspace_id=session_ws, csrf_token=csrf_token(token))


def _session_workspace(
    ctx: Context, account: store.Account | None, wanted: str | None
) -> str | None:
    if account is None or not account.roles:
        return None
    if wanted is not None:
        return wanted if wanted in account.roles else None
    if ctx.workspace_id in account.roles:
        return ctx.workspace_id
    return min(account.roles)  # ids are time-ordered: the oldest workspace


async def session_principal(ctx: Context, token: str) -> Principal:
    """The principal of a live session; SessionExpired (401) when the session is unknown,
    ended, idle too long, or its user is disabled or lost its role."""
    session_id = rsecrets.digest(token)
    key = SESSION_CACHE_PREFIX + session_id
    now = ctx.clock()
    cached = ctx.principals.get(key)
    if cached is not None and not cached.expired(now):
        return cached
    found = await ctx.db.read(lambda c: store.find_session(c, session_id))
    idle_seconds = ctx.settings.session_idle_timeout_seconds
    idle = timedelta(seconds=idle_seconds)
    if (
        found is None
        or found.user_disabled
        or found.role is None
        or found.last_seen_at + idle <= now
    ):
        raise errors.SessionExpired("The session is over: sign in again.")
    last_seen = found.last_seen_at
    # A quarter of a short idle timeout, so a session in use never lapses between writes.
    touch = timedelta(seconds=min(TOUCH_INTERVAL_SECONDS, idle_seconds / 4))
    if now - last_seen >= touch:
        await ctx.db.write(lambda tx: store.touch_session(tx, session_id, now, now - touch))
        last_seen = now
    # Cached (briefly) no longer than until the next write is due: a cached use counts
    # as use too, and a later look renews the session in the database.
    principal = found.principal(expires_at=last_seen + touch)
    ctx.principals.put(key, principal)
    return principal


async def sign_out(ctx: Context, token: str) -> None:
    """End a session (nothing happens for one that is over already)."""
    session_id = rsecrets.digest(token)
    await ctx.db.write(lambda tx: store.end_session(tx, session_id))


async def purge_idle_sessions(ctx: Context) -> int:
    """Delete sessions idle past the timeout, a bounded batch per transaction (the
    sweeper's chore); returns how many went."""
    idle_since = ctx.clock() - timedelta(seconds=ctx.settings.session_idle_timeout_seconds)
    total = 0
    while True:
        purged = await ctx.db.write(lambda tx: store.purge_sessions(tx, idle_since, PURGE_BATCH))
        total += purged
        if purged < PURGE_BATCH:
            return total


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: HMAC-SHA256 of a fixed label keyed by the session
    token (URL-safe base64), so it needs no storage and dies with the session."""
    mac = hmac.new(session_token.encode("utf-8", "surrogatepass"), CSRF_LABEL, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def csrf_valid(session_token: str, presented: str) -> bool:
    """True when `presented` is the session's CSRF token (constant-time comparison)."""
    return hmac.compare_digest(
        csrf_token(session_token).encode(), presented.encode("utf-8", "surrogatepass")
    )


# -- the first user ----------------------------------------------------------------------


async def bootstrap_admin_user(ctx: Context, configured_password: str | None) -> str | None:
    """Make sure user `admin` exists with role admin in workspace `default`.

    With `configured_password` (RUNPLANE_ADMIN_PASSWORD) that is its password,
    applied again whenever it changed (which ends the user's sessions). Otherwise
    a password is generated on first start and returned, to be shown once;
    later starts return None.
    """
    if configured_password is not None and password_problems(configured_password, BOOTSTRAP_USER):
        raise errors.InvalidRequest(
            "RUNPLANE_ADMIN_PASSWORD must have 12 to 1000 characters and not be the user name."
        )
    account = await ctx.db.read(lambda c: store.find_user_by_name(c, BOOTSTRAP_USER))
    now = ctx.clock()
    if account is not None:
        if configured_password is None or await asyncio.to_thread(
            passwords.verify_password, account.password_hash, configured_password
        ):
            return None
        new_hash = await asyncio.to_thread(passwords.hash_password, configured_password)
        user_id = account.id

        def reapply(tx: Tx) -> None:
            store.set_password_hash(tx, user_id, new_hash, now)
            store.end_sessions_of_user(tx, user_id)

        await ctx.db.write(reapply)
        return None
    fresh = passwords.generate_password() if configured_password is None else None
    password_hash = await asyncio.to_thread(
        passwords.hash_password, configured_password or fresh or ""
    )

    def create(tx: Tx) -> str | None:
        user_id = store.create_user(tx, BOOTSTRAP_USER, password_hash, now)
        store.set_role(tx, user_id, ctx.workspace_id, Role.ADMIN)
        return fresh

    return await ctx.db.write(create)
