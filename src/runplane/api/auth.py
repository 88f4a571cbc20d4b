"""Authentication: every request but the public ones must present a live credential.

Accepted (checked in this order): `Authorization: Bearer <secret>`,
`Authorization: Basic base64(username:secret)` (the username is informational:
platforms' clients send their own forms of it), the `Runplane-Process-Secret`
header, and the `process-secret` query parameter for clients that cannot set
headers. The principal goes to `scope["state"]["principal"]`; routers and
services decide what it may do.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from runplane.api.compat.boomi import formats as boomi_formats
from runplane.api.compat.boomi import mapping as boomi_mapping
from runplane.api.compat.mulesoft import mapping as mulesoft_mapping
from runplane.api.problems import problem_response
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
CHALLENGE = 'Bearer realm="runplane"'
PROCESS_SECRET_HEADER = b"runplane-process-secret"
PROCESS_SECRET_PARAM = "process-secret"  # noqa: S105 - a parameter name


def presented_credential(
    headers: dict[bytes, bytes], query_string: bytes
) -> tuple[str, str | None]:
    """(secret, Basic username or None) a request presents; Unauthenticated when unusable."""
    raw = headers.get(b"authorization")
    if raw is not None:
        text = raw.decode("latin-1").strip()
        scheme, _, value = text.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            if not value:
                raise errors.Unauthenticated("The Bearer credential is empty.")
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
    header_secret = headers.get(PROCESS_SECRET_HEADER)
    if header_secret is not None and header_secret.strip():
        return header_secret.decode("latin-1").strip(), None
    if query_string:
        for key, value in parse_qsl(query_string.decode("latin-1")):
            if key == PROCESS_SECRET_PARAM and value:
                return value, None
    raise errors.Unauthenticated("This route needs a credential: Authorization: Bearer <token>.")


def _refusal(scope: Scope, exc: errors.RunplaneError, headers: dict[str, str]) -> Response:
    """A 401/429 in the format of the surface the request was for."""
    path = scope["path"]
    if path.startswith(mulesoft_mapping.PREFIX + "/"):
        return mulesoft_mapping.error_response(exc, headers)
    if path.startswith(boomi_mapping.PREFIX + "/"):
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        return boomi_mapping.error_response(exc, headers, xml=boomi_formats.wants_xml(accept))
    return problem_response(exc, path, headers)


class AuthMiddleware:
    """Resolve the caller of every non-public request, or answer 401 (429 when a client
    address or username has failed too often; see service.limits)."""

    def __init__(self, app: ASGIApp, context: Callable[[], Context]) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
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
            await _refusal(scope, exc, {"Retry-After": retry})(scope, receive, send)
            return
        except errors.Unauthenticated as exc:
            response = _refusal(scope, exc, {"WWW-Authenticate": CHALLENGE})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
