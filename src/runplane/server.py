"""`runplane serve`: uvicorn running create_app(settings), with the demo's curl line."""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn

from runplane import demo
from runplane.api.app import App, create_app
from runplane.settings import Settings

log = logging.getLogger("runplane.server")


class _Server(uvicorn.Server):
    """Prints the demo's curl line once the socket listens, not before; ends the long
    polls as soon as it is told to exit."""

    def __init__(self, config: uvicorn.Config, settings: Settings, app: App) -> None:
        super().__init__(config)
        self.settings = settings
        self.app = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        app: App = self.app
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{self.settings.port}"
        lines = [f"runplane is serving on {base} (API docs: {base}/api/v1/docs)"]
        state = app.node
        if state.started:
            if state.new_admin_password is not None:
                # The one place secrets are ever printed: these lines, on the first start.
                lines.append(
                    f"Sign in to the console at {base}/ as admin with password "
                    f"{state.new_admin_password} (shown only now)."
                )
            if state.new_admin_token is not None:
                authorization = f"'Authorization: Bearer {state.new_admin_token}'"
                lines.append(
                    "The bearer token below is the admin token of workspace 'default', "
                    "shown only now: keep it (runplane login --token ...)."
                )
            elif self.settings.admin_token is not None:
                authorization = '"Authorization: Bearer $RUNPLANE_ADMIN_TOKEN"'
            else:
                authorization = '"Authorization: Bearer $RUNPLANE_TOKEN"'
            if state.demo_ready:
                lines.append("Start the demo process and wait for its result:")
                lines.append(demo.curl_line(base, authorization))
            else:
                lines.append("List the processes:")
                lines.append(f"curl -s '{base}/api/v1/processes' -H {authorization}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Before uvicorn waits for open requests: a long poll would hold it for the rest
        # of its wait (up to the graceful timeout), a follow or a stream for good.
        self.app.node.end_long_polls()
        await super().shutdown(sockets)


def configure_logging(level: str) -> None:
    """Plain, one-line log records on stderr."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def run(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM."""
    configure_logging(settings.log_level)
    app = create_app(settings)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=False,  # no trusted proxy in front by default
        timeout_graceful_shutdown=int(settings.drain_timeout_seconds) + 5,
    )
    server = _Server(config, settings, app)
    server.run()  # uvicorn picks the loop: uvloop when installed
