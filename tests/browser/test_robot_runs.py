"""A Robocorp robot's execution in Chromium: its work items and the files it left in its
artifacts folder, shown on the execution page once it ends, and downloadable."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support import Server, deploy, wait_terminal

pytestmark = pytest.mark.browser

ROBOT = """
tasks:
  Write:
    shell: python write.py
artifactsDir: output
"""
WRITE = """
import os
with open(os.path.join(os.environ["ROBOT_ARTIFACTS"], "summary.txt"), "w") as f:
    f.write("robot summary")
print("written", flush=True)
"""


def test_an_execution_page_shows_a_robots_work_items_and_artifacts(
    console: Callable[..., Page], server: Server, tmp_path: Path
) -> None:
    folder = tmp_path / "summary-robot"
    folder.mkdir()
    (folder / "robot.yaml").write_text(ROBOT)
    (folder / "write.py").write_text(WRITE)
    with server.client() as admin:
        deploy(admin, folder, name="summary-robot")
        started = admin.post(
            "/api/v1/processes/summary-robot/executions",
            json={"inputArguments": {"order": "<b>42</b>"}},
        ).json()
        done = wait_terminal(admin, started["id"])
        assert done["status"] == "succeeded", done

    page = console()
    page.goto(f"/executions/{done['id']}")
    items = page.locator("#work-items")
    expect(items).to_contain_text("input")
    expect(items).to_contain_text("COMPLETED")
    expect(items).to_contain_text('"order": "<b>42</b>"')  # shown as text, not markup
    link = page.get_by_role("link", name="summary.txt")
    expect(link).to_be_visible()
    with page.expect_download() as downloaded:
        link.click()
    path = downloaded.value.path()
    assert Path(path).read_text() == "robot summary"
    assert re.search("summary.txt", downloaded.value.suggested_filename)
