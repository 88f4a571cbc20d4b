"""A real server on PostgreSQL: migrations at start, the seed flow, a real execution."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.support import ServerFactory, postgres_available, postgres_url, wait_terminal

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    reason = postgres_available()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
        pytest.skip(f"PostgreSQL not reachable: {reason}")
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_url()}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_server_on_postgres_runs_the_seed_flow(
    start_server: ServerFactory, pg_schema_url: str
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
        assert "greeting Pg" in c.get(f"/api/v1/executions/{done['id']}/logs").text
    srv.stop()
    srv.start()  # migrations are idempotent; the data is still there
    with srv.client() as c:
        again = c.get("/api/v1/processes/hello/executions/pg-1").json()
        assert again["status"] == "succeeded"
