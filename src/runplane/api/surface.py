"""Surfaces: each HTTP face of runplane as one registered unit.

A surface (the native API, each vendor's API, the token endpoints, the
console) declares what the core needs to serve it, and nothing in the core
names one:

- the path prefixes it owns: a refusal on one of them (401, 413, 429, 503)
  is rendered by the surface's own error renderer;
- its routers, and layers around the app (path aliases; inner fast paths);
- its public paths (no credential needed) and the credentials it reads
  (Authorization schemes, headers, cookies, query parameters);
- its body limits.

`Surfaces` is the registry the app, the authentication middleware, the
body limits and the access log loop over (api/registry.py lists them).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Scope

from runplane.api import problems
from runplane.domain import errors
from runplane.domain.auth import Principal
from runplane.service import credentials
from runplane.service.context import Context
from runplane.settings import Settings

Render = Callable[[Scope, errors.RunplaneError, "dict[str, str] | None"], Response]
"""How a surface answers an error: (request scope, error, extra headers) → response."""

Resolver = Callable[[Context, str], Awaitable[Principal]]
"""Turns a presented secret into the principal it stands for (or raises Unauthenticated)."""

Headers = Mapping[bytes, bytes]


@dataclass(frozen=True)
class Presented:
    """A credential a request presents: the secret, the Basic username if any (counted by
    the failure limit), and how to resolve it."""

    secret: str
    username: str | None = None
    resolve: Resolver = credentials.authenticate


class Stage(IntEnum):
    """When a credential reader is asked: every header before any cookie or query value."""

    HEADER = 10
    COOKIE = 20
    QUERY = 30


@dataclass(frozen=True)
class CredentialReader:
    """Reads one form of credential from a request; None when the request has none.

    It may raise `Unauthenticated` (a malformed credential) or another error
    (e.g. a cookie on a state-changing request without its CSRF token).
    """

    stage: Stage
    read: Callable[[Scope, Headers], Presented | None]


AuthorizationScheme = Callable[[str], Presented]
"""Parses the value of `Authorization: <scheme> <value>` into a presented credential."""


@dataclass(frozen=True)
class BodyLimit:
    """Requests this matches may carry up to `max_bytes` (others: the JSON limit)."""

    method: str
    matches: Callable[[str], bool]
    max_bytes: int


@dataclass(frozen=True)
class Surface:
    """One HTTP face of runplane and what the core needs to serve it."""

    name: str
    prefixes: tuple[str, ...] = ()
    routers: tuple[APIRouter, ...] = ()
    render_error: Render | None = None  # None: RFC 9457 problem details
    public_paths: frozenset[str] = frozenset()
    public_prefixes: tuple[str, ...] = ()
    schemes: Mapping[str, AuthorizationScheme] = field(default_factory=dict)
    readers: tuple[CredentialReader, ...] = ()
    redacted_params: frozenset[str] = frozenset()  # query values never written to a log
    body_limits: tuple[BodyLimit, ...] = ()
    # (alias, target) path prefixes served as the target, outermost (before auth)
    aliases: Callable[[Settings], tuple[tuple[str, str], ...]] = lambda _: ()
    # a layer in front of FastAPI (after auth and limits), e.g. a hot path
    inner: Callable[[ASGIApp, FastAPI], ASGIApp] | None = None

    def owns(self, path: str) -> bool:
        """True when `path` is this surface's (a prefix `/x` owns `/x` and `/x/…`)."""
        return any(_under(path, prefix) for prefix in self.prefixes)


def _under(path: str, prefix: str) -> bool:
    if prefix == "/":
        return path == "/"
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def _problem(scope: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None) -> Response:
    return problems.problem_response(exc, scope["path"], headers)


class Surfaces:
    """The registry: every surface, in order; the first that owns a path answers for it
    (paths no surface owns are answered as problem details)."""

    def __init__(self, surfaces: list[Surface]) -> None:
        self.surfaces = tuple(surfaces)
        self.routers = tuple(r for s in self.surfaces for r in s.routers)
        self.public_paths = frozenset().union(*(s.public_paths for s in self.surfaces))
        self.public_prefixes = tuple(p for s in self.surfaces for p in s.public_prefixes)
        self.schemes: dict[str, AuthorizationScheme] = {}
        for s in self.surfaces:
            for name, parse in s.schemes.items():
                if name.lower() in self.schemes:
                    raise ValueError(f"two surfaces read the Authorization scheme {name!r}")
                self.schemes[name.lower()] = parse
        self.readers = tuple(
            sorted((r for s in self.surfaces for r in s.readers), key=lambda r: r.stage)
        )
        self.redacted_params = frozenset().union(*(s.redacted_params for s in self.surfaces))
        self.body_limits = tuple(b for s in self.surfaces for b in s.body_limits)

    def owner(self, path: str) -> Surface | None:
        """The surface `path` belongs to, if any."""
        for s in self.surfaces:
            if s.owns(path):
                return s
        return None

    def is_public(self, path: str) -> bool:
        """True when `path` needs no credential."""
        return path in self.public_paths or path.startswith(self.public_prefixes)

    def error_response(
        self, scope: Scope, exc: errors.RunplaneError, headers: dict[str, str] | None = None
    ) -> Response:
        """The answer to `exc` in the format of the surface the request's path belongs to."""
        surface = self.owner(scope["path"])
        render = surface.render_error if surface and surface.render_error else _problem
        return render(scope, exc, headers)

    def exception_response(self, request: Request, exc: Exception) -> Response:
        """Any exception a route raised, in the format of the surface it belongs to (unknown
        paths and methods under a surface's prefix included)."""
        err = problems.to_error(request, exc)
        return self.error_response(request.scope, err, problems.response_headers(exc, err))

    def body_limit(self, method: str, path: str, default: int) -> int:
        """How many body bytes this request may carry."""
        for limit in self.body_limits:
            if limit.method == method and limit.matches(path):
                return limit.max_bytes
        return default

    def aliases(self, settings: Settings) -> list[tuple[str, str]]:
        """Every (alias, target) path prefix the surfaces ask for under these settings."""
        return [pair for s in self.surfaces for pair in s.aliases(settings)]

    def include(self, app: FastAPI) -> None:
        """Add every surface's routers to `app`."""
        for router in self.routers:
            app.include_router(router)

    def inner(self, app: ASGIApp, api: FastAPI) -> ASGIApp:
        """`app` wrapped in every surface's inner layer."""
        for s in reversed(self.surfaces):
            if s.inner is not None:
                app = s.inner(app, api)
        return app

    def read_credential(self, scope: Scope, headers: Headers) -> Presented:
        """The credential a request presents; Unauthenticated when it has none usable."""
        raw = headers.get(b"authorization")
        if raw is not None:
            scheme, _, value = raw.decode("latin-1").strip().partition(" ")
            parse = self.schemes.get(scheme.lower())
            if parse is None:
                raise errors.Unauthenticated(
                    f"Unsupported Authorization scheme {scheme!r}: use Bearer or Basic."
                )
            value = value.strip()
            if not value:
                raise errors.Unauthenticated(f"The {scheme} credential is empty.")
            return parse(value)
        for reader in self.readers:
            presented = reader.read(scope, headers)
            if presented is not None:
                return presented
        raise errors.Unauthenticated(
            "This route needs a credential: Authorization: Bearer <token>."
        )


def header_value(headers: Headers, name: bytes) -> str:
    """A header's value as text ('' when absent), with an optional `Bearer ` prefix removed."""
    value = headers.get(name, b"").decode("latin-1").strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


def query_value(scope: Scope, names: frozenset[str]) -> str | None:
    """The first non-empty value of one of `names` in the query string."""
    query: bytes = scope.get("query_string", b"")
    if not query:
        return None
    for key, value in parse_qsl(query.decode("latin-1")):
        if key in names and value:
            return value
    return None


def header_reader(*names: bytes) -> CredentialReader:
    """Reads a secret from the first of these headers present."""

    def read(_: Scope, headers: Headers) -> Presented | None:
        for name in names:
            value = header_value(headers, name)
            if value:
                return Presented(value)
        return None

    return CredentialReader(Stage.HEADER, read)


def query_reader(*names: str) -> CredentialReader:
    """Reads a secret from one of these query parameters (for clients without headers)."""
    wanted = frozenset(names)

    def read(scope: Scope, _: Headers) -> Presented | None:
        value = query_value(scope, wanted)
        return Presented(value) if value else None

    return CredentialReader(Stage.QUERY, read)


def plain_scheme(value: str) -> Presented:
    """`Authorization: <scheme> <secret>`: the value is the secret."""
    return Presented(value)


def basic_scheme(value: str) -> Presented:
    """`Authorization: Basic base64(username:secret)`: the username is informational (platforms'
    clients send their own forms of it) but counted by the failure limit."""
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise errors.Unauthenticated("The Basic credential is not valid base64.") from exc
    username, colon, password = decoded.partition(":")
    if not colon or not password:
        raise errors.Unauthenticated("The Basic credential must be username:token with a token.")
    return Presented(password, username or None)
