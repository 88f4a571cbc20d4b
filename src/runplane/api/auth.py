"""Authentication: every request but the public ones must present a live credential.

Accepted, checked in this order:
- `Authorization: Bearer <secret>`, `Authorization: Basic base64(username:secret)`
  (the username is informational: platforms' clients send their own forms of
  it), `Authorization: RC-WSKEY <secret>` (Robocorp's workspace key);
- `x-apikey: <secret>` (MuleSoft RPA v1 callers);
- the `Runplane-Process-Secret` header and Robocorp's `robocloud-process-secret`
  header (an optional `Bearer ` prefix is stripped);
- the `process-secret` / `robocloud-process-secret` query parameters, for
  clients that cannot set headers.

The principal goes to `scope["state"]["principal"]`; routers and services
decide what it may do.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from runplane.api.compat.robocorp import mapping as robocorp_mapping
from runplane.api.surfaces import error_response
from runplane.domain import errors
from runplane.service import credentials
from runplane.service.context import Context

PUBLIC_PATHS = frozenset(
    {
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/api/v1/docs",
        "/api/v1/docs/oauth2-redirect",
        # OAuth2 token endpoints (api/oauth.py): they authenticate the client themselves
        "/oauth2/token",
        "/accounts/api/v2/oauth2/token",
        "/oauth2/revoke",
    }
)
log = logging.getLogger("runplane.auth")
PUBLIC_PREFIXES = (robocorp_mapping.UPLOADS_PREFIX,)  # authenticated by their own token
CHALLENGE = 'Bearer realm="runplane"'
PROCESS_SECRET_HEADERS = (b"runplane-process-secret", b"robocloud-process-secret")
PROCESS_SECRET_PARAMS = frozenset({"process-secret", "robocloud-process-secret"})
TOKEN_SCHEMES = frozenset({"bearer", "rc-wskey"})
API_KEY_HEADER = b"x-apikey"  # MuleSoft RPA v1 callers' API key


def presented_credential(
    headers: dict[bytes, bytes], query_string: bytes
) -> tuple[str, str | None]:
    """(secret, Basic username or None) a request presents; Unauthenticated when unusable."""
    raw = headers.get(b"authorization")
    api_key = headers.get(API_KEY_HEADER, b"").strip()
    if raw is None and api_key:
        return api_key.decode("latin-1"), None
    if raw is not None:
        text = raw.decode("latin-1").strip()
        scheme, _, value = text.partition(" ")
        value = value.strip()
        if scheme.lower() in TOKEN_SCHEMES:
            if not value:
                raise errors.Unauthenticated(f"The {scheme} credential is empty.")
            return value, None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise errors.Unauthenticated("The Basic credential is not valid base64.") from exc
            username, colon, password = decoded.partition(":")
            if not colon or not password:
                raise errors.Unauthenticated(
                    "The Basic credential must be username:token with a token."
                )
            return password, username or None
        raise errors.Unauthenticated(
            f"Unsupported Authorization scheme {scheme!r}: use Bearer or Basic."
        )
    for name in PROCESS_SECRET_HEADERS:
        header_secret = headers.get(name, b"").decode("latin-1").strip()
        if header_secret[:7].lower() == "bearer ":
            header_secret = header_secret[7:].strip()
        if header_secret:
            return header_secret, None
    if query_string:
        for key, value in parse_qsl(query_string.decode("latin-1")):
            if key in PROCESS_SECRET_PARAMS and value:
                return value, None
    raise errors.Unauthenticated("This route needs a credential: Authorization: Bearer <token>.")


class AuthMiddleware:
    """Resolve the caller of every non-public request, or answer 401 (429 when a client
    address or username has failed too often; see service.limits)."""

    def __init__(self, app: ASGIApp, context: Callable[[], Context]) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in PUBLIC_PATHS
            or scope["path"].startswith(PUBLIC_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        keys = [f"addr:{client[0] if client else 'unknown'}"]
        ctx = self.context()
        limiter = ctx.limiter
        try:
            try:
                secret, username = presented_credential(
                    dict(scope["headers"]), scope.get("query_string", b"")
                )
            except errors.Unauthenticated:
                await limiter.check(ctx, keys)
                raise
            if username:
                keys.append(f"user:{username[:200]}")
            await limiter.check(ctx, keys)
            try:
                principal = await credentials.authenticate(ctx, secret)
            except errors.Unauthenticated:
                await limiter.fail(ctx, keys)
                raise
        except errors.TooManyRequests as exc:
            retry = str(exc.extra.get("retry_after", 1))
            await error_response(scope, exc, {"Retry-After": retry})(scope, receive, send)
            return
        except errors.Unauthenticated as exc:
            response = error_response(scope, exc, {"WWW-Authenticate": CHALLENGE})
            await response(scope, receive, send)
            return
        except errors.RunplaneError as exc:  # e.g. the database unreachable: 503
            after = exc.extra.get("retry_after")
            headers = {"Retry-After": str(after)} if after is not None else None
            await error_response(scope, exc, headers)(scope, receive, send)
            return
        except Exception as exc:
            log.error("authentication failed unexpectedly on %s", scope["path"], exc_info=exc)
            failure = errors.RunplaneError("An unexpected error occurred.")
            await error_response(scope, failure)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
