"""The Prefect side of bench/compare.py: the same two flows, served by one process.

python bench/prefect_flows.py LIMIT     # runs at most LIMIT flow runs at once
"""

from __future__ import annotations

import sys

from prefect import flow, serve


@flow(name="hello", persist_result=False)
def hello(name: str = "world") -> dict[str, str]:
    return {"greeting": f"Hello, {name}!"}


@flow(name="noop", persist_result=False)
def noop(name: str = "") -> dict[str, str]:
    return {}


if __name__ == "__main__":
    serve(
        hello.to_deployment("bench"),
        noop.to_deployment("bench"),
        limit=int(sys.argv[1]),
        print_starting_message=False,
    )
