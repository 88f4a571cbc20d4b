"""The console's pages with 100,000 executions stored: the whole request, as a browser
makes it, beside the service call the page makes.

    python bench/console_pages.py [--rows 100000] [--runs 30]

Fills a fresh SQLite database with `--rows` executions (the same data as
bench/executions_list.py), starts the server's node on it (no runtime, no demo),
signs in as `admin` through the service, then times each page through the whole
ASGI stack in-process (authentication by the session cookie, the console's
route, its service calls, the Jinja2 rendering, the security headers), and the
bare `service.executions.list_executions` call of the same list beside it. Prints
p50 / p95 in ms per case and the ratio of page to service call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from executions_list import seed

from runplane.api.app import create_app
from runplane.domain.states import Status
from runplane.service import executions as svc
from runplane.service import users
from runplane.settings import Settings

PASSWORD = "bench-admin-password"


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def main(rows: int, runs: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="runplane-bench-console-"))
    settings = Settings(data_dir=data, slots=0, demo=False, admin_password=PASSWORD)
    app = create_app(settings)
    await app.node.start()
    app.api.state.ctx = app.node.ctx
    ctx = app.node.ctx
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        t0 = time.perf_counter()
        seed(ctx.db, rows, now)
        print(f"{rows:,} executions inserted in {time.perf_counter() - t0:.1f} s (SQLite)")
        signed_in = await users.sign_in(ctx, "admin", PASSWORD, "127.0.0.1")
        who = await users.session_principal(ctx, signed_in.token)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://console",
            cookies={"runplane_session": signed_in.token},
        ) as browser:
            first = await browser.get("/")
            assert first.status_code == 200, first.text[:300]
            older = first.text.split('href="/?', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            cursor = parse_qs(urlparse("/?" + older).query)["cursor"][0]
            cases: list[tuple[str, str, dict[str, Any]]] = [
                ("executions, first page", "/", {}),
                ("executions, process (1 %)", "/?process=audit", {"process": "audit"}),
                ("executions, status failed", "/?status=failed", {"statuses": [Status.FAILED]}),
                (
                    "executions, environment (2 %)",
                    "/?environment=staging",
                    {"environment": "staging"},
                ),
                ("executions, second page", f"/?cursor={cursor}", {"cursor": cursor}),
                ("reports, 30 days", "/reports?period=30d", {}),
                ("processes", "/processes", {}),
            ]
            print(f"  {'page':34s} {'page p50':>9s} {'p95':>7s} {'service p50':>12s} {'ratio':>6s}")
            for name, path, kwargs in cases:
                page_ms: list[float] = []
                call_ms: list[float] = []
                for i in range(runs + 3):
                    t = time.perf_counter()
                    r = await browser.get(path)
                    page = (time.perf_counter() - t) * 1000
                    assert r.status_code == 200, (path, r.status_code)
                    call = 0.0
                    if path.startswith("/?") or path == "/":
                        t = time.perf_counter()
                        await svc.list_executions(ctx, who, limit=50, **kwargs)
                        call = (time.perf_counter() - t) * 1000
                    if i >= 3:  # warm-up
                        page_ms.append(page)
                        call_ms.append(call)
                p50, p95 = _ms(page_ms)
                c50, _ = _ms(call_ms)
                ratio = f"{p50 / c50:5.1f}x" if c50 else "     -"
                shown = f"{c50:12.1f}" if c50 else f"{'-':>12s}"
                print(f"  {name:34s} {p50:9.1f} {p95:7.1f} {shown} {ratio}")
    finally:
        await app.node.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.runs))
