"""GET /api/v1/reports end to end: real executions on a real server, read back as a report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import Server, ServerFactory, deploy, make_process, wait_terminal

STATUSES = {"queued", "running", "succeeded", "failed", "timed_out", "cancelled"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server where `flaky` ran three times (two successes, one failure) in sandbox."""
    factory = ServerFactory(tmp_path_factory)
    srv = factory.start("--slots", "2", "--no-demo")
    root = tmp_path_factory.mktemp("processes")
    with srv.client() as c:
        deploy(
            c,
            make_process(
                root,
                "flaky",
                manifest="""
                entrypoint = "main:main"
                [parameters.fail]
                type = "boolean"
                default = false
                """,
                code="""
                def main(fail):
                    if fail:
                        raise RuntimeError("asked to fail")
                    return {}
                """,
            ),
            environment="sandbox",
        )
        for fail in (False, False, True):
            started = c.post(
                "/api/v1/processes/flaky/executions", json={"inputArguments": {"fail": fail}}
            )
            assert started.status_code == 201, started.text
            wait_terminal(c, started.json()["id"])
    try:
        yield srv
    finally:
        factory.stop_all()


def _token(admin: httpx.Client, name: str, scopes: list[str], **extra: Any) -> str:
    r = admin.post("/api/v1/tokens", json={"name": name, "scopes": scopes, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_the_report_of_the_last_24_hours_counts_what_ran(server: Server) -> None:
    with server.client() as admin:
        r = admin.get("/api/v1/reports", params={"period": "24h"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert set(doc) == {"period", "since", "until", "bucketSeconds", "rows", "series"}
    assert (doc["period"], doc["bucketSeconds"]) == ("24h", 3600)
    assert _ts(doc["until"]) - _ts(doc["since"]) == timedelta(hours=24)
    (row,) = doc["rows"]
    assert set(row) == {
        "process",
        "environment",
        "counts",
        "total",
        "successRate",
        "p50Ms",
        "p95Ms",
    }
    assert (row["process"], row["environment"], row["total"]) == ("flaky", "sandbox", 3)
    assert set(row["counts"]) == STATUSES
    assert (row["counts"]["succeeded"], row["counts"]["failed"]) == (2, 1)
    assert row["successRate"] == pytest.approx(2 / 3)
    assert isinstance(row["p50Ms"], int) and 0 <= row["p50Ms"] <= row["p95Ms"]
    series = doc["series"]
    assert len(series) == 24
    starts = [_ts(p["start"]) for p in series]
    assert starts == [_ts(doc["since"]) + timedelta(hours=i) for i in range(24)]
    assert sum(sum(p["counts"].values()) for p in series) == 3


def test_a_report_narrows_by_process_and_environment(server: Server) -> None:
    with server.client() as admin:
        flaky = admin.get("/api/v1/reports", params={"period": "7d", "process": "flaky"}).json()
        production = admin.get(
            "/api/v1/reports", params={"period": "30d", "environment": "production"}
        ).json()
        blank = admin.get("/api/v1/reports?period=24h&process=&environment=").json()
    assert [r["total"] for r in flaky["rows"]] == [3] and len(flaky["series"]) == 28
    assert production["rows"] == [] and len(production["series"]) == 30
    assert [r["process"] for r in blank["rows"]] == ["flaky"]  # empty values: no filter


def test_a_bad_period_is_a_problem_naming_period(server: Server) -> None:
    with server.client() as admin:
        r = admin.get("/api/v1/reports", params={"period": "1y"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_request"
    assert [(e["name"], e["code"]) for e in body["errors"]] == [("period", "invalid_period")]


def test_a_report_shows_what_the_token_may_read_and_no_more(server: Server) -> None:
    with server.client() as admin:
        production_only = _token(
            admin, "report-production", ["executions:read"], environments=["production"]
        )
        starter = _token(admin, "report-starter", ["executions:start"])
    with server.client(token=production_only) as c:
        r = c.get("/api/v1/reports")
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == []
        assert sum(sum(p["counts"].values()) for p in r.json()["series"]) == 0
    with server.client(token=starter) as c:
        r = c.get("/api/v1/reports")
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
