"""API replicas on one PostgreSQL: what one commits wakes and refreshes the others at once
(LISTEN/NOTIFY), a dropped listener reconnects, and without notifications the polling
fallback still delivers within its second."""

from __future__ import annotations

import concurrent.futures
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.conftest import new_pg_schema, schema_url
from tests.support import Server, ServerFactory, deploy, make_process, postgres_url, wait_until

pytestmark = pytest.mark.postgres

POLL_FALLBACK_SECONDS = 1.0  # without NOTIFY, waiters and claimers re-read at least this often
# Pause so a long poll started on another thread has reached its wait before the event
# it waits for: a measurement set-up, not a wait for a condition.
SETTLE_SECONDS = 0.3
ROUNDS = 5
NOOP_MANIFEST = 'entrypoint = "main:main"'
NOOP = "def main():\n    return {}\n"


def start_replicas(
    factory: ServerFactory, url: str, count: int, env: dict[str, str | None] | None = None
) -> list[Server]:
    """`count` API-only replicas of one installation, started together."""
    shared: dict[str, str | None] = {"RUNPLANE_SECRET_KEY": Fernet.generate_key().decode()}
    shared.update(env or {})
    args = ("--slots", "0", "--database-url", url)
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        started = [pool.submit(factory.start, *args, env=shared) for _ in range(count)]
        return [f.result() for f in started]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, str]]:
    """Two replicas (notifications on) of one installation and its schema, shared by the
    tests that need no setting of their own; each names its own processes and tokens."""
    with new_pg_schema() as schema:
        factory = ServerFactory(tmp_path_factory)
        try:
            a, b = start_replicas(factory, schema_url(schema), 2)
            yield a, b, schema
        finally:
            factory.stop_all()


class Runtime:
    """The runtime protocol spoken by hand: registered through one replica."""

    def __init__(self, srv: Server, admin: httpx.Client) -> None:
        r = admin.post(
            "/api/v1/tokens",
            json={"name": "rt", "scopes": ["runtime"], "environments": ["production"]},
        )
        assert r.status_code == 201, r.text
        self.token = str(r.json()["token"])
        self.srv = srv
        with srv.client(self.token) as c:
            r = c.post(
                "/api/v1/runtimes", json={"name": "edge", "environment": "production", "slots": 1}
            )
            assert r.status_code == 201, r.text
            self.id = str(r.json()["id"])

    def claim(self, wait: float = 10) -> dict[str, Any]:
        with self.srv.client(self.token) as c:
            r = c.post(f"/api/v1/runtimes/{self.id}/claims", params={"wait": wait})
            assert r.status_code == 200, r.text
            return dict(r.json())

    def report(self, via: Server, claim: dict[str, Any]) -> None:
        with via.client(self.token) as c:
            r = c.post(
                f"/api/v1/leases/{claim['executionId']}/report",
                json={"leaseToken": claim["leaseToken"], "status": "succeeded", "result": {}},
            )
            assert r.status_code == 200, r.text


def timed(fn: Callable[[], Any]) -> Callable[[], tuple[Any, float]]:
    def run() -> tuple[Any, float]:
        value = fn()
        return value, time.monotonic()

    return run


def wake_latencies(a: Server, b: Server, rt: Runtime, rounds: int) -> tuple[list[float], ...]:
    """Per round: a claim long poll on A, a trigger accepted by B (accept → claimed); then
    a `?wait` long poll on A, the report through B (finished → answered)."""
    claims, waits = [], []
    with (
        b.client() as admin_b,
        a.client() as admin_a,
        concurrent.futures.ThreadPoolExecutor(1) as bg,
    ):
        for _ in range(rounds):
            claiming = bg.submit(timed(rt.claim))
            time.sleep(SETTLE_SECONDS)
            r = admin_b.post("/api/v1/processes/noop/executions", json={})
            accepted = time.monotonic()
            assert r.status_code == 201, r.text
            claim, claimed = claiming.result(timeout=30)
            assert claim["executionId"] == r.json()["id"]
            claims.append(claimed - accepted)

            path = f"/api/v1/executions/{claim['executionId']}"
            waiting = bg.submit(
                timed(lambda path=path: admin_a.get(path, params={"wait": 10}).json())
            )
            time.sleep(SETTLE_SECONDS)
            rt.report(b, claim)
            finished = time.monotonic()
            doc, answered = waiting.result(timeout=30)
            assert doc["status"] == "succeeded", doc
            waits.append(answered - finished)
    return claims, waits


def ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"


def assert_prompt(values: list[float]) -> None:
    # Polling alone answers uniformly within the 1 s fallback; NOTIFY within milliseconds.
    assert statistics.median(values) < 0.25, values
    assert max(values) < 0.9 * POLL_FALLBACK_SECONDS, values


def listener_pids(schema: str) -> set[int]:
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (f"runplane-listener runplane_{schema}",),
        ).fetchall()
    return {int(r[0]) for r in rows}


def test_long_polls_on_one_replica_wake_when_another_accepts_or_finishes(
    pair: tuple[Server, Server, str], tmp_path: Path
) -> None:
    a, b, schema = pair
    with a.client() as admin:
        deploy(admin, make_process(tmp_path, "noop", manifest=NOOP_MANIFEST, code=NOOP))
        rt = Runtime(a, admin)
    claims, waits = wake_latencies(a, b, rt, ROUNDS)
    print(f"\nwith NOTIFY: accept on B → claimed on A {ms(claims)}")
    print(f"with NOTIFY: finished via B → ?wait on A answered {ms(waits)}")
    assert_prompt(claims)
    assert_prompt(waits)

    # The listeners' connections die (a PostgreSQL restart, a proxy timeout): they come
    # back on their own and wake-ups resume.
    before = wait_until(lambda: len(pids := listener_pids(schema)) == 2 and pids)
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        for pid in before:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: len(after := listener_pids(schema)) == 2 and not after & before)
    claims, waits = wake_latencies(a, b, rt, 2)
    assert_prompt(claims)
    assert_prompt(waits)
    assert "notification listener lost its connection" in a.log()


def test_a_wait_on_an_api_replica_returns_as_soon_as_another_node_runs_the_execution(
    start_server: ServerFactory, pg_schema_url: str, tmp_path: Path
) -> None:
    [a] = start_replicas(start_server, pg_schema_url, 1)
    key = a.env["RUNPLANE_SECRET_KEY"]
    runner = start_server.start(
        "--slots", "1", "--database-url", pg_schema_url, env={"RUNPLANE_SECRET_KEY": key}
    )
    assert runner.port != a.port
    lags = []
    with a.client() as on_a:
        deploy(on_a, make_process(tmp_path, "noop", manifest=NOOP_MANIFEST, code=NOOP))
        for _ in range(ROUNDS):
            r = on_a.post("/api/v1/processes/noop/executions", params={"wait": 20}, json={})
            answered = time.time()
            assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
            # finishedAt is PostgreSQL's clock, on this machine
            finished = datetime.fromisoformat(r.json()["finishedAt"]).timestamp()
            lags.append(answered - finished)
    print(f"\nwith NOTIFY: run on the runtime node → ?wait on A answered {ms(lags)}")
    assert_prompt(lags)


def test_a_deploy_through_one_replica_reaches_triggers_on_another_at_once(
    pair: tuple[Server, Server, str], tmp_path: Path
) -> None:
    a, b, _ = pair
    with a.client() as on_a, b.client() as on_b:
        for i in range(3):
            name = f"noop{i}"
            dep = deploy(on_a, make_process(tmp_path, name, manifest=NOOP_MANIFEST, code=NOOP))
            url = f"/api/v1/processes/{name}/executions"
            warmed = time.monotonic()  # A caches the target for 1 s from here
            assert on_a.post(url, json={}).status_code == 201
            r = on_b.put(
                f"/api/v1/processes/{name}/deployments/production",
                json={"version": dep["version"], "invokable": False},
            )
            assert r.status_code == 200, r.text
            refused = wait_until(
                lambda url=url: on_a.post(url, json={}).status_code == 409 and time.monotonic(),
                timeout=2,
                interval=0.01,
            )
            # Before A's own cache entry could have expired: B's notification dropped it.
            assert refused - warmed < 0.9, refused - warmed


def test_a_token_revoked_through_one_replica_is_refused_by_another_at_once(
    pair: tuple[Server, Server, str],
) -> None:
    a, b, _ = pair
    with a.client() as on_a, b.client() as on_b:
        r = on_a.post("/api/v1/tokens", json={"name": "reader", "scopes": ["executions:read"]})
        assert r.status_code == 201, r.text
        with a.client(r.json()["token"]) as reader:
            assert reader.get("/api/v1/executions").status_code == 200
            used = time.monotonic()  # A caches the principal for 5 s from here
            assert on_b.delete("/api/v1/tokens/reader").status_code == 204
            refused = wait_until(
                lambda: reader.get("/api/v1/executions").status_code == 401 and time.monotonic(),
                timeout=6,
                interval=0.01,
            )
            assert refused - used < 1.0, refused - used


def test_without_notifications_replicas_still_wake_by_polling(
    start_server: ServerFactory, pg_schema_url: str, tmp_path: Path
) -> None:
    a, b = start_replicas(start_server, pg_schema_url, 2, env={"RUNPLANE_NOTIFY": "false"})
    with a.client() as admin:
        deploy(admin, make_process(tmp_path, "noop", manifest=NOOP_MANIFEST, code=NOOP))
        rt = Runtime(a, admin)
    claims, waits = wake_latencies(a, b, rt, ROUNDS)
    print(f"\nwithout NOTIFY: accept on B → claimed on A {ms(claims)}")
    print(f"without NOTIFY: finished via B → ?wait on A answered {ms(waits)}")
    # A lost (here: never sent) notification only delays, by at most the fallback.
    assert max(claims + waits) < POLL_FALLBACK_SECONDS + 0.5, (claims, waits)
