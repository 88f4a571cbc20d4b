"""Use cases for credentials: authenticate a request, bootstrap the admin, manage tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from runplane.auth import secrets as rsecrets
from runplane.domain import errors
from runplane.domain.auth import CredentialKind, Principal, Scope
from runplane.service.context import Context
from runplane.store import catalog as catalog_store
from runplane.store import credentials as store
from runplane.store.database import Tx

BOOTSTRAP_ADMIN = "bootstrap-admin"
MAX_NAME_CHARS = 200


async def authenticate(ctx: Context, secret: str) -> Principal:
    """The principal of a presented secret; InvalidCredentials when it is not live."""
    digest = rsecrets.digest(secret)
    now = ctx.clock()
    cached = ctx.principals.get(digest)
    if cached is not None and not cached.expired(now):
        return cached
    principal = await ctx.db.read(lambda c: store.find_principal(c, digest, now))
    if principal is None:
        raise errors.InvalidCredentials("The credential is unknown, expired or revoked.")
    ctx.principals.put(digest, principal)
    return principal


async def bootstrap_admin(ctx: Context, configured: str | None) -> str | None:
    """Make sure workspace `default` has its admin token.

    With `configured` (RUNPLANE_ADMIN_TOKEN) that value is the admin token.
    Otherwise one is created on first start and returned, to be shown once;
    later starts return None.
    """
    if configured is not None and len(configured) < rsecrets.MIN_ADMIN_TOKEN_CHARS:
        raise errors.InvalidRequest(
            f"RUNPLANE_ADMIN_TOKEN must be at least {rsecrets.MIN_ADMIN_TOKEN_CHARS} characters."
        )
    fresh = None if configured is not None else rsecrets.new_secret(CredentialKind.API_TOKEN)
    now = ctx.clock()

    def op(tx: Tx) -> str | None:
        try:
            row = store.get_credential(
                tx.conn, ctx.workspace_id, CredentialKind.API_TOKEN, BOOTSTRAP_ADMIN
            )
        except errors.CredentialNotFound:
            row = None
        if configured is not None:
            digest = rsecrets.digest(configured)
            if row is None:
                _create(tx, BOOTSTRAP_ADMIN, digest, [Scope.ADMIN.value], None, None)
            elif not rsecrets.same_digest(row.token_hash, digest):
                store.set_secret(tx, ctx.workspace_id, row.id, digest)
            return None
        if row is not None:
            return None
        assert fresh is not None
        _create(tx, BOOTSTRAP_ADMIN, rsecrets.digest(fresh), [Scope.ADMIN.value], None, None)
        return fresh

    def _create(
        tx: Tx,
        name: str,
        digest: str,
        scopes: list[str],
        env_ids: list[str] | None,
        expires: Any,
    ) -> None:
        store.create_credential(
            tx,
            ws_id=ctx.workspace_id,
            kind=CredentialKind.API_TOKEN,
            name=name,
            token_hash=digest,
            scopes=scopes,
            environment_ids=env_ids,
            process_id=None,
            expires_at=expires,
            now=now,
        )

    return await ctx.db.write(op)


def check_rights(
    scopes: list[str], environments: list[str], holder: str
) -> tuple[list[Scope], list[dict[str, Any]]]:
    """Parse requested scopes; (scopes, problems) for a credential's rights, where
    `holder` names the credential kind in messages ("token", "app")."""
    problems: list[dict[str, Any]] = []
    parsed: list[Scope] = []
    for raw in scopes:
        try:
            parsed.append(Scope(raw))
        except ValueError:
            allowed = ", ".join(s.value for s in Scope)
            problems.append(
                {"name": "scopes", "code": "invalid_scope", "detail": f"{raw!r}: one of {allowed}."}
            )
    if not scopes:
        problems.append({"name": "scopes", "code": "missing_scope", "detail": "Name one scope."})
    if Scope.RUNTIME in parsed and len(set(environments)) != 1:
        problems.append(
            {
                "name": "environments",
                "code": "runtime_needs_one_environment",
                "detail": f"A runtime {holder} serves exactly one environment.",
            }
        )
    return parsed, problems


def _check_token_request(
    name: str, scopes: list[str], environments: list[str], expires_in_seconds: int | None
) -> list[Scope]:
    problems: list[dict[str, Any]] = []
    if not 0 < len(name) <= MAX_NAME_CHARS or any(c in name for c in "\x00:/"):
        problems.append(
            {
                "name": "name",
                "code": "invalid_name",
                "detail": "1 to 200 characters, no ':' (it is the Basic auth username) "
                "and no '/' (it is part of the token's URL).",
            }
        )
    parsed, rights = check_rights(scopes, environments, "token")
    problems += rights
    if expires_in_seconds is not None and expires_in_seconds <= 0:
        problems.append(
            {"name": "expiresIn", "code": "invalid_expiry", "detail": "Positive seconds."}
        )
    if problems:
        raise errors.InvalidRequest(
            "The token request is not valid: " + ", ".join(p["name"] for p in problems) + ".",
            problems=problems,
        )
    return parsed


async def create_token(
    ctx: Context,
    who: Principal,
    name: str,
    scopes: list[str],
    environments: list[str],
    expires_in_seconds: int | None,
) -> tuple[str, dict[str, Any]]:
    """Create an API token; returns (the secret, shown once; its description)."""
    who.require_full_admin()
    parsed = _check_token_request(name, scopes, environments, expires_in_seconds)
    secret = rsecrets.new_secret(CredentialKind.API_TOKEN)
    now = ctx.clock()

    def op(tx: Tx) -> dict[str, Any]:
        env_ids = [
            catalog_store.get_environment(tx.conn, who.workspace_id, e).id for e in environments
        ]
        try:
            store.get_credential(tx.conn, who.workspace_id, CredentialKind.API_TOKEN, name)
        except errors.CredentialNotFound:
            pass
        else:
            raise errors.Conflict(f"A token named {name!r} exists: rotate or delete it.")
        return store.create_credential(
            tx,
            ws_id=who.workspace_id,
            kind=CredentialKind.API_TOKEN,
            name=name,
            token_hash=rsecrets.digest(secret),
            scopes=sorted({s.value for s in parsed}),
            environment_ids=env_ids or None,
            process_id=None,
            expires_at=(
                now + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None
            ),
            now=now,
        )

    return secret, await ctx.db.write(op)


async def list_tokens(ctx: Context, who: Principal) -> list[dict[str, Any]]:
    """Live API tokens of the caller's workspace (never their secrets)."""
    who.require_full_admin()
    return await ctx.db.read(
        lambda c: store.list_credentials(c, who.workspace_id, CredentialKind.API_TOKEN)
    )


async def rotate_token(ctx: Context, who: Principal, name: str) -> tuple[str, dict[str, Any]]:
    """Give a token a new secret; the old one stops working at once."""
    who.require_full_admin()
    secret = rsecrets.new_secret(CredentialKind.API_TOKEN)

    def op(tx: Tx) -> dict[str, Any]:
        row = store.get_credential(tx.conn, who.workspace_id, CredentialKind.API_TOKEN, name)
        store.set_secret(tx, who.workspace_id, row.id, rsecrets.digest(secret))
        return store.describe(row)

    return secret, await ctx.db.write(op)


async def delete_token(ctx: Context, who: Principal, name: str) -> None:
    """Revoke a token."""
    who.require_full_admin()
    now = ctx.clock()

    def op(tx: Tx) -> None:
        row = store.get_credential(tx.conn, who.workspace_id, CredentialKind.API_TOKEN, name)
        store.revoke(tx, who.workspace_id, [row.id], now)

    await ctx.db.write(op)


PROCESS_SECRET_SCOPES = [Scope.EXECUTIONS_START.value, Scope.EXECUTIONS_READ.value]


async def generate_process_secret(
    ctx: Context, who: Principal, process_name: str
) -> tuple[str, dict[str, Any]]:
    """Create the secret of a process (one per process); shown once."""
    who.require_full_admin()
    secret = rsecrets.new_secret(CredentialKind.PROCESS_SECRET)
    now = ctx.clock()

    def op(tx: Tx) -> dict[str, Any]:
        process = catalog_store.get_process(tx.conn, who.workspace_id, process_name)
        if store.list_credentials(
            tx.conn, who.workspace_id, CredentialKind.PROCESS_SECRET, process.id
        ):
            raise errors.Conflict(
                f"Process {process_name!r} has a secret: rotate or delete it.",
                process=process_name,
            )
        return store.create_credential(
            tx,
            ws_id=who.workspace_id,
            kind=CredentialKind.PROCESS_SECRET,
            name=process.name,
            token_hash=rsecrets.digest(secret),
            scopes=PROCESS_SECRET_SCOPES,
            environment_ids=None,
            process_id=process.id,
            expires_at=None,
            now=now,
        )

    return secret, await ctx.db.write(op)


def _process_secret(tx: Tx, who: Principal, process_name: str) -> dict[str, Any]:
    process = catalog_store.get_process(tx.conn, who.workspace_id, process_name)
    live = store.list_credentials(
        tx.conn, who.workspace_id, CredentialKind.PROCESS_SECRET, process.id
    )
    if not live:
        raise errors.CredentialNotFound(f"Process {process_name!r} has no secret.")
    first: dict[str, Any] = live[0]
    return first


async def rotate_process_secret(
    ctx: Context, who: Principal, process_name: str
) -> tuple[str, dict[str, Any]]:
    """Give a process a new secret; the old one stops working at once."""
    who.require_full_admin()
    secret = rsecrets.new_secret(CredentialKind.PROCESS_SECRET)

    def op(tx: Tx) -> dict[str, Any]:
        cred = _process_secret(tx, who, process_name)
        store.set_secret(tx, who.workspace_id, cred["id"], rsecrets.digest(secret))
        return cred

    return secret, await ctx.db.write(op)


async def delete_process_secret(ctx: Context, who: Principal, process_name: str) -> None:
    """Revoke a process's secret."""
    who.require_full_admin()
    now = ctx.clock()

    def op(tx: Tx) -> None:
        cred = _process_secret(tx, who, process_name)
        store.revoke(tx, who.workspace_id, [cred["id"]], now)

    await ctx.db.write(op)


async def list_process_secrets(ctx: Context, who: Principal) -> list[dict[str, Any]]:
    """Which processes have a secret (never the secrets)."""
    who.require_full_admin()
    return await ctx.db.read(
        lambda c: store.list_credentials(c, who.workspace_id, CredentialKind.PROCESS_SECRET)
    )
