"""A real server on PostgreSQL: migrations at start, the seed flow, a real execution."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ServerFactory, deploy, make_process, wait_terminal

pytestmark = pytest.mark.postgres


def test_server_on_postgres_runs_the_seed_flow(
    start_server: ServerFactory, pg_schema_url: str, tmp_path: Path
) -> None:
    srv = start_server.start("--slots", "2", "--database-url", pg_schema_url)
    with srv.client() as c:
        url = "/api/v1/processes/hello/executions"
        body = {"executionId": "pg-1", "inputArguments": {"name": "Pg"}}
        first = c.put(url, json=body)
        assert first.status_code == 201, first.text
        assert c.put(url, json=body).status_code == 204
        assert c.put(url, json={**body, "inputArguments": {"name": "x"}}).status_code == 409
        done = wait_terminal(c, first.json()["id"])
        assert done["status"] == "succeeded" and done["result"] == {"greeting": "Hello, Pg!"}
        assert "Hello, Pg!" in c.get(f"/api/v1/executions/{done['id']}/logs").text
        # PostgreSQL text cannot hold NUL: in a log it is replaced, in an id refused.
        nul = c.put(
            url,
            content=b'{"executionId": "n\\u0000x", "inputArguments": {}}',
            headers={"Content-Type": "application/json"},
        )
        assert nul.status_code == 422 and "SQL" not in nul.text
        assert c.get("/api/v1/executions/a%00b").status_code in (404, 422)
        deploy(
            c,
            make_process(
                tmp_path,
                "nul",
                manifest='entrypoint = "main:main"',
                code="def main():\n    print('a\\x00b', flush=True)\n    return {}\n",
            ),
        )
        printed = wait_terminal(c, c.post("/api/v1/processes/nul/executions", json={}).json()["id"])
        assert printed["status"] == "succeeded"
        assert "a\ufffdb" in c.get(f"/api/v1/executions/{printed['id']}/logs").text
    srv.stop()
    srv.start()  # migrations are idempotent; the data is still there
    with srv.client() as c:
        again = c.get("/api/v1/processes/hello/executions/pg-1").json()
        assert again["status"] == "succeeded"
