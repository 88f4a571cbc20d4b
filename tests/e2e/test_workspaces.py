"""Workspaces are the tenant boundary: another workspace's objects do not exist (404)."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runplane.api.app import ROUTERS
from tests.support import Server, ServerFactory, sign_in, wait_terminal

# Routes that create an object of the caller's own workspace under a name it
# chooses: the same name existing in another workspace is not visible to them.
CREATES_IN_OWN_WORKSPACE = {
    ("POST", "/api/v1/processes/{process}/versions"),
    ("POST", "/processes/{process}/versions"),  # the console's upload
}
# Authenticated by its own one-time token, not by workspace (test_robocorp covers it);
# the console's assets, the same for everyone.
NOT_WORKSPACE_SCOPED = {
    ("POST", "/process-v1/uploads/{file_id}"),
    ("GET", "/process-v1/uploads/{file_id}"),  # a file link: its signed token (test_robots)
    ("GET", "/process-v1/uploads/artifacts/{artifact_id}"),  # an artifact link: the same
    ("GET", "/static/{path:path}"),
}
# Endless server-sent event streams: test_events shows another workspace's executions
# never appear in them.
ENDLESS = {("GET", "/api/v1/events")}
# Ends the console session the walk goes on with (it names no object).
SIGNS_OUT = {("POST", "/logout")}
SHARED_NAME = "only-in-default"
# A valid body where a route needs one, so only the object lookup can refuse it.
QUERIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/api/v1/leases/{execution_id}/artifacts"): {
        "leaseToken": 1,
        "attempt": 1,
        "name": "a.txt",
    },
}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/process-v1/workspaces/{workspace}/processes/{process}/runs-batch"): [{}],
    (
        "POST",
        "/process-v1/workspaces/{workspace}/processes/{process}/work-items/{item_id}/files/upload",
    ): {"fileName": "a.txt", "fileSize": 1},
    ("PUT", "/api/v1/processes/{process}/executions"): {
        "executionId": "x",
        "inputArguments": {},
    },
    ("PUT", "/mulesoft/rpa/api/v2/processes/{process}/executions"): {
        "executionId": "x",
        "inputArguments": {},
    },
    ("POST", "/api/v1/processes/{process}/deployments/{environment}/schedules"): {
        "name": "x",
        "cron": "0 8 * * *",
    },
    ("POST", "/api/v1/leases/{execution_id}/heartbeat"): {"leaseToken": 1},
    ("POST", "/api/v1/leases/{execution_id}/release"): {"leaseToken": 1},
    ("POST", "/api/v1/leases/{execution_id}/logs"): {"leaseToken": 1, "attempt": 1, "text": "x"},
    ("POST", "/api/v1/leases/{execution_id}/report"): {"leaseToken": 1, "status": "succeeded"},
    ("PUT", "/api/v1/users/{name}/password"): {"password": "a long enough password"},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "1")
    with srv.client() as admin:
        made = admin.post("/api/v1/workspaces", json={"name": "acme"})
        assert made.status_code == 201, made.text
        assert made.headers["cache-control"] == "no-store"
        execution = admin.post(
            "/api/v1/processes/hello/executions",
            json={},
            headers={"Idempotency-Key": SHARED_NAME},
        ).json()
        wait_terminal(admin, execution["id"])
        assert admin.post("/api/v1/processes/hello/secret").status_code == 201
        admin.post("/api/v1/tokens", json={"name": SHARED_NAME, "scopes": ["executions:read"]})
        user = admin.post("/api/v1/users", json={"name": SHARED_NAME, "role": "viewer"})
        assert user.status_code == 201, user.text
        if any(r.path == "/api/v1/apps" for router in ROUTERS for r in router.routes):
            admin.post("/api/v1/apps", json={"name": SHARED_NAME, "scopes": ["executions:read"]})
        item = admin.post(
            "/process-v1/workspaces/default/processes/hello/work-items", json={"payload": {}}
        ).json()
        runtime = admin.get("/api/v1/runtimes").json()["items"][0]
        schedule = admin.post(
            "/api/v1/processes/hello/deployments/production/schedules",
            json={"name": SHARED_NAME, "cron": "0 8 * * *"},
        )
        assert schedule.status_code == 201, schedule.text
    # Version ids reach runtimes only (in claims): read one from the database itself.
    with contextlib.closing(sqlite3.connect(srv.data_dir / "runplane.db")) as db:
        version_id = db.execute("SELECT id FROM process_versions LIMIT 1").fetchone()[0]
    try:
        yield {
            "server": srv,
            "acme": made.json()["adminToken"],
            "execution": execution,
            "work_item": item["id"],
            "runtime_id": runtime["id"],
            "version_id": version_id,
            "schedule_id": schedule.json()["id"],
        }
    finally:
        factory.stop_all()


def test_workspaces_are_created_by_the_installation_admin_only(world: dict[str, Any]) -> None:
    srv: Server = world["server"]
    with srv.client() as admin, srv.client(token=world["acme"]) as acme:
        assert admin.post("/api/v1/workspaces", json={"name": "acme"}).status_code == 409
        bad = admin.post("/api/v1/workspaces", json={"name": "Not Valid"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["name"] == "name"
        assert acme.post("/api/v1/workspaces", json={"name": "evil"}).status_code == 403
        names = {w["name"] for w in admin.get("/api/v1/workspaces").json()["items"]}
        assert {"default", "acme"} <= names
        assert [w["name"] for w in acme.get("/api/v1/workspaces").json()["items"]] == ["acme"]
        envs = {e["name"] for e in acme.get("/api/v1/environments").json()["items"]}
        assert envs == {"sandbox", "production"}
        assert acme.post("/api/v1/environments", json={"name": "staging"}).status_code == 201
        assert acme.post("/api/v1/environments", json={"name": "staging"}).status_code == 409
        default_envs = {e["name"] for e in admin.get("/api/v1/environments").json()["items"]}
        assert "staging" not in default_envs


def _routes() -> list[tuple[str, str]]:
    out = []
    for router in ROUTERS:
        for route in router.routes:
            for method in sorted(getattr(route, "methods", None) or []):
                if method != "HEAD":
                    out.append((method, route.path))  # type: ignore[attr-defined]
    return out


def _walk(client: httpx.Client, world: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(checked, leaks) of every route called by `client` (of workspace acme) with the ids
    of workspace default's objects."""
    execution = world["execution"]
    values = {
        "process": "hello",
        "execution_id": execution["id"],
        "version": "1",
        "environment": "production",
        "name": SHARED_NAME,
        # vendor paths name a workspace: acme's own, so that what is missing is the object
        "workspace": "acme",
        "run_id": execution["id"],
        "robot_run_id": f"{execution['id']}-1",
        "activity_run_id": f"{execution['id']}-1",
        "artifact_id": "a",
        "file_name": "log.html",
        "item_id": world["work_item"],
        "file_id": "f",
        "account_id": "default",  # Boomi's accountId: another workspace, by name
        "request_id": f"executionrecord-{execution['id']}",
        "runtime_id": world["runtime_id"],
        "version_id": world["version_id"],
        "schedule_id": world["schedule_id"],
        "action": "pause",
        "path": "console.css",
    }
    checked: list[str] = []
    leaks: list[str] = []
    for method, template in _routes():
        if (method, template) in ENDLESS | SIGNS_OUT:
            continue
        params = re.findall(r"\{([^}:]+)(?::[^}]*)?\}", template)
        path = re.sub(r"\{([^}:]+)(?::[^}]*)?\}", lambda m: str(values[m.group(1)]), template)
        if "execution_id" in params and "process" in params:
            path = path.replace(execution["id"], execution["executionId"])
        r = client.request(
            method,
            path,
            json=BODIES.get((method, template), {}),
            params=QUERIES.get((method, template)),
        )
        if (method, template) in CREATES_IN_OWN_WORKSPACE | NOT_WORKSPACE_SCOPED:
            continue
        if set(params) - {"workspace"}:
            checked.append(f"{method} {template}")
            if r.status_code != 404:
                leaks.append(f"{method} {template} -> {r.status_code} {r.text[:120]}")
        elif method == "GET":
            checked.append(f"{method} {template}")
            if r.status_code != 200 or execution["id"] in r.text or SHARED_NAME in r.text:
                leaks.append(f"{method} {template} -> {r.status_code} {r.text[:120]}")
    return checked, leaks


def test_every_route_hides_another_workspaces_objects(world: dict[str, Any]) -> None:
    srv: Server = world["server"]
    with srv.client(token=world["acme"]) as acme:
        checked, leaks = _walk(acme, world)
    assert not leaks, "\n".join(leaks)
    assert len(checked) >= 15, checked


def test_every_route_hides_another_workspaces_objects_from_a_console_session(
    world: dict[str, Any],
) -> None:
    srv: Server = world["server"]
    with srv.client(token=world["acme"]) as acme:
        made = acme.post(
            "/api/v1/users",
            json={"name": "acme-admin", "role": "admin", "password": "acme-admin-password"},
        )
        assert made.status_code == 201, made.text
    with contextlib.closing(sign_in(srv, "acme-admin", "acme-admin-password")) as session:
        checked, leaks = _walk(session, world)
    assert not leaks, "\n".join(leaks)
    assert len([c for c in checked if not c.split()[1].startswith("/api/")]) >= 10, checked


def test_another_workspaces_credentials_never_start_its_processes(
    world: dict[str, Any],
) -> None:
    srv: Server = world["server"]
    with srv.client(token=world["acme"]) as acme:
        r = acme.put(
            "/api/v1/processes/hello/executions",
            json={"executionId": SHARED_NAME, "inputArguments": {}},
        )
        assert r.status_code == 404 and r.json()["code"] == "process_not_found"
        listed = acme.get("/api/v1/executions", params={"limit": 500}).json()["items"]
        assert listed == []
