"""Every console page in Chromium: no sideways scrolling of the page at desktop and phone
widths (wide tables scroll in their own box), dark mode, and an accessible name for
every control."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import start_via_api
from tests.support import Server, wait_terminal

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LONG_ID = "order-" + "0123456789" * 20  # an execution id without a place to break
CONTROLS = "input:not([type=hidden]), select, textarea, button"
# (name, path with {execution}, who opens it: None is not signed in)
PAGES = [
    ("sign-in", "/login", None),
    ("executions", "/", "admin"),
    ("execution", "/executions/{execution}", "admin"),
    ("processes", "/processes", "admin"),
    ("process", "/processes/slow", "admin"),
    ("start", "/processes/slow/start", "admin"),
    ("runtimes", "/runtimes", "admin"),
    ("credentials", "/credentials", "admin"),
    ("reports", "/reports", "admin"),
]


@pytest.fixture(scope="module", autouse=True)
def executions(server: Server) -> Iterator[dict[str, str]]:
    """A succeeded execution with a long id and a failed one, for the pages to show."""
    with server.client() as admin:
        r = admin.post(
            "/api/v1/processes/hello/executions",
            json={"inputArguments": {"name": "Layout"}},
            headers={"Idempotency-Key": LONG_ID},
        )
        assert r.status_code == 201, r.text
        succeeded = str(r.json()["id"])
        failed = start_via_api(server, "slow", {"seconds": 0.1, "fail": True})
        assert wait_terminal(admin, succeeded)["status"] == "succeeded"
        assert wait_terminal(admin, failed)["status"] == "failed"
    yield {"succeeded": succeeded, "failed": failed}


def _pages(
    console: Callable[..., Page],
    ids: dict[str, str],
    only: tuple[str, ...] = (),
    **options: Any,
) -> Iterator[tuple[str, Page]]:
    """Open every page (or those named in `only`) in turn, one browser context per user."""
    opened: dict[str | None, Page] = {}
    for name, path, user in PAGES:
        if only and name not in only:
            continue
        if user not in opened:
            opened[user] = console(user, **options)
        page = opened[user]
        answer = page.goto(path.format(execution=ids["succeeded"]))
        assert answer is not None and answer.status == 200, path
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        yield name, page


def test_no_page_scrolls_sideways_at_desktop_or_phone_width(
    console: Callable[..., Page], executions: dict[str, str]
) -> None:
    wide, loose = {}, {}
    for name, page in _pages(console, executions, viewport=DESKTOP):
        for viewport in (DESKTOP, PHONE):
            page.set_viewport_size(viewport)
            scroll, inner = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            if scroll > inner + 1:
                wide[f"{name} at {viewport['width']} px"] = f"{scroll} px wide"
        page.set_viewport_size(DESKTOP)
        tables = page.evaluate(
            "[...document.querySelectorAll('table.list')].filter(t => !t.closest('.table-wrap'))"
            ".length"
        )
        if tables:
            loose[name] = tables
    assert wide == {}, "pages that scroll sideways"
    assert loose == {}, "tables that do not scroll in their own .table-wrap"


def test_dark_mode_changes_the_colours(
    console: Callable[..., Page], executions: dict[str, str]
) -> None:
    colours = "(s => [s.backgroundColor, s.color])(getComputedStyle(document.body))"
    some = ("sign-in", "executions", "execution")
    for name, page in _pages(console, executions, some, color_scheme="light"):
        light = page.evaluate(colours)
        page.emulate_media(color_scheme="dark")
        dark = page.evaluate(colours)
        page.emulate_media(color_scheme="light")
        assert light[0] == "rgb(255, 255, 255)", name
        assert light[0] != dark[0] and light[1] != dark[1], (name, light, dark)


def _unnamed_controls(page: Page) -> list[str]:
    """The inputs, selects, text areas and buttons whose accessible name (as Chromium's
    accessibility tree computes it) is empty; hidden ones are not in the tree."""
    cdp = page.context.new_cdp_session(page)
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    found = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": CONTROLS})
    unnamed = []
    for node_id in found["nodeIds"]:
        nodes = cdp.send(
            "Accessibility.getPartialAXTree", {"nodeId": node_id, "fetchRelatives": False}
        )["nodes"]
        ax = nodes[0] if nodes else {}
        if ax.get("ignored"):
            continue
        name = str(ax.get("name", {}).get("value", "")).strip()
        if not name:
            html = cdp.send("DOM.getOuterHTML", {"nodeId": node_id})["outerHTML"]
            unnamed.append(html[:160])
    cdp.detach()
    return unnamed


def test_every_control_has_an_accessible_name(
    console: Callable[..., Page], executions: dict[str, str]
) -> None:
    unnamed, controls = {}, 0
    for name, page in _pages(console, executions):
        controls += page.locator(CONTROLS).count()
        missing = _unnamed_controls(page)
        if missing:
            unnamed[name] = missing
    assert controls > 50  # the check saw the forms
    assert unnamed == {}
