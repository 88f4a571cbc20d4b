"""The console in a real Chromium: one browser and one server per module, pages that
fail their test on any JavaScript error or Content Security Policy violation.

Chromium is the system's (tests/browser/chromium.py); without it (or without the
playwright package) these tests skip with the reason, except under CI=true, where
they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import runplane.examples
from tests.browser import chromium
from tests.support import ADMIN_PASSWORD, Server, ServerFactory, deploy, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

EXAMPLES = Path(runplane.examples.__file__).parent
USERS = {
    "admin": ADMIN_PASSWORD,
    "olga": "olga-operator-password",
    "victor": "victor-viewer-password",
}
ROLES = {"olga": "operator", "victor": "viewer"}
EXPECT_TIMEOUT_MS = 20_000


def require_chromium() -> None:
    """Skip without Chromium (or playwright); under CI=true, fail instead."""
    reason = chromium.missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the browser tests need Chromium under CI=true: {reason}")
        pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, per module: while it runs, its event loop is the thread's
    running loop, which other tests' asyncio.run() would trip over."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """The system's Chromium, headless; one per module."""
    launched = chromium.launch(playwright)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with `hello` (the demo), `slow` deployed, and an operator and a viewer."""
    require_chromium()  # before starting anything
    factory = ServerFactory(tmp_path_factory)
    try:
        srv = factory.start("--slots", "4")
        with srv.client() as admin:
            deploy(admin, EXAMPLES / "slow")
            for name, role in ROLES.items():
                r = admin.post(
                    "/api/v1/users", json={"name": name, "role": role, "password": USERS[name]}
                )
                assert r.status_code == 201, r.text
        yield srv
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def session_cookies(server: Server) -> Callable[[str], list[dict[str, Any]]]:
    """`cookies(user)`: a signed-in session of `user` as browser cookies (one per user)."""
    cache: dict[str, list[dict[str, Any]]] = {}

    def cookies(user: str) -> list[dict[str, Any]]:
        if user not in cache:
            client = sign_in(server, user, USERS[user])
            token = client.cookies["runplane_session"]
            client.close()
            cache[user] = [{"name": "runplane_session", "value": token, "url": server.base}]
        return cache[user]

    return cookies


class Watched:
    """JavaScript errors and CSP violations reported by the pages of a test."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda exc: self.problems.append(f"{page.url}: {exc}"))

        def console(msg: Any) -> None:
            if msg.type == "error" and "Content Security Policy" in msg.text:
                self.problems.append(f"{page.url}: {msg.text}")

        page.on("console", console)
        return page


@pytest.fixture
def console(
    browser: Browser,
    server: Server,
    session_cookies: Callable[[str], list[dict[str, Any]]],
) -> Iterator[Callable[..., Page]]:
    """`console(user="admin", **context_options)`: a new page signed in as `user` (None: not
    signed in). The test fails on any JavaScript error or CSP violation of its pages."""
    watched = Watched()
    contexts: list[BrowserContext] = []

    def open_page(user: str | None = "admin", **options: Any) -> Page:
        context = browser.new_context(base_url=server.base, **options)
        contexts.append(context)
        if user is not None:
            context.add_cookies(session_cookies(user))  # type: ignore[arg-type]
        return watched.watch(context.new_page())

    yield open_page
    for context in contexts:
        context.close()
    assert not watched.problems, "\n".join(watched.problems)


def executions_count(server: Server) -> int:
    """How many executions the server holds."""
    with server.client() as admin:
        return len(admin.get("/api/v1/executions", params={"limit": 500}).json()["items"])


def start_via_api(server: Server, process: str, inputs: dict[str, Any]) -> str:
    """Start `process` through the native API; its server id."""
    with server.client() as admin:
        r = admin.post(f"/api/v1/processes/{process}/executions", json={"inputArguments": inputs})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])
