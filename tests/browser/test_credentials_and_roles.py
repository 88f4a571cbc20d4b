"""Credentials and roles in Chromium: a process secret shown once, then masked, then used
from curl; what an operator and a viewer can reach."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.support import Server, wait_terminal

pytestmark = pytest.mark.browser

SECRET_PREFIX = "rps_"


def _curl_start(server: Server, secret: str, name: str) -> dict[str, str]:
    """Start `hello` the way a Robocorp Control Room caller does, with curl."""
    answer = subprocess.run(
        [
            "curl",
            "-s",
            "--fail-with-body",
            "-X",
            "POST",
            f"{server.base}/workspace-v1/workspaces/default/processes/hello/runs",
            "-H",
            f"robocloud-process-secret: {secret}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps({"name": name}),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr
    started: dict[str, str] = json.loads(answer.stdout)
    return started


def test_a_process_secret_is_shown_once_then_masked_and_starts_hello_from_curl(
    console: Callable[..., Page], server: Server
) -> None:
    page = console()
    page.goto("/credentials")
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="hello", exact=True))
    row.get_by_role("button", name="Generate secret").click()
    shown = page.locator("#new-secret")
    expect(shown).to_have_text(re.compile("^" + SECRET_PREFIX + r"\S{20,}$"))
    secret = shown.inner_text()
    expect(page.locator("#secret-once")).to_contain_text("shown only once")

    page.reload()
    expect(page.get_by_role("heading", name="Credentials", level=1)).to_be_visible()
    expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in page.content()
    expect(row.locator(".masked")).to_have_text("••••••••")
    expect(row.get_by_role("button", name="Rotate")).to_be_visible()

    started = _curl_start(server, secret, "Curl")
    with server.client() as admin:
        done = wait_terminal(admin, started["processRunId"])
    assert done["status"] == "succeeded"
    assert done["result"] == {"greeting": "Hello, Curl!"}


def test_an_operator_has_no_credentials_page(console: Callable[..., Page]) -> None:
    page = console("olga")
    page.goto("/")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Processes")).to_be_visible()
    expect(nav.get_by_role("link", name="Credentials")).to_have_count(0)
    answer = page.goto("/credentials")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_contain_text("403")
    page.goto("/processes/hello")
    expect(page.get_by_role("button", name="Start")).to_be_visible()


def test_a_viewer_has_no_start_button(console: Callable[..., Page]) -> None:
    page = console("victor")
    page.goto("/processes/hello")
    expect(page.get_by_role("heading", level=1)).to_have_text("hello")
    expect(page.get_by_text("Your role can read this process but not start it.")).to_be_visible()
    expect(page.get_by_role("button", name="Start")).to_have_count(0)
    expect(page.locator("#start-form")).to_have_count(0)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Credentials")).to_have_count(0)
