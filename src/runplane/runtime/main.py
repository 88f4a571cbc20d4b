"""The remote runtime's process: ``python -m runplane.runtime.main --config-fd FD``.

``runplane runtime`` (cli/runtime.py) parses its options, resolves the server,
token and settings, and then replaces itself (``exec``, same pid) with this
module, handing the resolved configuration over as JSON on a pipe. What stays
in memory for the runtime's whole life is then only what running executions
needs: asyncio, httpx and the agent, not the command line's Typer, Rich and
Pydantic (about 20 MB less resident memory, per runtime, for as long as it runs).

httpx imports its own command-line client, and with it Rich and Pygments, when
they are installed (they are: runplane's CLI uses Rich). The runtime never runs
that client, so its module is marked missing before httpx is imported: httpx
then defines a stub in its place (``sys.modules[name] = None`` makes an import
of ``name`` raise ImportError, which httpx expects when its CLI extra is absent).

The configuration travels by pipe rather than by argument or variable so that
the token is never visible in ``ps`` or ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import argparse  # noqa: E402 - after the line above, before httpx comes in
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

MAX_CONFIG_BYTES = 1024 * 1024
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def read_config(fd: int) -> dict[str, Any]:
    """The JSON object written to the pipe (whose write end is closed)."""
    data = b""
    with os.fdopen(fd, "rb") as stream:
        while chunk := stream.read(65536):
            data += chunk
            if len(data) > MAX_CONFIG_BYTES:
                raise ValueError("the runtime's configuration is too large")
    config = json.loads(data)
    if not isinstance(config, dict):
        raise ValueError("the runtime's configuration is not a JSON object")
    return config


def run(config: dict[str, Any]) -> None:
    """Run the runtime the configuration describes until SIGTERM/SIGINT (then drain)."""
    from runplane.runtime.http_gateway import HttpGateway
    from runplane.runtime.remote import configure_logging, run_remote
    from runplane.runtime.warm import create_launcher

    configure_logging(config["log_level"])
    asyncio.run(
        run_remote(
            HttpGateway(config["server"], config["token"], labels=config["labels"]),
            name=config["name"],
            environment=config["environment"],
            slots=int(config["slots"]),
            data_dir=Path(config["data_dir"]),
            drain_timeout_seconds=float(config["drain_timeout_seconds"]),
            launcher=create_launcher(
                config["launcher"],
                preload_max=int(config["preload_max"]),
                preload_idle_seconds=float(config["preload_idle_seconds"]),
            ),
            environments_max=int(config.get("environments_max", 16)),
            prepare=[str(name) for name in config.get("prepare", [])],
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run from a configuration pipe; errors are printed as the CLI prints them."""
    from runplane.client.errors import ClientError
    from runplane.domain.errors import RunplaneError, Unauthenticated

    parser = argparse.ArgumentParser(prog="runplane runtime", description=__doc__)
    parser.add_argument("--config-fd", type=int, required=True, metavar="FD")
    args = parser.parse_args(argv)
    try:
        config = read_config(args.config_fd)
    except (OSError, ValueError) as exc:
        print(f"Error: cannot read the runtime's configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        run(config)
    except Unauthenticated as exc:
        _print_error(f"the server refused the runtime's token: {exc.detail.rstrip('.')}", [])
        return EXIT_FAILED
    except RunplaneError as exc:
        _print_error(exc.detail, exc.problems)
        return EXIT_FAILED
    except ClientError as exc:
        _print_error(exc.message, [])
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


def _print_error(detail: str, problems: list[dict[str, Any]]) -> None:
    lines = [f"Error: {detail}"]
    for problem in problems:
        where = ": ".join(str(p) for p in (problem.get("file"), problem.get("name")) if p)
        prefix = f"{where}: " if where else ""
        lines.append(f"  - {prefix}{problem.get('detail', '')} ({problem.get('code', '?')})")
    print("\n".join(lines), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
