"""Shared printing: one JSON document on stdout with --json, Rich for people otherwise.

Stdout carries the command's answer only; errors, progress and hints go to
stderr, so `runplane ... > file` captures just the answer.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PIPED_WIDTH = 1000
KEEP_WHOLE = {"id": 36, "status": len("succeeded")}  # column → width it needs
STATUS_STYLES = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "magenta",
}


def emit_json(document: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def emit_secret(secret: str, note: Text) -> None:
    """A secret alone on stdout (so `X=$(runplane ...)` captures exactly it); `note` on stderr."""
    sys.stdout.write(secret + "\n")
    sys.stdout.flush()
    err.print(note)


def show_json(value: Any) -> None:
    """Print a JSON value for people: coloured on a terminal, plain otherwise."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    if out.is_terminal:
        out.print_json(text)
    else:
        emit_json(value)


def print_error(
    detail: str,
    problems: Sequence[Mapping[str, Any]],
    *,
    code: str,
    status: int | None,
    json_mode: bool,
) -> None:
    """Print an error and every listed problem on stderr (as JSON with --json)."""
    if json_mode:
        doc: dict[str, Any] = {"code": code, "detail": detail, "errors": list(problems)}
        if status is not None:
            doc["status"] = status
        sys.stderr.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return
    err.print(Text.assemble(("Error: ", "bold red"), detail))
    for problem in problems:
        where = ": ".join(str(p) for p in (problem.get("file"), problem.get("name")) if p)
        line = Text("  - ")
        if where:
            line.append(where, "bold").append(": ")
        line.append(str(problem.get("detail", ""))).append(f" ({problem.get('code', '?')})", "dim")
        err.print(line)


def status_text(status: str) -> Text:
    """An execution status, coloured."""
    return Text(status, STATUS_STYLES.get(status, ""))


def timestamp(value: str | None) -> str:
    """An ISO 8601 timestamp, shortened for a table: `2025-01-02 10:11:12Z`."""
    if not value:
        return "-"
    date, _, time = value.partition("T")
    return f"{date} {time.split('.')[0].rstrip('Z')}Z" if time else value


def duration(ms: int | float | None) -> str:
    """A duration in milliseconds, for people: `85 ms`, `3.2 s`, `4m 05s`."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def compact(value: Any, limit: int = 60) -> str:
    """A JSON value on one line, cut to `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(*columns: str) -> Table:
    """A one-line-per-row table; on a narrow terminal cells are cut, ids and statuses never."""
    result = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        result.add_column(column, no_wrap=True, min_width=KEEP_WHOLE.get(column))
    return result


def print_table(rows: Table) -> None:
    """Print a table on stdout; piped, at its natural width (ids must stay whole)."""
    if out.is_terminal:
        out.print(rows)
        return
    buffer = io.StringIO()
    Console(file=buffer, width=PIPED_WIDTH, highlight=False).print(rows)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


def details(rows: list[tuple[str, Any]]) -> Table:
    """A two-column key/value grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value if isinstance(value, Text) else Text(str(value)))
    return grid


def execution_details(record: Mapping[str, Any]) -> Table:
    """An execution record for people."""
    rows: list[tuple[str, Any]] = [
        ("id", record["id"]),
        ("process", f"{record['process']} v{record['version']} in {record['environment']}"),
        ("status", status_text(record["status"])),
    ]
    if record.get("executionId") not in (None, record["id"]):
        rows.insert(1, ("executionId", record["executionId"]))
    if record.get("cancelRequested") and record["status"] == "running":
        rows.append(("cancel", "requested"))
    rows += [
        ("attempt", record.get("attempt", "-")),
        ("runtime", record.get("runtime") or "-"),
        ("created", timestamp(record.get("createdAt"))),
        ("started", timestamp(record.get("startedAt"))),
        ("finished", timestamp(record.get("finishedAt"))),
        ("duration", duration(record.get("durationMs"))),
        ("inputs", compact(record.get("inputArguments", {}), 200)),
    ]
    if record.get("result") is not None:
        rows.append(("result", compact(record["result"], 200)))
    error = record.get("error")
    if error:
        rows.append(("error", Text(f"{error.get('code')}: {error.get('message')}", "red")))
    return details(rows)
