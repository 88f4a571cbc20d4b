"""Text from processes, callers and logs is shown as text in Chromium: markup in a
parameter's default or description, a typed input, an execution id or a printed line
never runs (and CSP would refuse it if it reached the page as markup)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from runplane.bundle import pack_folder
from tests.browser.conftest import start_via_api
from tests.support import Server, deploy, make_process, wait_terminal

pytestmark = pytest.mark.browser

DEFAULT = '<img src=x onerror="window.__pwned=1;document.title=1">'
DESCRIPTION = "<script>window.__pwned=2;document.title=2</script>"
PROCESS_DESCRIPTION = '<svg onload="window.__pwned=3"></svg>'
PRINTED = '<script>window.__pwned=4</script><img src=x onerror="window.__pwned=5">'
TYPED = "<img src=x onerror=\"document.title='pwned';window.__pwned=6\">"
EXECUTION_ID = '<b onmouseover="window.__pwned=7">id</b>'
BAD_NAME = "<script>window.__pwned=8</script>"


@pytest.fixture(scope="module", autouse=True)
def hostile(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`xss`: markup in its description, a parameter's default and description, its log."""
    folder = make_process(
        tmp_path_factory.mktemp("xss"),
        "xss",
        manifest=f"""
            entrypoint = "main:main"
            description = '{PROCESS_DESCRIPTION}'
            [parameters.label]
            type = "string"
            default = '{DEFAULT}'
            description = '{DESCRIPTION}'
        """,
        code=f"""
            def main(label):
                print({PRINTED!r})
                print(label)
                return {{"label": label}}
        """,
    )
    with server.client() as admin:
        deploy(admin, folder)
    yield


def assert_nothing_ran(page: Page, title: str) -> None:
    """No payload ran: the title is the page's own, no flag was set, no markup was made."""
    assert page.title() == title
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("main img, main svg, main script, main b").count() == 0


def test_markup_in_a_process_is_shown_as_text_on_its_pages(console: Callable[..., Page]) -> None:
    page = console()
    page.goto("/processes/xss")
    expect(page.get_by_text(PROCESS_DESCRIPTION, exact=True)).to_be_visible()
    expect(page.get_by_label(re.compile(r"^label\b"))).to_have_value(DEFAULT)
    expect(page.locator("#start-form .hint")).to_have_text(DESCRIPTION)
    expect(page.locator("pre.snippet").first).to_contain_text("window.__pwned=1")
    assert_nothing_ran(page, "xss · runplane")
    page.goto("/processes/xss/start")
    expect(page.get_by_label(re.compile(r"^label\b"))).to_have_value(DEFAULT)
    assert_nothing_ran(page, "Start xss · runplane")


def test_a_typed_input_and_execution_id_are_shown_as_text(
    console: Callable[..., Page], server: Server
) -> None:
    page = console()
    page.goto("/processes/xss")
    page.get_by_label(re.compile(r"^label\b")).fill(TYPED)
    page.get_by_label(re.compile(r"^Execution id\b")).fill(EXECUTION_ID)
    page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/executions/[0-9a-f-]+$"))
    execution_id = page.url.rsplit("/", 1)[1]
    with server.client() as admin:
        assert wait_terminal(admin, execution_id)["status"] == "succeeded"
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Execution {EXECUTION_ID}")
    expect(page.locator("#result")).to_contain_text("window.__pwned=6")
    result = page.locator("#result").text_content() or ""
    assert TYPED.replace('"', '\\"') in result  # the JSON of the text, not an element
    expect(page.locator("table.kv pre.value")).to_contain_text("document.title='pwned'")
    assert_nothing_ran(page, f"xss · {execution_id} · runplane")
    page.goto("/")
    expect(page.locator(f"#row-{execution_id}")).to_contain_text(EXECUTION_ID)
    assert_nothing_ran(page, "Executions · runplane")


def test_a_printed_line_with_markup_is_shown_as_text_in_the_log(
    console: Callable[..., Page], server: Server
) -> None:
    execution_id = start_via_api(server, "xss", {"label": TYPED})
    page = console()
    page.goto(f"/executions/{execution_id}")
    log = page.locator("#log")
    expect(log).to_contain_text(PRINTED)
    expect(log).to_contain_text(TYPED)
    assert log.locator("*").count() == 0  # text nodes only
    assert_nothing_ran(page, f"xss · {execution_id} · runplane")


def test_a_process_name_with_markup_is_refused_with_a_clear_error(
    console: Callable[..., Page], server: Server, tmp_path: Path
) -> None:
    folder = tmp_path / "markup"
    folder.mkdir()
    (folder / "runplane.toml").write_text(
        f'[process]\nname = "{BAD_NAME}"\nentrypoint = "main:main"\n'
    )
    bundle_with_markup = pack_folder(folder)
    with server.client() as admin:
        api = admin.post(
            "/api/v1/processes/xss/versions",
            content=bundle_with_markup,
            headers={"Content-Type": "application/zip"},
        )
    assert api.status_code == 422, api.text
    problem = api.json()
    assert problem["code"] == "invalid_manifest"
    assert [e["name"] for e in problem["errors"]] == ["process.name"]

    page = console()
    page.goto("/processes/xss")
    page.locator("#bundle").set_input_files(
        {"name": "markup.zip", "mimeType": "application/zip", "buffer": bundle_with_markup}
    )
    page.get_by_role("button", name="Upload").click()
    message = page.locator("#messages .message.error")
    expect(message).to_contain_text("process.name")
    expect(message).to_contain_text("letters, digits")
    assert_nothing_ran(page, "xss · runplane")
    with server.client() as admin:
        versions = admin.get("/api/v1/processes/xss/versions").json()
    assert len(versions["items"]) == 1
