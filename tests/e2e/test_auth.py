"""Credentials end to end: every route needs one; tokens act within their rights only."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from runplane.api.app import ROUTERS, create_app
from runplane.api.registry import SURFACES
from runplane.settings import Settings
from runplane.web.surface import SURFACE as CONSOLE
from tests.support import ADMIN_TOKEN, Server, ServerFactory, wait_terminal, wait_until

# The OAuth2 token endpoints authenticate the client themselves (RFC 6749 errors).
OAUTH_PUBLIC = {"/oauth2/token", "/accounts/api/v2/oauth2/token", "/oauth2/revoke"}
# Presigned uploads and links: the one-time token in the form, or the signed token in
# the link, is the credential.
PRESIGNED = {"/process-v1/uploads/x", "/process-v1/uploads/artifacts/x"}
# The console's sign-in page and assets need no session; its other pages send a browser
# without one to sign in (303), in the console's own way.
CONSOLE_PUBLIC = {"/login", "/static/x"}
PUBLIC = {
    "/api/v1/health",
    "/api/v1/openapi.json",
    "/api/v1/docs",
    "/api/v1/docs/oauth2-redirect",
    *OAUTH_PUBLIC,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    try:
        yield factory.start("--slots", "2")
    finally:
        factory.stop_all()


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def token(admin: httpx.Client, name: str, scopes: list[str], **extra: Any) -> str:
    r = admin.post("/api/v1/tokens", json={"name": name, "scopes": scopes, **extra})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    return str(r.json()["token"])


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code
    return body


def every_route() -> list[tuple[str, str]]:
    """(method, concrete path) of every route the app serves, read from the app itself."""
    app = create_app(Settings(data_dir="/nonexistent"))
    routes = []
    candidates = [*app.api.routes, *(r for router in ROUTERS for r in router.routes)]
    for route in candidates:
        path = getattr(route, "path", "")
        for method in sorted(getattr(route, "methods", None) or []):
            if method == "HEAD":
                continue
            routes.append((method, re.sub(r"\{[^}]+\}", "x", path)))
    return routes


VENDOR_401: dict[str, Callable[[Any], bool]] = {
    "/mulesoft/": lambda b: (b["status"], b["code"]) == (401, "unauthenticated"),
    "/workspace-v1/": lambda b: b["error"] == "unauthenticated" and bool(b["message"]),
    "/process-v1/": lambda b: b["error"] == "unauthenticated" and bool(b["message"]),
    "/json-v1/": lambda b: b["error"] == "unauthenticated" and bool(b["message"]),
    "/api/rest/v1/": lambda b: b["@type"] == "Error" and bool(b["message"]),
}
"""Each vendor surface's 401 body, by path prefix."""


def test_every_route_but_the_public_ones_needs_a_credential(server: Server) -> None:
    routes = every_route()
    assert len(routes) > 15
    checked = 0
    with server.client(token=None) as anonymous:
        for method, path in routes:
            r = anonymous.request(method, path, json={})
            if path in OAUTH_PUBLIC:  # reached the endpoint: `{}` lacks its parameters
                assert r.status_code == 400, (method, path)
                assert r.json()["error"] == "invalid_request", (method, path)
                continue
            if path in PUBLIC:
                assert r.status_code == 200, (method, path)
                continue
            if SURFACES.owner(path) is CONSOLE:
                if path in CONSOLE_PUBLIC:  # reached: a form, a missing form token, no asset x
                    assert r.status_code in (200, 403, 404), (method, path)
                    continue
                assert r.status_code == 303, (method, path, r.status_code)
                assert r.headers["location"].startswith("/login"), (method, path)
                checked += 1
                continue
            if path in PRESIGNED and method == "POST":  # reached: `{}` is not the form
                assert r.status_code == 422 and r.json()["error"] == "invalid_request", path
                continue
            if path in PRESIGNED:  # a link without its token: refused by the route itself
                assert r.status_code == 403 and r.json()["error"] == "forbidden", path
                continue
            assert r.status_code == 401, (method, path)
            vendor = next((v for prefix, v in VENDOR_401.items() if path.startswith(prefix)), None)
            if vendor is not None:  # that surface answers in its own shape
                assert r.headers["content-type"] == "application/json", path
                assert vendor(r.json()), (path, r.text)
            else:
                body = problem(r, 401, "unauthenticated")
                assert body["detail"]
            assert r.headers["www-authenticate"].startswith("Bearer"), (method, path)
            assert "Traceback" not in r.text
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("Bearer", "empty"),
        ("Basic !!!not-base64", "base64"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "username:token"),
        ("Basic " + base64.b64encode(b"user:").decode(), "username:token"),
        ("Token abc", "Unsupported Authorization scheme"),
    ],
)
def test_malformed_authorization_headers_get_clear_401s(
    server: Server, header: str, fragment: str
) -> None:
    with server.client(token=None) as c:
        body = problem(
            c.get("/api/v1/executions", headers={"Authorization": header}), 401, "unauthenticated"
        )
    assert fragment in body["detail"]


def test_unknown_token_is_401_invalid_credentials(server: Server) -> None:
    with server.client(token="rpt_" + "x" * 43) as c:
        problem(c.get("/api/v1/executions"), 401, "invalid_credentials")


def test_basic_auth_with_username_and_token_works(server: Server) -> None:
    basic = base64.b64encode(f"BOOMI_TOKEN.someone@example.com:{ADMIN_TOKEN}".encode()).decode()
    with server.client(token=None) as c:
        assert (
            c.get("/api/v1/processes", headers={"Authorization": f"Basic {basic}"}).status_code
            == 200
        )


def test_a_read_token_reads_but_cannot_start_or_deploy(server: Server, admin: httpx.Client) -> None:
    secret = token(admin, "reader", ["executions:read"])
    done = admin.post("/api/v1/processes/hello/executions", params={"wait": 20}, json={}).json()
    with server.client(token=secret) as reader:
        assert reader.get(f"/api/v1/executions/{done['id']}").status_code == 200
        assert reader.get("/api/v1/executions").status_code == 200
        body = problem(reader.post("/api/v1/processes/hello/executions", json={}), 403, "forbidden")
        assert "executions:start" in body["detail"]
        problem(
            reader.post("/api/v1/tokens", json={"name": "x", "scopes": ["admin"]}), 403, "forbidden"
        )
        problem(
            reader.put("/api/v1/processes/hello/deployments/sandbox", json={}), 403, "forbidden"
        )


def test_an_environment_token_acts_only_in_its_environment(
    server: Server, admin: httpx.Client
) -> None:
    in_production = admin.post("/api/v1/processes/hello/executions", json={}).json()["id"]
    secret = token(
        admin, "sandboxed", ["executions:start", "executions:read"], environments=["sandbox"]
    )
    with server.client(token=secret) as c:
        body = problem(
            c.post("/api/v1/processes/hello/executions", json={"environment": "production"}),
            403,
            "forbidden",
        )
        assert "production" in body["detail"]
        problem(c.get(f"/api/v1/executions/{in_production}"), 404, "execution_not_found")
        listed = c.get("/api/v1/executions", params={"limit": 500}).json()["items"]
        assert all(e["environment"] == "sandbox" for e in listed)
        problem(c.post(f"/api/v1/executions/{in_production}/cancel"), 404, "execution_not_found")


def test_rotated_and_deleted_tokens_stop_working_at_once(
    server: Server, admin: httpx.Client
) -> None:
    old = token(admin, "rotating", ["executions:read"])
    with server.client(token=old) as c:
        assert c.get("/api/v1/executions").status_code == 200  # now cached
    r = admin.post("/api/v1/tokens/rotating/rotate")
    assert r.status_code == 200
    new = r.json()["token"]
    assert new != old
    with server.client(token=old) as c:
        problem(c.get("/api/v1/executions"), 401, "invalid_credentials")
    with server.client(token=new) as c:
        assert c.get("/api/v1/executions").status_code == 200
    assert admin.delete("/api/v1/tokens/rotating").status_code == 204
    with server.client(token=new) as c:
        problem(c.get("/api/v1/executions"), 401, "invalid_credentials")
    problem(admin.delete("/api/v1/tokens/rotating"), 404, "credential_not_found")


def test_an_expired_token_is_refused(server: Server, admin: httpx.Client) -> None:
    secret = token(admin, "brief", ["executions:read"], expiresIn=1)
    started = time.monotonic()
    with server.client(token=secret) as c:
        if time.monotonic() - started < 0.9:
            assert c.get("/api/v1/executions").status_code == 200
        wait_until(lambda: c.get("/api/v1/executions").status_code == 401, timeout=10)
        problem(c.get("/api/v1/executions"), 401, "invalid_credentials")


def test_token_requests_are_validated_and_listings_hold_no_secret(admin: httpx.Client) -> None:
    body = problem(
        admin.post("/api/v1/tokens", json={"name": "bad", "scopes": ["everything"]}),
        422,
        "invalid_request",
    )
    assert body["errors"][0]["name"] == "scopes"
    body = problem(
        admin.post("/api/v1/tokens", json={"name": "rt", "scopes": ["runtime"]}),
        422,
        "invalid_request",
    )
    assert body["errors"][0]["code"] == "runtime_needs_one_environment"
    problem(
        admin.post(
            "/api/v1/tokens",
            json={"name": "rt", "scopes": ["runtime"], "environments": ["moon"]},
        ),
        404,
        "environment_not_found",
    )
    secret = token(admin, "listed", ["executions:read"])
    assert (
        admin.post("/api/v1/tokens", json={"name": "listed", "scopes": ["admin"]}).status_code
        == 409
    )
    listing = admin.get("/api/v1/tokens")
    assert listing.status_code == 200 and secret not in listing.text
    assert all("token" not in t for t in listing.json()["items"])
    assert {"listed", "bootstrap-admin"} <= {t["name"] for t in listing.json()["items"]}


def test_first_start_shows_the_admin_token_once_in_a_working_curl_line(
    start_server: ServerFactory,
) -> None:
    srv = start_server.start("--slots", "1", env={"RUNPLANE_ADMIN_TOKEN": None})
    curl = next(line for line in srv.log().splitlines() if line.startswith("curl "))
    secret = re.search(r"Bearer (rpt_[A-Za-z0-9_-]+)", curl)
    assert secret is not None
    with srv.client(token=secret.group(1)) as c:
        done = c.post("/api/v1/processes/hello/executions", params={"wait": 20}, json={}).json()
        assert wait_terminal(c, done["id"])["status"] == "succeeded"
    srv.stop()
    srv.start()
    assert srv.log().count(secret.group(1)) == 1  # shown once, never again
    with srv.client(token=secret.group(1)) as c:
        assert c.get("/api/v1/processes").status_code == 200


def test_a_short_admin_token_setting_is_refused_at_start(start_server: ServerFactory) -> None:
    with pytest.raises(AssertionError, match="at least 32"):
        start_server.start("--slots", "0", env={"RUNPLANE_ADMIN_TOKEN": "too-short"})


def test_failed_authentication_is_rate_limited_per_address(start_server: ServerFactory) -> None:
    srv = start_server.start(
        "--slots",
        "0",
        env={"RUNPLANE_AUTH_FAILURE_LIMIT": "3", "RUNPLANE_AUTH_FAILURE_WINDOW_SECONDS": "30"},
    )
    with srv.client(token="rpt_wrong") as bad:
        codes = [bad.get("/api/v1/executions").status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        limited = bad.get("/api/v1/executions")
        body = problem(limited, 429, "too_many_requests")
        assert 1 <= int(limited.headers["retry-after"]) <= 30 and body["detail"]
    # The address is blocked whatever the credential: no oracle for a guesser.
    with srv.client() as admin:
        problem(admin.get("/api/v1/executions"), 429, "too_many_requests")
        assert admin.get("/api/v1/health").status_code == 200


def test_failed_client_authentication_at_the_token_endpoint_is_rate_limited(
    start_server: ServerFactory,
) -> None:
    srv = start_server.start("--slots", "0", env={"RUNPLANE_AUTH_FAILURE_LIMIT": "3"})
    with srv.client() as admin:
        app = admin.post("/api/v1/apps", json={"name": "limited", "scopes": ["executions:read"]})
        client_id = app.json()["clientId"]
    with srv.client(token=None) as anon:
        form = {"grant_type": "client_credentials", "client_id": client_id}
        codes = [
            anon.post("/oauth2/token", data={**form, "client_secret": "wrong"}).status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 401]
        limited = anon.post("/oauth2/token", data={**form, "client_secret": "wrong"})
        assert limited.status_code == 429 and limited.json()["error"] == "too_many_requests"
        assert int(limited.headers["retry-after"]) >= 1


def test_a_limited_token_without_environment_uses_the_one_it_may_use(
    server: Server, admin: httpx.Client
) -> None:
    # hello is invokable in production (the demo) and, after this, in sandbox too.
    assert admin.put("/api/v1/processes/hello/deployments/sandbox", json={}).status_code in (
        200,
        201,
    )
    problem(admin.post("/api/v1/processes/hello/executions", json={}), 422, "environment_required")
    secret = token(admin, "sandbox-only", ["executions:start"], environments=["sandbox"])
    with server.client(token=secret) as c:
        r = c.post("/api/v1/processes/hello/executions", json={})
        assert r.status_code == 201, r.text
        assert r.json()["environment"] == "sandbox"
    admin.delete("/api/v1/processes/hello/deployments/sandbox")


def test_an_environment_limited_admin_cannot_manage_credentials(
    server: Server, admin: httpx.Client
) -> None:
    limited = token(admin, "sandbox-admin", ["admin"], environments=["sandbox"])
    with server.client(token=limited) as c:
        for method, path, body in [
            ("POST", "/api/v1/tokens", {"name": "esc", "scopes": ["admin"]}),
            ("GET", "/api/v1/tokens", None),
            ("POST", "/api/v1/tokens/bootstrap-admin/rotate", None),
            ("DELETE", "/api/v1/tokens/bootstrap-admin", None),
            ("POST", "/api/v1/apps", {"name": "a1", "scopes": ["admin"]}),
            ("POST", "/api/v1/processes/hello/secret", None),
            ("POST", "/api/v1/workspaces", {"name": "esc"}),
            ("POST", "/api/v1/environments", {"name": "esc"}),
        ]:
            r = c.request(method, path, json=body)
            problem(r, 403, "forbidden")
        assert [w["name"] for w in c.get("/api/v1/workspaces").json()["items"]] == ["default"]
    # nothing was created or rotated
    with server.client() as still_admin:
        names = {t["name"] for t in still_admin.get("/api/v1/tokens").json()["items"]}
        assert "esc" not in names and "bootstrap-admin" in names


def test_lone_surrogates_at_the_token_endpoint_get_clean_4xx(server: Server) -> None:
    grant = '"grant_type": "client_credentials"'
    cases = [
        ('"client_id": "rpc_x", "client_secret": "\\ud800"', 401, "invalid_client"),
        ('"client_id": "\\ud800", "client_secret": "x"', 400, "invalid_request"),
    ]
    with server.client(token=None) as anon:
        for fields, status, error in cases:
            r = anon.post(
                "/oauth2/token",
                content=("{" + grant + ", " + fields + "}").encode(),
                headers={"Content-Type": "application/json"},
            )
            assert r.status_code == status, r.text
            assert r.json()["error"] == error
