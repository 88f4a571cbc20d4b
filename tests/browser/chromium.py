"""The system's Chromium for the console's browser tests and the screenshot script.

Browser builds are not downloaded (no `playwright install`): the tests drive the
Chromium the operating system ships (Debian's `chromium`), found on PATH or named
by RUNPLANE_TEST_CHROMIUM.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM_ENV = "RUNPLANE_TEST_CHROMIUM"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def find_chromium() -> str | None:
    """The Chromium executable: RUNPLANE_TEST_CHROMIUM, else `chromium` on PATH."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        return shutil.which(named)
    return shutil.which("chromium")


def missing() -> str | None:
    """None when the browser tests can run; else why they cannot."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -e '.[test]')"
    if find_chromium() is None:
        named = os.environ.get(CHROMIUM_ENV)
        if named:
            return f"{CHROMIUM_ENV}={named} is not an executable"
        return "no chromium on PATH (apt-get install chromium, or set RUNPLANE_TEST_CHROMIUM)"
    return None


def launch(playwright: Playwright) -> Browser:
    """Chromium, headless, without sandbox or background traffic."""
    path = find_chromium()
    if path is None:
        raise RuntimeError(missing())
    return playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
