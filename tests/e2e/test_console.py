"""The web console over HTTP: sign-in, sessions, CSRF, roles, escaping, secrets shown once,
the start form's problems, security headers. (tests/browser drives it in Chromium.)"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import (
    Server,
    ServerFactory,
    deploy,
    http_client,
    make_process,
    sign_in,
    wait_terminal,
)

HOSTILE = "<script>document.title='pwned'</script>"
HOSTILE_IMG = '<img src=x onerror="document.title=1">'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "2")
    folder = make_process(
        tmp_path_factory.mktemp("p"),
        "typed",
        manifest=f"""
            entrypoint = "main:main"
            [parameters.count]
            type = "integer"
            required = true
            [parameters.label]
            type = "string"
            default = "{HOSTILE.replace('"', "'")}"
            [parameters.flag]
            type = "boolean"
            default = false
            [parameters.extra]
            type = "object"
            default = {{}}
            [parameters.token]
            type = "secret"
        """,
        code=f"""
            def main(count, label, flag, extra, token=None):
                print({HOSTILE!r})
                return {{"count": count, "label": label, "flag": flag, "extra": extra}}
        """,
    )
    with srv.client() as admin:
        deploy(admin, folder)
        for name, role in (("olga", "operator"), ("victor", "viewer")):
            r = admin.post(
                "/api/v1/users",
                json={"name": name, "role": role, "password": f"{name}-password-123"},
            )
            assert r.status_code == 201, r.text
    try:
        yield srv
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def admin_session(server: Server) -> Iterator[httpx.Client]:
    with contextlib.closing(sign_in(server)) as c:
        yield c


def _executions(server: Server) -> list[dict[str, Any]]:
    with server.client() as c:
        items: list[dict[str, Any]] = c.get("/api/v1/executions", params={"limit": 500}).json()[
            "items"
        ]
        return items


def test_pages_send_a_browser_without_a_session_to_sign_in(server: Server) -> None:
    with http_client(base_url=server.base) as anonymous:
        r = anonymous.get("/processes/typed?x=1")
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/processes/typed%3Fx%3D1"
        htmx = anonymous.get("/", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/login")
        page = anonymous.get("/login")
        assert page.status_code == 200 and "Sign in" in page.text


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(server: Server) -> None:
    with http_client(base_url=server.base) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
        assert token
        answers = [
            browser.post(
                "/login", data={"csrf_token": token.group(1), "name": name, "password": "nope"}
            )
            for name in ("admin", "nobody")
        ]
    for r in answers:
        assert r.status_code == 401
        assert "Wrong user name or password." in r.text
        assert "runplane_session" not in r.headers.get("set-cookie", "")


def test_sign_in_without_the_forms_token_is_refused(server: Server) -> None:
    with http_client(base_url=server.base) as browser:
        r = browser.post("/login", data={"name": "admin", "password": "x", "csrf_token": "forged"})
        assert r.status_code == 403 and "expired" in r.text


def test_sign_out_ends_the_session_on_the_server(server: Server) -> None:
    client = sign_in(server)
    token = client.cookies["runplane_session"]
    assert client.get("/").status_code == 200
    out = client.post("/logout")
    assert out.status_code == 204 and out.headers["hx-redirect"] == "/login"
    client.close()
    with http_client(base_url=server.base, cookies={"runplane_session": token}) as replay:
        assert replay.get("/").status_code == 303


def test_signing_in_sets_a_safe_cookie(server: Server) -> None:
    with http_client(base_url=server.base) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
        assert token
        r = browser.post(
            "/login",
            data={
                "csrf_token": token.group(1),
                "name": "admin",
                "password": "test-admin-password-0123",
                "next": "//evil.example/",
            },
        )
    assert r.status_code == 303 and r.headers["location"] == "/"  # never another site
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie


def test_state_changing_requests_need_the_csrf_token(
    server: Server, admin_session: httpx.Client
) -> None:
    headers = {"X-CSRF-Token": "forged"}
    console = admin_session.post("/credentials/process-secrets/typed", headers=headers)
    assert console.status_code == 403 and "reload the page" in console.text
    api = admin_session.post(
        "/api/v1/processes/typed/executions", json={"inputArguments": {"count": 1}}, headers=headers
    )
    assert api.status_code == 403 and api.json()["code"] == "csrf_failed"
    before = len(_executions(server))
    assert len(_executions(server)) == before
    reads = admin_session.get("/api/v1/executions", headers=headers)  # reads need no token
    assert reads.status_code == 200


def test_every_console_answer_carries_the_security_headers(
    server: Server, admin_session: httpx.Client
) -> None:
    for path in ("/", "/processes", "/processes/typed", "/runtimes", "/reports", "/nothing-here"):
        r = admin_session.get(path) if path != "/nothing-here" else admin_session.get("/login")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"


def test_a_bad_start_form_names_each_problem_beside_its_field_and_stores_nothing(
    server: Server, admin_session: httpx.Client
) -> None:
    before = len(_executions(server))
    r = admin_session.post(
        "/processes/typed/start",
        data={"input.count": "12abc", "input.extra": "[1, 2]", "environment": "production"},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 422
    count = re.search(r'id="param-count-problem"[^>]*>([^<]+)<', r.text)
    extra = re.search(r'id="param-extra-problem"[^>]*>([^<]+)<', r.text)
    assert count and "12abc" in count.group(1)
    assert extra and extra.group(1).strip()
    assert 'value="12abc"' in r.text  # what was typed comes back
    assert len(_executions(server)) == before


def test_the_start_form_starts_and_opens_the_execution(
    server: Server, admin_session: httpx.Client
) -> None:
    r = admin_session.post(
        "/processes/typed/start",
        data={
            "input.count": "3",
            "input.flag": ["false", "true"],
            "input.extra": '{"a": 1}',
            "input.token": "s3cret-value",
            "environment": "production",
            "executionId": "form-1",
        },
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 204, r.text
    location = r.headers["hx-location"]
    execution_id = location.rsplit("/", 1)[1]
    with server.client() as c:
        done = wait_terminal(c, execution_id)
    assert done["status"] == "succeeded"
    assert done["result"]["count"] == 3 and done["result"]["flag"] is True
    assert done["inputArguments"]["token"] == "***"
    page = admin_session.get(location)
    assert "s3cret-value" not in page.text


def test_user_supplied_strings_are_escaped_everywhere(
    server: Server, admin_session: httpx.Client
) -> None:
    r = admin_session.post(
        "/processes/typed/start",
        data={"input.count": "1", "input.label": HOSTILE_IMG, "environment": "production"},
        headers={"HX-Request": "true"},
    )
    execution_id = r.headers["hx-location"].rsplit("/", 1)[1]
    with server.client() as c:
        wait_terminal(c, execution_id)
    for path in (f"/executions/{execution_id}", "/processes/typed", "/processes/typed/start"):
        html = admin_session.get(path).text
        assert HOSTILE not in html and HOSTILE_IMG not in html, path
    assert "&lt;img src=x onerror=" in admin_session.get(f"/executions/{execution_id}").text


def test_an_operator_cannot_reach_credentials_and_a_viewer_cannot_start(server: Server) -> None:
    with contextlib.closing(sign_in(server, "olga", "olga-password-123")) as operator:
        assert operator.get("/credentials").status_code == 403
        assert "Credentials" not in operator.get("/").text.split("<main", 1)[0]
        assert 'hx-post="/processes/typed/start"' in operator.get("/processes/typed").text
    with contextlib.closing(sign_in(server, "victor", "victor-password-123")) as viewer:
        page = viewer.get("/processes/typed").text
        i = page.find(">Start</button>")
        assert i < 0, page[i - 300 : i + 20]
        assert "not start it" in page
        r = viewer.post(
            "/processes/typed/start",
            data={"input.count": "1", "environment": "production"},
            headers={"HX-Request": "true"},
        )
        assert r.status_code == 403


def test_a_process_secret_is_shown_once_then_masked_and_works(
    server: Server, admin_session: httpx.Client
) -> None:
    r = admin_session.post("/credentials/process-secrets/typed", headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    found = re.search(r'id="new-secret">([^<]+)<', r.text)
    assert found
    secret = found.group(1)
    again = admin_session.get("/credentials")
    assert secret not in again.text and "••••" in again.text
    with http_client(base_url=server.base) as caller:
        started = caller.post(
            "/api/v1/processes/typed/executions",
            json={"inputArguments": {"count": 2}},
            headers={"Runplane-Process-Secret": secret},
        )
    assert started.status_code == 201, started.text
    admin_session.post("/credentials/process-secrets/typed/delete")


def test_assets_are_served_from_the_package_and_nothing_else(server: Server) -> None:
    with http_client(base_url=server.base) as anonymous:
        js = anonymous.get("/static/console.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        vendored = anonymous.get("/static/vendor/htmx-2.0.11.min.js")
        assert vendored.status_code == 200 and "immutable" in vendored.headers["cache-control"]
        for path in ("/static/%2e%2e/surface.py", "/static/..%2fsurface.py", "/static/vendor"):
            assert anonymous.get(path).status_code == 404, path


def test_failed_sign_ins_go_through_the_failure_limit(start_server: ServerFactory) -> None:
    srv = start_server.start("--slots", "0", "--no-demo", env={"RUNPLANE_AUTH_FAILURE_LIMIT": "3"})
    with http_client(base_url=srv.base) as browser:
        token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
        assert token
        form = {"csrf_token": token.group(1), "name": "admin", "password": "wrong password"}
        answers = [browser.post("/login", data=form).status_code for _ in range(4)]
        assert answers == [401, 401, 401, 429]
        form["password"] = "test-admin-password-0123"
        refused = browser.post("/login", data=form)  # blocked even with the right password
        assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text


def test_an_admin_toggles_invokable_and_deploys_keeping_the_run_configuration(
    server: Server, admin_session: httpx.Client
) -> None:
    with server.client() as api:
        put = api.put(
            "/api/v1/processes/typed/deployments/sandbox",
            json={"version": 1, "inputArguments": {"count": 7, "token": "kept-secret"}},
        )
        assert put.status_code in (200, 201), put.text
        path = "/processes/typed/deployments/sandbox"
        off = admin_session.post(path, data={"version": "1"}, headers={"HX-Request": "true"})
        assert off.status_code == 204 and off.headers["hx-location"] == "/processes/typed"
        listed = api.get(
            "/api/v1/deployments", params={"process": "typed", "environment": "sandbox"}
        )
        got = listed.json()["items"][0]
        assert got["invokable"] is False
        assert got["inputArguments"] == {"count": 7, "token": "***"}
        on = admin_session.post(path, data={"version": "1", "invokable": "true"})
        assert on.status_code == 303
        started = api.post(
            "/api/v1/processes/typed/executions", json={"environment": "sandbox"}
        ).json()
        done = wait_terminal(api, started["id"])
        assert done["status"] == "succeeded" and done["result"]["count"] == 7
        bad = admin_session.post(path, data={"version": "x", "concurrencyLimit": "0"})
        assert bad.status_code == 422 and "concurrencyLimit" in bad.text


def test_the_reports_page_shows_the_databases_figures(
    server: Server, admin_session: httpx.Client
) -> None:
    with server.client() as api:
        started = api.post(
            "/api/v1/processes/typed/executions",
            json={"inputArguments": {"count": 1}, "environment": "production"},
        ).json()
        wait_terminal(api, started["id"])
        expected = api.get("/api/v1/reports", params={"period": "7d", "process": "typed"}).json()
    page = admin_session.get("/reports", params={"period": "7d", "process": "typed"})
    assert page.status_code == 200
    row = next(r for r in expected["rows"] if r["environment"] == "production")
    cells = re.search(
        r"<td>typed</td><td>production</td><td>(\d+)</td>\s*<td>(\d+)</td>", page.text
    )
    assert cells and int(cells.group(1)) == row["total"]
    assert int(cells.group(2)) == row["counts"]["succeeded"]
    assert page.text.count('class="bar bar-succeeded"') >= 1
    bad = admin_session.get("/reports", params={"period": "1y"})
    assert bad.status_code == 422 and "period" in bad.text
