"""Canary: recognisable secrets go through a whole flow and appear nowhere they should not:
not in the server log, not in any response after the one that shows them once, and not in
a dump of the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.support import ServerFactory, deploy, make_process, wait_terminal

CANARY_INPUT = "canary-input-7f3a9c"
CANARY_DEFAULT = "canary-deploy-default-51d2"


def test_canaries_appear_nowhere(start_server: ServerFactory, tmp_path: Path) -> None:
    srv = start_server.start("--slots", "1")
    bodies: list[str] = []

    def keep(r: httpx.Response) -> httpx.Response:
        bodies.append(r.text)
        return r

    with srv.client() as admin:
        deploy(
            admin,
            make_process(
                tmp_path,
                "vault",
                manifest="""
                entrypoint = "main:main"
                [parameters.password]
                type = "secret"
                required = true
                [parameters.api_key]
                type = "secret"
                """,
                code="""
                def main(password, api_key=None):
                    print("using", password, "and", api_key, flush=True)
                    return {"echo": password, "lengths": [len(password), len(api_key or "")]}
                """,
            ),
            inputArguments={"api_key": CANARY_DEFAULT},
        )
        made = admin.post("/api/v1/tokens", json={"name": "canary", "scopes": ["admin"]})
        api_token = made.json()["token"]  # the one response that shows it
        secret = admin.post("/api/v1/processes/vault/secret").json()["secret"]
    with srv.client(token=api_token) as c:
        r = keep(
            c.post(
                "/api/v1/processes/vault/executions",
                params={"wait": 20},
                json={"inputArguments": {"password": CANARY_INPUT}},
            )
        )
        done = wait_terminal(c, r.json()["id"])
        bodies.append(str(done))
        assert done["status"] == "succeeded"
        assert done["result"]["lengths"] == [len(CANARY_INPUT), len(CANARY_DEFAULT)]
        keep(c.get(f"/api/v1/executions/{done['id']}/logs"))
        keep(c.get("/api/v1/executions", params={"process": "vault"}))
        keep(c.get("/api/v1/deployments", params={"process": "vault"}))
        keep(c.get("/api/v1/processes/vault"))
        keep(c.get("/api/v1/tokens"))
        keep(c.get("/api/v1/secrets"))
    with srv.client(token=None) as anon:
        keep(
            anon.post(
                "/api/v1/processes/vault/executions",
                params={"process-secret": secret},
                json={"inputArguments": {"password": CANARY_INPUT}},
            )
        )
        keep(anon.get("/api/v1/executions", headers={"Authorization": f"Bearer {api_token}0"}))
        # the vendor surfaces: a Robocorp work item payload, a Boomi property, MuleSoft
        robo = "/process-v1/workspaces/default/processes/vault"
        rc = {"Authorization": f"RC-WSKEY {api_token}"}
        run = keep(anon.post(f"{robo}/runs", json={"password": CANARY_INPUT}, headers=rc)).json()
        item = keep(
            anon.post(
                f"{robo}/work-items", json={"payload": {"password": CANARY_INPUT}}, headers=rc
            )
        ).json()
        keep(anon.get(f"{robo}/work-items/{item['id']}?includeData=true", headers=rc))
        keep(anon.get(f"{robo}/runs/{run['id']}/work-items?includeData=true", headers=rc))
        keep(
            anon.post(
                "/api/rest/v1/default/ExecutionRequest",
                json={
                    "atomId": "production",
                    "processId": "vault",
                    "DynamicProcessProperties": {
                        "DynamicProcessProperty": [{"name": "password", "value": CANARY_INPUT}]
                    },
                },
                auth=("BOOMI_TOKEN.ops@example.com", api_token),
            )
        )
        keep(
            anon.put(
                "/mulesoft/rpa/api/v2/processes/vault/executions",
                json={"executionId": "canary", "inputArguments": {"password": CANARY_INPUT}},
                headers={"Authorization": f"Bearer {api_token}"},
            )
        )
    with srv.client() as admin:
        for listed in admin.get("/api/v1/executions", params={"process": "vault"}).json()["items"]:
            assert wait_terminal(admin, listed["id"])["status"] == "succeeded"
    srv.stop()

    canaries = [CANARY_INPUT, CANARY_DEFAULT, api_token, secret]
    dump = "\n".join(sqlite3.connect(srv.data_dir / "runplane.db").iterdump())
    places = {"server log": srv.log(), "responses": "\n".join(bodies), "database": dump}
    for where, text in places.items():
        for canary in canaries:
            assert canary not in text, f"{canary[:12]}… found in the {where}"
    assert "***" in "\n".join(bodies)  # masked where it would have shown
