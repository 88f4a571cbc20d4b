"""OAuth2 token endpoint (RFC 6749 §4.4, client credentials) and revocation (RFC 7009).

`POST /oauth2/token` and MuleSoft's `POST /accounts/api/v2/oauth2/token` (one
handler) exchange an app's client credentials for an access token;
`POST /oauth2/revoke` revokes one. The authentication middleware lets these
paths through (`api.oauth.surface`): they authenticate the client
themselves, by HTTP Basic (client id and secret each form-urlencoded first,
RFC 6749 §2.3.1) or by `client_id` and `client_secret` in the body, never both
with different values. Bodies are form-encoded or JSON (a body without a usable
`Content-Type` is read as JSON when it starts with `{`, else as a form).

This surface answers RFC 6749 §5.2 errors, `{"error", "error_description"}`,
never problem details; `oauth_error` is the one mapping from the domain errors.
Every answer carries `Cache-Control: no-store`. No description ever holds a
secret.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from starlette.responses import Response

from runplane.api.deps import Ctx
from runplane.api.native.render import JSON
from runplane.domain import errors
from runplane.service import oauth
from runplane.service.context import Context

log = logging.getLogger("runplane.api")

router = APIRouter(tags=["oauth2"])

TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path
MULESOFT_TOKEN_PATH = "/accounts/api/v2/oauth2/token"  # noqa: S105 - a path
REVOKE_PATH = "/oauth2/revoke"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
JSON_MEDIA_TYPE = "application/json"
CLIENT_CHALLENGE = 'Basic realm="runplane"'
GRANT_TYPE = "client_credentials"
MAX_PARAMS = 50
MAX_ECHOED_NAME_CHARS = 50
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its (name, value) pairs, so repeated names can be refused."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in pairs:
        if name in params:
            shown = name[:MAX_ECHOED_NAME_CHARS]
            raise errors.BadRequest(f"The parameter {shown!r} appears more than once.")
        params[name] = value
    return params


def _form_params(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_PARAMS)
    except ValueError as exc:  # not UTF-8, or too many fields
        raise errors.BadRequest(f"The body is not a valid {FORM_MEDIA_TYPE} form.") from exc
    # RFC 6749 §3.2: a parameter sent without a value is treated as omitted.
    return {k: v for k, v in _unique(pairs).items() if v}


def _json_params(body: bytes) -> dict[str, str]:
    try:
        doc = json.loads(body, object_pairs_hook=_Pairs)
    except ValueError as exc:
        raise errors.BadRequest("The body is not valid JSON.") from exc
    if not isinstance(doc, _Pairs):
        raise errors.BadRequest("The JSON body must be an object.")
    params: dict[str, str] = {}
    for name, value in _unique(doc).items():
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            shown = name[:MAX_ECHOED_NAME_CHARS]
            raise errors.BadRequest(f"The parameter {shown!r} must be a string.")
        params[name] = value
    return params


def parse_params(body: bytes, content_type: str | None) -> dict[str, str]:
    """The request's parameters, each at most once; BadRequest when the body is unusable."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == JSON_MEDIA_TYPE or media.endswith("+json"):
        return _json_params(body)
    if media != FORM_MEDIA_TYPE and body.lstrip().startswith(b"{"):
        return _json_params(body)
    return _form_params(body)


def decode_basic(authorization: str) -> tuple[str, str]:
    """(client id, client secret) of an HTTP Basic `Authorization` value.

    RFC 6749 §2.3.1: both are form-urlencoded before being joined by ':' and
    base64-encoded, so each part is decoded after splitting on the first ':'.
    InvalidClient when the header is not such a credential.
    """
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise errors.InvalidClient(
            "Authenticate the client with HTTP Basic, or with client_id and client_secret "
            "in the body."
        )
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise errors.InvalidClient("The Basic credential is not valid base64 of UTF-8.") from exc
    raw_id, colon, raw_secret = decoded.partition(":")
    client_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if not colon or not client_id or not client_secret:
        raise errors.InvalidClient("The Basic credential must be client_id:client_secret.")
    return client_id, client_secret


def client_credentials(authorization: str | None, params: dict[str, str]) -> tuple[str, str]:
    """The client id and secret a request presents, in the header or in the body."""
    body_id, body_secret = params.get("client_id"), params.get("client_secret")
    if authorization is not None:
        client_id, client_secret = decode_basic(authorization)
        # Both values come from the caller, so a plain comparison is no timing oracle.
        if (body_id is not None and body_id != client_id) or (
            body_secret is not None and body_secret != client_secret
        ):
            raise errors.BadRequest(
                "The client credentials in the Authorization header and in the body differ: "
                "use one method."
            )
        return client_id, client_secret
    if body_id is None or body_secret is None:
        raise errors.InvalidClient(
            "Client authentication is required: HTTP Basic, or client_id and client_secret "
            "in the body."
        )
    return body_id, body_secret


def oauth_error(exc: errors.RunplaneError) -> tuple[int, str]:
    """(HTTP status, RFC 6749 §5.2 error code) of a domain error: the one mapping."""
    if isinstance(exc, errors.Unauthenticated):
        return 401, "invalid_client"
    if isinstance(exc, errors.InvalidScope | errors.UnsupportedGrantType):
        return 400, exc.code
    if isinstance(exc, errors.BadRequest | errors.Unprocessable):
        return 400, "invalid_request"
    if exc.status >= 500:
        return exc.status, "server_error"
    return exc.status, exc.code  # an extension error (RFC 6749 §8.5)


T = TypeVar("T")


async def _limited(request: Request, ctx: Context, client_id: str, work: Awaitable[T]) -> T:
    """Run a client-authenticated step under the failed-authentication limit, per client
    address and client id: refused (429) while blocked, a failure counted on 401."""
    address = request.client.host if request.client else "unknown"
    keys = [f"addr:{address}", f"client:{client_id[:200]}"]
    try:
        await ctx.limiter.check(ctx, keys)
    except BaseException:
        if inspect.iscoroutine(work):
            work.close()
        raise
    try:
        return await work
    except errors.Unauthenticated:
        await ctx.limiter.fail(ctx, keys)
        raise


def error_response(request: Request, exc: Exception) -> Response:
    """The RFC 6749 §5.2 answer to any exception raised on this surface."""
    if not isinstance(exc, errors.RunplaneError):
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        exc = errors.RunplaneError("An unexpected error occurred.")
    return error_body(exc)


def error_body(exc: errors.RunplaneError) -> Response:
    """The RFC 6749 §5.2 answer to a domain error (401 with its challenge, 429 with
    Retry-After, never cached)."""
    status, code = oauth_error(exc)
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = CLIENT_CHALLENGE
    if isinstance(exc, errors.TooManyRequests):
        headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
    body = {"error": code, "error_description": exc.detail}
    return JSON(body, status_code=status, headers=headers)


_PARAMETER = {"type": "string"}
_ERROR_DOC = {
    JSON_MEDIA_TYPE: {
        "schema": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": _PARAMETER, "error_description": _PARAMETER},
        }
    }
}
_CLIENT_PARAMETERS = {
    "client_id": {**_PARAMETER, "description": "Or in an HTTP Basic header."},
    "client_secret": {**_PARAMETER, "description": "Or in an HTTP Basic header."},
}


def _doc(required: str, properties: dict[str, Any], ok: dict[str, Any]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": [required],
        "properties": {**properties, **_CLIENT_PARAMETERS},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {FORM_MEDIA_TYPE: {"schema": schema}, JSON_MEDIA_TYPE: {"schema": schema}},
        },
        "responses": {
            "200": ok,
            "400": {"description": "RFC 6749 error", "content": _ERROR_DOC},
            "401": {"description": "invalid_client", "content": _ERROR_DOC},
        },
    }


TOKEN_DOC = _doc(
    "grant_type",
    {
        "grant_type": {"type": "string", "enum": [GRANT_TYPE]},
        "scope": {**_PARAMETER, "description": "Space-separated; none: every scope of the app."},
    },
    {
        "description": "An access token",
        "content": {
            JSON_MEDIA_TYPE: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "access_token": _PARAMETER,
                        "token_type": {"type": "string", "enum": ["bearer"]},
                        "expires_in": {"type": "integer"},
                        "scope": _PARAMETER,
                    },
                }
            }
        },
    },
)
REVOKE_DOC = _doc(
    "token",
    {"token": _PARAMETER, "token_type_hint": _PARAMETER},
    {"description": "Revoked, or not a token of this client (RFC 7009 §2.2)"},
)


@router.post(TOKEN_PATH, openapi_extra=TOKEN_DOC)
@router.post(MULESOFT_TOKEN_PATH, openapi_extra=TOKEN_DOC)
async def token(request: Request, ctx: Ctx) -> Response:
    """Exchange an app's client credentials for an access token (client_credentials grant)."""
    try:
        params = parse_params(await request.body(), request.headers.get("content-type"))
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise errors.BadRequest("The parameter 'grant_type' is missing.")
        if grant_type != GRANT_TYPE:
            raise errors.UnsupportedGrantType(f"Only grant_type={GRANT_TYPE} is supported.")
        client_id, client_secret = client_credentials(request.headers.get("authorization"), params)
        issued = await _limited(
            request,
            ctx,
            client_id,
            oauth.issue_token(ctx, client_id, client_secret, params.get("scope")),
        )
    except Exception as exc:
        return error_response(request, exc)
    body = {
        "access_token": issued.value,
        "token_type": "bearer",
        "expires_in": issued.expires_in_seconds,
        "scope": " ".join(issued.scopes),
    }
    return JSON(body, headers=NO_STORE)


@router.post(REVOKE_PATH, openapi_extra=REVOKE_DOC)
async def revoke(request: Request, ctx: Ctx) -> Response:
    """Revoke an access token of the authenticated client (RFC 7009); 200 for any token."""
    try:
        params = parse_params(await request.body(), request.headers.get("content-type"))
        secret = params.get("token")
        if secret is None:
            raise errors.BadRequest("The parameter 'token' is missing.")
        client_id, client_secret = client_credentials(request.headers.get("authorization"), params)
        await _limited(
            request, ctx, client_id, oauth.revoke_token(ctx, client_id, client_secret, secret)
        )
    except Exception as exc:
        return error_response(request, exc)
    return Response(status_code=200, headers=NO_STORE)
