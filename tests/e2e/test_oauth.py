"""OAuth2 client-credentials apps end to end: token endpoint, access tokens, revocation."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support import Server, ServerFactory, wait_terminal

TOKEN = "/oauth2/token"
MULESOFT_TOKEN = "/accounts/api/v2/oauth2/token"
REVOKE = "/oauth2/revoke"
START = "/api/v1/processes/hello/executions"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    try:
        # Several checks here expect 401s on purpose: keep failed-authentication
        # rate limiting (per client address) out of their way.
        yield factory.start("--slots", "2", env={"RUNPLANE_AUTH_FAILURE_LIMIT": "10000"})
    finally:
        factory.stop_all()


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def anonymous(server: Server) -> Iterator[httpx.Client]:
    with server.client(token=None) as c:
        yield c


def new_app(
    admin: httpx.Client, name: str, scopes: list[str], environments: list[str] | None = None
) -> tuple[str, str]:
    """(client id, client secret) of a new app."""
    body: dict[str, Any] = {"name": name, "scopes": scopes}
    if environments is not None:
        body["environments"] = environments
    r = admin.post("/api/v1/apps", json=body)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    doc = r.json()
    assert doc["clientId"].startswith("rpc_") and doc["clientSecret"].startswith("rpcs_")
    return str(doc["clientId"]), str(doc["clientSecret"])


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    """HTTP Basic client authentication as RFC 6749 §2.3.1 has it: each part form-urlencoded."""
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}


def granted(r: httpx.Response) -> dict[str, Any]:
    """The token response, checked against RFC 6749 §5.1."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
    doc: dict[str, Any] = r.json()
    assert doc["token_type"] == "bearer" and doc["expires_in"] == 3600
    assert doc["access_token"].startswith("rpa_")
    return doc


def refused(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """An RFC 6749 §5.2 error answer (JSON, never problem details)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    doc: dict[str, Any] = r.json()
    assert doc["error"] == error and doc["error_description"]
    if status == 401:
        assert r.headers["www-authenticate"] == 'Basic realm="runplane"'
    return doc


def token_by_basic(
    c: httpx.Client, cid: str, secret: str, path: str = TOKEN, **form: str
) -> httpx.Response:
    return c.post(
        path, data={"grant_type": "client_credentials", **form}, headers=basic(cid, secret)
    )


def test_a_token_from_basic_client_auth_starts_hello_and_reads_it(
    server: Server, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, secret = new_app(
        admin, "scheduler", ["executions:start", "executions:read"], ["production"]
    )
    doc = granted(token_by_basic(anonymous, cid, secret))
    assert doc["scope"] == "executions:read executions:start"
    with server.client(token=doc["access_token"]) as app:
        r = app.put(START, json={"executionId": "oauth-1", "inputArguments": {"name": "app"}})
        assert r.status_code == 201, r.text
        done = wait_terminal(app, r.json()["id"])
        assert done["status"] == "succeeded" and done["environment"] == "production"
        assert app.get("/api/v1/processes/hello/executions/oauth-1").status_code == 200


@pytest.mark.parametrize("path", [TOKEN, MULESOFT_TOKEN])
@pytest.mark.parametrize("style", ["basic", "form", "json"])
def test_every_client_authentication_style_works_on_both_paths(
    server: Server, admin: httpx.Client, anonymous: httpx.Client, path: str, style: str
) -> None:
    cid, secret = new_app(admin, f"styles-{style}-{len(path)}", ["executions:read"])
    if style == "basic":
        r = token_by_basic(anonymous, cid, secret, path)
    elif style == "form":
        form = {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
        r = anonymous.post(path, data=form)
    else:
        body = {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
        r = anonymous.post(path, json=body)
    doc = granted(r)
    with server.client(token=doc["access_token"]) as app:
        assert app.get("/api/v1/executions").status_code == 200


def test_credentials_in_both_header_and_body_must_agree(
    admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, secret = new_app(admin, "both", ["executions:read"])
    same = anonymous.post(
        TOKEN,
        data={"grant_type": "client_credentials", "client_id": cid},
        headers=basic(cid, secret),
    )
    granted(same)
    refused(
        anonymous.post(
            TOKEN,
            data={"grant_type": "client_credentials", "client_secret": secret + "x"},
            headers=basic(cid, secret),
        ),
        400,
        "invalid_request",
    )


def test_scope_narrows_the_token_and_an_ungranted_scope_is_invalid_scope(
    server: Server, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, secret = new_app(admin, "narrow", ["executions:start", "executions:read"])
    doc = granted(token_by_basic(anonymous, cid, secret, scope="executions:read"))
    assert doc["scope"] == "executions:read"
    with server.client(token=doc["access_token"]) as app:
        assert app.get("/api/v1/executions").status_code == 200
        r = app.post(START, json={})
        assert r.status_code == 403 and "executions:start" in r.json()["detail"]
    refused(token_by_basic(anonymous, cid, secret, scope="admin"), 400, "invalid_scope")
    body = refused(
        token_by_basic(anonymous, cid, secret, scope="executions:read everything"),
        400,
        "invalid_scope",
    )
    assert "everything" in body["error_description"]


def test_an_unsupported_grant_type_and_malformed_requests_are_refused(
    admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, secret = new_app(admin, "malformed", ["executions:read"])
    auth = basic(cid, secret)
    refused(
        anonymous.post(TOKEN, data={"grant_type": "password"}, headers=auth),
        400,
        "unsupported_grant_type",
    )
    body = refused(anonymous.post(TOKEN, data={"scope": "x"}, headers=auth), 400, "invalid_request")
    assert "grant_type" in body["error_description"]
    form = "application/x-www-form-urlencoded"
    for content, ctype in [
        (b"grant_type=client_credentials&grant_type=client_credentials", form),
        (b'{"grant_type": "client_credentials"', "application/json"),
        (b'{"grant_type": 1}', "application/json"),
        (b'["grant_type", "client_credentials"]', "application/json"),
        (b"grant_type=client_credentials&client_id=\xff", form),
    ]:
        r = anonymous.post(TOKEN, content=content, headers={**auth, "Content-Type": ctype})
        refused(r, 400, "invalid_request")


def test_wrong_secret_unknown_client_and_no_client_auth_are_invalid_client(
    admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, secret = new_app(admin, "guarded", ["executions:read"])
    wrong = refused(token_by_basic(anonymous, cid, secret + "x"), 401, "invalid_client")
    unknown = refused(token_by_basic(anonymous, "rpc_nobody", secret), 401, "invalid_client")
    assert wrong["error_description"] == unknown["error_description"]  # no oracle
    in_body = {"grant_type": "client_credentials", "client_id": "rpc_nobody", "client_secret": "x"}
    refused(anonymous.post(TOKEN, data=in_body), 401, "invalid_client")
    refused(anonymous.post(TOKEN, data={"grant_type": "client_credentials"}), 401, "invalid_client")
    r = anonymous.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic !!"}
    )
    refused(r, 401, "invalid_client")
    for answer in (wrong, unknown):
        assert secret not in answer["error_description"]


def test_a_revoked_token_stops_working_and_revocation_is_no_oracle(
    server: Server, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, secret = new_app(admin, "revoking", ["executions:read"])
    other_cid, other_secret = new_app(admin, "revoking-other", ["executions:read"])
    access = granted(token_by_basic(anonymous, cid, secret))["access_token"]
    with server.client(token=access) as app:
        assert app.get("/api/v1/executions").status_code == 200  # now cached
    # Another client cannot revoke it, and learns nothing: 200 all the same.
    r = anonymous.post(REVOKE, data={"token": access}, headers=basic(other_cid, other_secret))
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    with server.client(token=access) as app:
        assert app.get("/api/v1/executions").status_code == 200
    refused(
        anonymous.post(REVOKE, data={"token": access}, headers=basic(cid, "wrong")),
        401,
        "invalid_client",
    )
    refused(anonymous.post(REVOKE, data={}, headers=basic(cid, secret)), 400, "invalid_request")
    r = anonymous.post(REVOKE, json={"token": access, "client_id": cid, "client_secret": secret})
    assert r.status_code == 200
    with server.client(token=access) as app:
        assert app.get("/api/v1/executions").status_code == 401
    r = anonymous.post(REVOKE, data={"token": "rpa_unknown"}, headers=basic(cid, secret))
    assert r.status_code == 200  # RFC 7009 §2.2: an unknown token is no error


def test_rotating_the_app_secret_revokes_its_access_tokens(
    server: Server, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, old_secret = new_app(admin, "rotating", ["executions:read"])
    access = granted(token_by_basic(anonymous, cid, old_secret))["access_token"]
    with server.client(token=access) as app:
        assert app.get("/api/v1/executions").status_code == 200  # now cached
    r = admin.post("/api/v1/apps/rotating/rotate")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert r.json()["clientId"] == cid
    new_secret = r.json()["clientSecret"]
    assert new_secret != old_secret
    with server.client(token=access) as app:
        assert app.get("/api/v1/executions").status_code == 401
    refused(token_by_basic(anonymous, cid, old_secret), 401, "invalid_client")
    granted(token_by_basic(anonymous, cid, new_secret))


def test_deleting_the_app_revokes_its_access_tokens(
    server: Server, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, secret = new_app(admin, "deleting", ["executions:read"])
    access = granted(token_by_basic(anonymous, cid, secret))["access_token"]
    with server.client(token=access) as app:
        assert app.get("/api/v1/executions").status_code == 200
    assert admin.delete("/api/v1/apps/deleting").status_code == 204
    with server.client(token=access) as app:
        assert app.get("/api/v1/executions").status_code == 401
    refused(token_by_basic(anonymous, cid, secret), 401, "invalid_client")
    r = admin.delete("/api/v1/apps/deleting")
    assert r.status_code == 404 and r.json()["code"] == "app_not_found"
    again, _ = new_app(admin, "deleting", ["executions:read"])  # the name is free again
    assert again != cid


def test_an_environment_limited_apps_token_cannot_start_elsewhere(
    server: Server, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, secret = new_app(admin, "sandboxed", ["executions:start", "executions:read"], ["sandbox"])
    access = granted(token_by_basic(anonymous, cid, secret))["access_token"]
    with server.client(token=access) as app:
        r = app.post(START, json={"environment": "production"})
        assert r.status_code == 403 and "production" in r.json()["detail"]


def test_apps_are_validated_admin_only_and_listed_without_secrets(
    server: Server, admin: httpx.Client
) -> None:
    _, secret = new_app(admin, "listed", ["executions:read"], ["production"])
    r = admin.post("/api/v1/apps", json={"name": "listed", "scopes": ["executions:read"]})
    assert r.status_code == 409
    r = admin.post("/api/v1/apps", json={"name": "bad", "scopes": ["everything"]})
    assert r.status_code == 422 and r.json()["errors"][0]["name"] == "scopes"
    r = admin.post("/api/v1/apps", json={"name": "rt", "scopes": ["runtime"]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "runtime_needs_one_environment"
    r = admin.post(
        "/api/v1/apps", json={"name": "rt", "scopes": ["runtime"], "environments": ["moon"]}
    )
    assert r.status_code == 404 and r.json()["code"] == "environment_not_found"
    r = admin.post("/api/v1/apps", json={"name": "a/b", "scopes": ["executions:read"]})
    assert r.status_code == 422 and r.json()["errors"][0]["name"] == "name"
    listing = admin.get("/api/v1/apps")
    assert listing.status_code == 200 and secret not in listing.text
    items = {a["name"]: a for a in listing.json()["items"]}
    assert all("clientSecret" not in a for a in items.values())
    assert items["listed"]["environments"] == ["production"]
    assert items["listed"]["scopes"] == ["executions:read"]
    reader = admin.post(
        "/api/v1/tokens", json={"name": "app-reader", "scopes": ["executions:read"]}
    )
    with server.client(token=reader.json()["token"]) as c:
        assert c.get("/api/v1/apps").status_code == 403
        assert c.post("/api/v1/apps", json={"name": "x", "scopes": ["admin"]}).status_code == 403


def test_no_client_secret_or_access_token_reaches_the_server_log(
    server: Server, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    cid, secret = new_app(admin, "quiet", ["executions:read"])
    access = granted(token_by_basic(anonymous, cid, secret))["access_token"]
    token_by_basic(anonymous, cid, secret + "x")
    anonymous.post(REVOKE, data={"token": access}, headers=basic(cid, secret))
    log = server.log()
    assert secret not in log and access not in log
