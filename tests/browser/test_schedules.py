"""Schedules in Chromium: created on a process's page with its next due time in its own
time zone, a bad expression named and nothing stored, paused, resumed and deleted."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.support import Server

pytestmark = pytest.mark.browser


def schedules_of(server: Server) -> list[dict[str, object]]:
    with server.client() as admin:
        items: list[dict[str, object]] = admin.get(
            "/api/v1/schedules", params={"process": "hello"}
        ).json()["items"]
        return items


def test_a_schedule_is_created_paused_resumed_and_deleted_from_the_process_page(
    console: Callable[..., Page], server: Server
) -> None:
    page = console()
    page.goto("/processes/hello")
    section = page.locator("section", has=page.get_by_role("heading", name="Schedules"))
    expect(section).to_contain_text("No schedules")
    form = page.get_by_role("form", name="New schedule")

    form.get_by_label("Name").fill("mornings")
    form.get_by_label("Cron expression").fill("0 8 * *")
    form.get_by_label("Time zone").fill("Europe/Berlin")
    form.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("cron", re.IGNORECASE))
    assert schedules_of(server) == []

    form.get_by_label("Cron expression").fill("0 8 * * 1-5")
    form.get_by_label("Input arguments (JSON)").fill('{"name": "scheduler"}')
    form.get_by_role("button", name="Create schedule").click()
    row = section.get_by_role("row").filter(has_text="mornings")
    expect(row).to_contain_text("0 8 * * 1-5")
    expect(row).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d 08:00 CES?T"))
    expect(row).to_contain_text("scheduler")
    [made] = schedules_of(server)
    assert made["timezone"] == "Europe/Berlin" and made["inputArguments"] == {"name": "scheduler"}

    row.get_by_role("button", name=re.compile("^Pause schedule mornings")).click()
    expect(row).to_contain_text("paused")
    assert schedules_of(server)[0]["enabled"] is False
    row.get_by_role("button", name=re.compile("^Resume schedule mornings")).click()
    expect(row).to_contain_text(re.compile(r"08:00 CES?T"))

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=re.compile("^Delete schedule mornings")).click()
    expect(section).to_contain_text("No schedules")
    assert schedules_of(server) == []
