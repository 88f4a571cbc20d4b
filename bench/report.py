"""The comparison's figures: rows with their targets and each peer's figure, the
table bench/compare.py prints and the JSON it writes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SIGNS = {"<=": "≤", "<": "<", ">=": "≥"}


@dataclass(frozen=True)
class Target:
    op: str
    value: float

    def met(self, figure: float) -> bool:
        return {"<=": figure <= self.value, "<": figure < self.value, ">=": figure >= self.value}[
            self.op
        ]


@dataclass
class Row:
    key: str
    label: str
    runplane: float | None
    target: Target | None
    peers: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    partial: dict[tuple[str, str], str] = field(default_factory=dict)  # (row, system) → why

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    def add(self, key: str, label: str, value: float | None, target: Target | None) -> None:
        self.rows.append(Row(key, label, value, target))

    def peer(self, key: str, peer: str, value: float) -> None:
        row = self.row(key)
        if row is not None:
            row.peers[peer] = value

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append({"what": what, "reason": reason})
        print(f"  skipped {what}: {reason}", flush=True)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def table(report: Report) -> str:
    peers = list(dict.fromkeys(p for r in report.rows for p in r.peers))
    head = f"{'':48} {'runplane':>9} {'target':>8} {'met':>3} "
    head += "".join(f"{p:>13} {'ratio':>6}" for p in peers)
    lines = [head.rstrip()]
    for r in report.rows:
        target = f"{SIGNS[r.target.op]} {r.target.value:,g}" if r.target else ""
        met = ("yes" if r.target.met(r.runplane) else "no") if r.target and r.runplane else ""
        line = (
            f"{r.label:48} {_mark(report, r.key, 'runplane', r.runplane):>9} {target:>8} {met:>3} "
        )
        for p in peers:
            value = r.peers.get(p)
            ratio = f"{r.runplane / value:.2f}" if value and r.runplane is not None else ""
            line += f"{_mark(report, r.key, p, value) if value is not None else '':>13} {ratio:>6}"
        lines.append(line.rstrip())
    for (key, system), why in report.partial.items():
        row = report.row(key)
        if row and (row.runplane if system == "runplane" else row.peers.get(system)) is not None:
            lines.append(f"* {system}, {row.label.strip()}: {why}")
    return "\n".join(lines)


def _mark(report: Report, key: str, system: str, value: float | None) -> str:
    return _fmt(value) + ("*" if (key, system) in report.partial else "")


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "commit": commit or None,
        "load": os.getloadavg(),
    }


def document(report: Report, options: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": machine(),
        "options": options,
        "rows": [
            {
                "key": r.key,
                "label": r.label.strip(),
                "runplane": r.runplane,
                "target": asdict(r.target) if r.target else None,
                "met": r.target.met(r.runplane) if r.target and r.runplane is not None else None,
                "peers": {
                    p: {"value": v, "ratio": r.runplane / v if r.runplane and v else None}
                    for p, v in r.peers.items()
                },
            }
            for r in report.rows
        ],
        "details": report.details,
        "partial": [
            {"key": key, "system": system, "why": why}
            for (key, system), why in report.partial.items()
        ],
        "skipped": report.skipped,
    }
