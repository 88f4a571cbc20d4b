"""Executions in Chromium: sign in, start from the generated form and follow the execution
live, a bad input named beside its field, cancel, the live list, a 50,000-line log."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import USERS, executions_count, start_via_api
from tests.support import Server, deploy, make_process, wait_terminal

pytestmark = pytest.mark.browser

TOO_BIG = "99999999999999999999999"  # a number to the browser, beyond 64 bits to runplane
LOG_LINES = 50_000
RESPONSIVE_SECONDS = 2.0
MAX_EARLIER_PAGES = 60


@pytest.fixture(scope="module", autouse=True)
def processes(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`typed`: a required integer and an optional one; `chatty`: prints many lines."""
    typed = make_process(
        tmp_path_factory.mktemp("typed"),
        "typed",
        manifest="""
            entrypoint = "main:main"
            [parameters.count]
            type = "integer"
            required = true
            [parameters.retries]
            type = "integer"
            default = 1
            [parameters.extra]
            type = "object"
            default = {}
        """,
        code="""
            def main(count, retries, extra):
                return {"count": count, "extra": extra}
        """,
    )
    chatty = make_process(
        tmp_path_factory.mktemp("chatty"),
        "chatty",
        manifest="""
            entrypoint = "main:main"
            [parameters.lines]
            type = "integer"
            default = 10
        """,
        code="""
            def main(lines):
                for i in range(lines):
                    print(f"line {i:05d} of the long log")
                return {"lines": lines}
        """,
    )
    with server.client() as admin:
        deploy(admin, typed)
        deploy(admin, chatty)
    yield


class Reloads:
    """Counts full page loads from now on, and marks the window so a reload shows."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.loads = 0
        page.on("load", lambda _: self._loaded())
        page.evaluate("window.__sameDocument = true")

    def _loaded(self) -> None:
        self.loads += 1

    def assert_none(self) -> None:
        assert self.loads == 0, f"{self.loads} page load(s)"
        assert self.page.evaluate("window.__sameDocument === true"), "the page was replaced"


def test_signing_in_with_the_form_opens_the_executions(console: Callable[..., Page]) -> None:
    page = console(user=None)
    page.goto("/processes/hello")
    expect(page).to_have_url(re.compile(r"/login\?next=/processes/hello$"))
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    page.get_by_label("Password").fill(USERS["admin"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/processes/hello$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("hello")
    expect(page.locator(".who")).to_contain_text("admin (admin)")


def test_hello_started_from_its_page_reaches_succeeded_without_a_reload(
    console: Callable[..., Page],
) -> None:
    page = console()
    page.goto("/processes/hello")
    page.get_by_label(re.compile(r"^name\b")).fill("Ada")
    page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/executions/[0-9a-f-]+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Execution")
    reloads = Reloads(page)
    expect(page.locator("#execution-status")).to_have_text("succeeded")
    expect(page.locator("#result")).to_contain_text('"greeting": "Hello, Ada!"')
    expect(page.locator("#log")).to_contain_text("Hello, Ada!")
    expect(page.locator("#log-state")).to_contain_text("succeeded")
    reloads.assert_none()


def test_an_out_of_range_integer_is_named_beside_its_field_and_nothing_is_stored(
    console: Callable[..., Page], server: Server
) -> None:
    before = executions_count(server)
    page = console()
    page.goto("/processes/typed")
    count = page.get_by_label(re.compile(r"^count\b"))
    count.fill(TOO_BIG)  # a valid number to the browser: it reaches the server as typed
    page.get_by_role("button", name="Start").click()
    problem = page.locator("#param-count-problem")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("64 bits")
    expect(count).to_have_attribute("aria-invalid", "true")
    expect(count).to_have_value(TOO_BIG)
    expect(page.locator("#param-retries-problem")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/processes/typed$"))
    assert executions_count(server) == before


def test_a_json_input_is_checked_in_the_browser_before_anything_is_sent(
    console: Callable[..., Page], server: Server
) -> None:
    before = executions_count(server)
    page = console()
    page.goto("/processes/typed")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.get_by_label(re.compile(r"^count\b")).fill("2")
    extra = page.get_by_label(re.compile(r"^extra\b"))
    problem = page.locator("#param-extra-problem")
    extra.fill('{"a": ')
    page.get_by_role("button", name="Start").click()
    expect(problem).to_contain_text("Not valid JSON")
    expect(extra).to_have_attribute("aria-invalid", "true")
    extra.fill("[1, 2]")
    page.get_by_role("button", name="Start").click()
    expect(problem).to_have_text("Expected a JSON object.")
    assert sent == [] and executions_count(server) == before
    extra.fill('{"a": 1}')
    page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/executions/"))
    expect(page.locator("#result")).to_contain_text('"a": 1')


def test_a_number_the_browser_cannot_hold_reaches_the_server_empty_and_is_named(
    console: Callable[..., Page], server: Server
) -> None:
    before = executions_count(server)
    page = console()
    page.goto("/processes/typed/start")
    count = page.get_by_label(re.compile(r"^count\b"))
    count.fill("1e400")  # Infinity: the number input's value becomes "" (a bad input)
    assert page.evaluate("document.getElementById('param-count').validity.badInput")
    page.get_by_role("button", name="Start").click()
    problem = page.locator("#param-count-problem")
    expect(problem).to_be_visible()
    expect(problem).not_to_be_empty()
    expect(count).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("heading", level=1)).to_have_text("Start typed")
    assert executions_count(server) == before


def test_cancelling_a_running_slow_execution_ends_it_cancelled(
    console: Callable[..., Page],
) -> None:
    page = console()
    page.goto("/processes/slow")
    page.get_by_label(re.compile(r"^seconds\b")).fill("30")
    page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/executions/[0-9a-f-]+$"))
    reloads = Reloads(page)
    expect(page.locator("#execution-status")).to_have_text("running")
    expect(page.locator("#log")).to_contain_text("progress 1/30")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#execution-status")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.get_by_role("link", name="Run again")).to_be_visible()
    reloads.assert_none()


def test_the_executions_list_shows_a_new_execution_and_follows_its_status(
    console: Callable[..., Page], server: Server
) -> None:
    page = console()
    with page.expect_response(lambda r: "/api/v1/events" in r.url):  # the stream is open
        page.goto("/")
    reloads = Reloads(page)
    # Long enough that a loaded machine still shows the row while it runs (2 s was not).
    execution_id = start_via_api(server, "slow", {"seconds": 6})
    badge = page.locator(f"#row-{execution_id} [data-status]")
    expect(badge).to_have_text("running")
    expect(badge).to_have_text("succeeded")
    expect(page.locator("#execution-rows tr").first).to_have_id(f"row-{execution_id}")
    reloads.assert_none()


def _first_line(page: Page) -> int:
    found = re.search(r"line (\d+)", page.locator("#log").text_content() or "")
    assert found, "the log shows no line"
    return int(found.group(1))


def test_a_50000_line_log_shows_its_tail_stays_responsive_and_loads_earlier_lines(
    console: Callable[..., Page], server: Server
) -> None:
    execution_id = start_via_api(server, "chatty", {"lines": LOG_LINES})
    with server.client() as admin:
        assert wait_terminal(admin, execution_id)["status"] == "succeeded"
    page = console()
    page.goto(f"/executions/{execution_id}", wait_until="commit")
    last = f"line {LOG_LINES - 1:05d}"
    slowest, deadline = 0.0, time.monotonic() + 20
    while True:  # the page answers within 2 s at every moment while the log loads
        asked = time.monotonic()
        shown = page.evaluate(
            "t => (document.getElementById('log')?.textContent || '').includes(t)", last
        )
        slowest = max(slowest, time.monotonic() - asked)
        if shown:
            break
        assert time.monotonic() < deadline, "the tail of the log did not appear"
    asked = time.monotonic()
    assert page.evaluate("1+1") == 2
    slowest = max(slowest, time.monotonic() - asked)
    assert slowest < RESPONSIVE_SECONDS, f"the page was unresponsive for {slowest:.1f} s"
    first = _first_line(page)
    assert first > 0, "the whole log was loaded at once, not its tail"
    earlier = page.locator("#log-earlier")
    expect(earlier).to_have_text("Load earlier lines")
    expect(earlier).to_be_visible()
    earlier.click()
    page.wait_for_function(
        "n => /line (\\d+)/.exec(document.getElementById('log').textContent)[1] < n",
        arg=f"{first:05d}",
    )
    for _ in range(MAX_EARLIER_PAGES):  # each press brings more, until the first line
        expect(earlier).to_be_enabled()
        if earlier.is_hidden():
            break
        shown = page.evaluate("document.getElementById('log').textContent.length")
        earlier.click()
        page.wait_for_function(
            "n => document.getElementById('log').textContent.length > n", arg=shown
        )
    else:
        raise AssertionError("Load earlier lines never reached the start of the log")
    text = page.locator("#log").text_content() or ""
    assert text.startswith("line 00000 of the long log\n")
    assert text.rstrip().endswith(f"{last} of the long log")
    assert text.count(" of the long log\n") == LOG_LINES
    asked = time.monotonic()
    page.evaluate("1+1")
    assert time.monotonic() - asked < RESPONSIVE_SECONDS
