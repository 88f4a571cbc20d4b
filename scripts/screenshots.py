"""Screenshots of every console page, light and dark, at 1280x800, for docs/console.md.

Starts `runplane serve` on a fresh data directory, deploys the examples and a process
with one parameter of each type, creates executions that succeeded, failed, are
running and were cancelled, an OAuth app, an API token, a process secret and users,
then saves docs/screenshots/<page>-<light|dark>.png with the system's Chromium.

Run from the repository root, with the test extras installed:

    .venv/bin/python -m scripts.screenshots
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect, sync_playwright
from tests.browser import chromium
from tests.support import Server, ServerFactory, deploy, make_process, sign_in, wait_terminal

import runplane.examples

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
EXAMPLES = Path(runplane.examples.__file__).parent
VIEWPORT = {"width": 1280, "height": 800}
WAIT_MS = 10_000
INVOICE_MANIFEST = """
    entrypoint = "bot:main"
    description = "Books an invoice: one parameter of each type."
    [parameters.invoice_id]
    type = "string"
    required = true
    description = "The invoice to book."
    [parameters.amount]
    type = "number"
    default = 0
    [parameters.copies]
    type = "integer"
    default = 1
    [parameters.urgent]
    type = "boolean"
    default = false
    [parameters.lines]
    type = "array"
    default = []
    [parameters.api_key]
    type = "secret"
"""
INVOICE_CODE = """
    def main(invoice_id, amount, copies, urgent, lines, api_key=None):
        print(f"booking {invoice_id}: {amount} x {copies}")
        return {"booked": invoice_id, "amount": amount}
"""


class _Temp:
    """Fresh directories under one temporary root (what ServerFactory asks for)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def mktemp(self, name: str) -> Path:
        self.count += 1
        path = self.root / f"{name}{self.count}"
        path.mkdir()
        return path


def _start(admin: Any, process: str, inputs: dict[str, Any], key: str) -> str:
    r = admin.post(
        f"/api/v1/processes/{process}/executions",
        json={"inputArguments": inputs},
        headers={"Idempotency-Key": key},
    )
    r.raise_for_status()
    return str(r.json()["id"])


def populate(srv: Server, work: Path) -> dict[str, str]:
    """The examples, executions in each state, credentials and users; the ids to show."""
    with srv.client() as admin:
        deploy(admin, EXAMPLES / "slow")
        deploy(admin, EXAMPLES / "shell-report")
        invoice = make_process(
            work, "invoice-bot", manifest=INVOICE_MANIFEST, files={"bot.py": INVOICE_CODE}
        )
        deploy(admin, invoice)
        failed = _start(admin, "slow", {"seconds": 1, "fail": True}, "nightly-check-17")
        for i, name in enumerate(("Ada", "Grace", "Linus")):
            _start(admin, "hello", {"name": name}, f"greeting-{i + 1}")
        _start(admin, "invoice-bot", {"invoice_id": "INV-1042", "amount": 129.5}, "INV-1042")
        shown = _start(admin, "hello", {"name": "Ada"}, "welcome-ada")
        cancelled = _start(admin, "slow", {"seconds": 600}, "long-import-3")
        admin.post(f"/api/v1/executions/{cancelled}/cancel").raise_for_status()
        for execution in (failed, shown, cancelled):
            wait_terminal(admin, execution)
        running = _start(admin, "slow", {"seconds": 600}, "long-import-4")
        for body in (
            ("/api/v1/apps", {"name": "mulesoft-caller", "scopes": ["executions:start"]}),
            ("/api/v1/tokens", {"name": "reporting", "scopes": ["executions:read"]}),
            ("/api/v1/processes/hello/secret", None),
            ("/api/v1/users", {"name": "olga", "role": "operator", "password": "olga-" * 4}),
            ("/api/v1/users", {"name": "victor", "role": "viewer", "password": "victor-" * 3}),
        ):
            admin.post(body[0], json=body[1]).raise_for_status()
    return {"execution": shown, "running": running}


PAGES = (
    ("sign-in", "/login"),
    ("executions", "/"),
    ("execution", "/executions/{execution}"),
    ("processes", "/processes"),
    ("process", "/processes/hello"),
    ("start", "/processes/invoice-bot/start"),
    ("runtimes", "/runtimes"),
    ("credentials", "/credentials"),
    ("reports", "/reports"),
)


def shoot(page: Page, name: str, path: str, scheme: str) -> bool:
    """Open `path` and save its screenshot; False when the page is not served."""
    answer = page.goto(path)
    if answer is None or answer.status != 200:
        print(f"skipped {name}: {path} answered {answer.status if answer else 'nothing'}")
        return False
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    if name == "execution":
        try:
            expect(page.locator("#log")).not_to_be_empty(timeout=WAIT_MS)
        except AssertionError:
            print("the execution's log did not appear (is the log stream served?)")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=OUT / f"{name}-{scheme}.png", animations="disabled", caret="hide")
    return True


def main() -> int:
    """Start a server, fill it, screenshot every page in light and dark."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        factory = ServerFactory(_Temp(Path(tmp)))  # type: ignore[arg-type]
        try:
            srv = factory.start("--slots", "4")
            ids = populate(srv, Path(tmp))
            session = sign_in(srv)
            cookie = session.cookies["runplane_session"]
            session.close()
            with sync_playwright() as driver:
                browser = chromium.launch(driver)
                for scheme in ("light", "dark"):
                    for signed_in in (False, True):
                        context = browser.new_context(
                            base_url=srv.base, viewport=VIEWPORT, color_scheme=scheme
                        )
                        if signed_in:
                            context.add_cookies(
                                [{"name": "runplane_session", "value": cookie, "url": srv.base}]
                            )
                        page = context.new_page()
                        for name, path in PAGES:
                            if (name == "sign-in") != signed_in:
                                shoot(page, name, path.format(**ids), scheme)
                        context.close()
                browser.close()
        finally:
            factory.stop_all()
    print(f"saved {len(list(OUT.glob('*.png')))} screenshots in {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
