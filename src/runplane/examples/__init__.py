"""Example processes shipped with runplane (the demo deploys `hello`)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).parent


def example(name: str) -> Path:
    """The folder of a shipped example process."""
    return EXAMPLES_DIR / name
