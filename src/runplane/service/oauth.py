"""Use cases for OAuth2 client-credentials apps (RFC 6749 §4.4) and their access tokens.

An admin creates an app (name, scopes, environments) and gets its client id and
secret, the secret shown once. The app exchanges them at the token endpoint for
an access token: a credential of kind `access_token` living one hour, with the
app's environments and the requested subset of its scopes, so it authenticates
like any bearer credential. Rotating the app's secret or deleting the app
revokes every access token it holds.

Client secrets are checked by digest in constant time, with the same work for
an unknown client as for a known one, and every failure says the same thing:
the token endpoint tells nobody which client ids exist.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from runplane.auth import secrets as rsecrets
from runplane.domain import errors
from runplane.domain.auth import CredentialKind, OAuthApp, Principal, Scope
from runplane.service.context import Context
from runplane.service.credentials import check_rights
from runplane.store import apps as store
from runplane.store import catalog as catalog_store
from runplane.store import credentials as credentials_store
from runplane.store.database import Tx

ACCESS_TOKEN_TTL_SECONDS = 3600
MAX_NAME_CHARS = 200
MAX_CLIENT_ID_CHARS = 64  # the column's width: a longer id cannot exist
MAX_ECHOED_SCOPE_CHARS = 50
BAD_CLIENT = "The client is unknown, deleted, or its secret is wrong."
# Compared against when no client has the presented id, so an unknown id costs the
# same as a wrong secret; random, so no presented secret ever matches it.
_NO_CLIENT_DIGEST = rsecrets.digest(secrets.token_urlsafe(rsecrets.SECRET_BYTES))


@dataclass(frozen=True)
class AccessToken:
    """An issued access token; `value` is the secret, shown once in the token response."""

    value: str
    scopes: tuple[str, ...]
    expires_in_seconds: int


def _check_app_request(name: str, scopes: list[str], environments: list[str]) -> list[Scope]:
    problems: list[dict[str, Any]] = []
    if not 0 < len(name) <= MAX_NAME_CHARS or "\x00" in name or "/" in name:
        problems.append(
            {
                "name": "name",
                "code": "invalid_name",
                "detail": "1 to 200 characters, no '/' (the name is part of the app's URL).",
            }
        )
    parsed, rights = check_rights(scopes, environments, "app")
    problems += rights
    if problems:
        raise errors.InvalidRequest(
            "The app request is not valid: " + ", ".join(p["name"] for p in problems) + ".",
            problems=problems,
        )
    return parsed


async def create_app(
    ctx: Context, who: Principal, name: str, scopes: list[str], environments: list[str]
) -> tuple[str, OAuthApp]:
    """Create an app; returns (its client secret, shown once; the app with its client id)."""
    who.require_full_admin()
    parsed = _check_app_request(name, scopes, environments)
    secret = rsecrets.new_client_secret()
    now = ctx.clock()

    def op(tx: Tx) -> OAuthApp:
        env_ids = {
            catalog_store.get_environment(tx.conn, who.workspace_id, e).id for e in environments
        }
        if store.find_app(tx.conn, who.workspace_id, name) is not None:
            raise errors.Conflict(f"An app named {name!r} exists: rotate or delete it.")
        return store.create_app(
            tx,
            ws_id=who.workspace_id,
            name=name,
            client_id=rsecrets.new_client_id(),
            secret_hash=rsecrets.digest(secret),
            scopes=sorted({s.value for s in parsed}),
            environment_ids=sorted(env_ids) or None,
            now=now,
        )

    return secret, await ctx.db.write(op)


async def list_apps(ctx: Context, who: Principal) -> list[OAuthApp]:
    """Live apps of the caller's workspace (never their secrets)."""
    who.require_full_admin()
    return await ctx.db.read(lambda c: store.list_apps(c, who.workspace_id))


async def rotate_app_secret(ctx: Context, who: Principal, name: str) -> tuple[str, OAuthApp]:
    """Give an app a new client secret and revoke every access token it holds."""
    who.require_full_admin()
    secret = rsecrets.new_client_secret()
    now = ctx.clock()

    def op(tx: Tx) -> OAuthApp:
        app = store.get_app(tx.conn, who.workspace_id, name)
        store.set_app_secret(tx, app.id, rsecrets.digest(secret))
        store.revoke_access_tokens(tx, app, now)
        return app

    return secret, await ctx.db.write(op)


async def delete_app(ctx: Context, who: Principal, name: str) -> None:
    """Delete an app and revoke every access token it holds."""
    who.require_full_admin()
    now = ctx.clock()

    def op(tx: Tx) -> None:
        app = store.get_app(tx.conn, who.workspace_id, name)
        store.revoke_access_tokens(tx, app, now)
        store.delete_app(tx, app.id, now)

    await ctx.db.write(op)


async def _authenticate_client(
    ctx: Context, client_id: str, client_secret: str
) -> tuple[OAuthApp, str]:
    """The live app these client credentials belong to, and the secret's digest.

    InvalidClient, saying the same thing, for an unknown client, a deleted app
    and a wrong secret.
    """
    presented = rsecrets.digest(client_secret)
    found = None
    if 0 < len(client_id) <= MAX_CLIENT_ID_CHARS and "\x00" not in client_id:
        found = await ctx.db.read(lambda c: store.get_app_by_client_id(c, client_id))
    expected = found[1] if found is not None else _NO_CLIENT_DIGEST
    if not rsecrets.same_digest(expected, presented) or found is None:
        raise errors.InvalidClient(BAD_CLIENT)
    return found[0], presented


def _granted_scopes(app: OAuthApp, requested: str | None) -> list[str]:
    """Scopes of a new access token: the requested ones (all the app's when none asked for).

    RFC 6749 §3.3: a space-delimited, case-sensitive list. A scope the app lacks
    is refused rather than dropped, so a client never gets less than it asked
    for without knowing.
    """
    names = [n for n in (requested or "").split(" ") if n]
    if not names:
        return sorted(s.value for s in app.scopes)
    granted: set[str] = set()
    for raw in names:
        shown = raw[:MAX_ECHOED_SCOPE_CHARS]
        try:
            scope = Scope(raw)
        except ValueError:
            allowed = " ".join(sorted(s.value for s in Scope))
            raise errors.InvalidScope(f"Unknown scope {shown!r}: one of {allowed}.") from None
        if not app.grants(scope):
            raise errors.InvalidScope(f"This client may not request the scope {shown!r}.")
        granted.add(scope.value)
    return sorted(granted)


async def issue_token(
    ctx: Context, client_id: str, client_secret: str, requested_scope: str | None
) -> AccessToken:
    """Exchange client credentials for an access token (the client_credentials grant)."""
    app, presented = await _authenticate_client(ctx, client_id, client_secret)
    scopes = _granted_scopes(app, requested_scope)
    token = rsecrets.new_secret(CredentialKind.ACCESS_TOKEN)
    now = ctx.clock()

    def op(tx: Tx) -> None:
        # Checked again in the write: a rotation or deletion committed since the read
        # must not be outlived by a token issued on the old secret.
        current = store.get_app_by_client_id(tx.conn, client_id)
        if current is None or not rsecrets.same_digest(current[1], presented):
            raise errors.InvalidClient(BAD_CLIENT)
        store.purge_expired_access_tokens(tx, app.id, now)
        credentials_store.create_credential(
            tx,
            ws_id=app.workspace_id,
            kind=CredentialKind.ACCESS_TOKEN,
            name=app.name,
            token_hash=rsecrets.digest(token),
            scopes=scopes,
            environment_ids=None if app.environment_ids is None else sorted(app.environment_ids),
            process_id=None,
            expires_at=now + timedelta(seconds=ACCESS_TOKEN_TTL_SECONDS),
            now=now,
            app_id=app.id,
        )

    await ctx.db.write(op)
    return AccessToken(token, tuple(scopes), ACCESS_TOKEN_TTL_SECONDS)


async def revoke_token(ctx: Context, client_id: str, client_secret: str, token: str) -> None:
    """Revoke an access token the authenticated client holds (RFC 7009).

    Any other value (unknown, expired, another client's, not an access token)
    is left alone and still answered as success, so revocation is no oracle.
    """
    app, _ = await _authenticate_client(ctx, client_id, client_secret)
    token_hash = rsecrets.digest(token)
    now = ctx.clock()
    await ctx.db.write(lambda tx: store.revoke_access_token(tx, app, token_hash, now))
