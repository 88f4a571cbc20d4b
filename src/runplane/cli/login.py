"""`runplane login` / `runplane logout`: keep a server and its token in the config file.

`login` checks the token against the server before saving it, so a typo or a
revoked token is refused at once rather than at the next command. The token is
never printed, and never taken from an argument unless `--token` is given: it is
read from the terminal without echo, or as one line of stdin in scripts
(`echo "$TOKEN" | runplane login --server URL`).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer
from rich.text import Text

from runplane.cli.output import emit_json, err, out, print_error
from runplane.cli.session import (
    EXIT_FAILED,
    EXIT_USAGE,
    JsonOption,
    ServerOption,
    new_client,
    reporting_errors,
)
from runplane.client import Config, ConfigError
from runplane.client.config import (
    TOKEN_ENV,
    config_path,
    load_config,
    resolve_server,
    save_config,
)
from runplane.domain.errors import Forbidden, Unauthenticated

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help=(
            "The API token. Without it the token is read from the terminal (not echoed), "
            "or as one line of stdin when piped. An argument is visible to other local users."
        ),
        show_default=False,
    ),
]


def login(
    server: ServerOption = None,
    token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check an API token against the server and save both in the config file.

    The file is $RUNPLANE_CONFIG, else ${XDG_CONFIG_HOME:-~/.config}/runplane/config.toml,
    readable by you only. Other commands use its token unless RUNPLANE_TOKEN is set.
    """
    path = config_path()
    try:
        saved = load_config(path)
    except ConfigError as exc:  # login is how a broken file gets replaced
        if not json_output:
            err.print(f"Warning: {exc.message}; it will be replaced.", style="yellow", markup=False)
        saved = Config()
    target, _ = resolve_server(server, config=saved)
    with reporting_errors(json_mode=json_output), new_client(target) as probe:
        target = probe.server  # a malformed URL is refused before a token is asked for
    secret = token.strip() if token is not None else _read_token(json_mode=json_output)
    if not secret:
        _usage_error("no token given: pass --token, type it in, or pipe it in", json_output)
    if not all(" " <= char <= "~" for char in secret):
        _usage_error("that is not a token: it has control or non-ASCII characters", json_output)

    scoped_out = False
    with reporting_errors(json_mode=json_output), new_client(target, secret) as client:
        try:
            client.list_environments()
        except Unauthenticated as exc:
            print_error(
                f"the server at {target} refused the token: {exc.detail.rstrip('.')}; "
                f"nothing was saved",
                [],
                code=exc.code,
                status=exc.status,
                json_mode=json_output,
            )
            raise typer.Exit(EXIT_FAILED) from None
        except Forbidden:
            scoped_out = True  # a live credential, just not allowed to read environments
        save_config(path, Config(server=target, token=secret))

    if json_output:
        emit_json({"server": target, "configFile": str(path)})
        return
    out.print(Text.assemble("Logged in to ", (target, "bold"), f"; the token is saved in {path}."))
    if scoped_out:
        err.print(
            "Note: the server accepted the token, but it may not read environments: "
            "its scopes limit what commands can do.",
            style="yellow",
            markup=False,
        )
    _warn_if_overridden()


def logout(json_output: JsonOption = False) -> None:
    """Remove the token from the config file (the server is kept; the token stays valid)."""
    path = config_path()
    with reporting_errors(json_mode=json_output):
        saved = load_config(path)
        if saved.token is not None:
            if saved.server is None:
                path.unlink(missing_ok=True)
            else:
                save_config(path, Config(server=saved.server))
    if json_output:
        emit_json({"server": saved.server, "configFile": str(path)})
    elif saved.token is None:
        out.print(f"Not logged in: {path} holds no token.", markup=False)
    else:
        out.print(f"Logged out: the token is removed from {path}.", markup=False)
        err.print(
            "The token itself still works until an admin rotates or deletes it "
            "(runplane tokens rotate|delete NAME).",
            style="dim",
            markup=False,
        )
    if not json_output:
        _warn_if_overridden()


def _read_token(*, json_mode: bool) -> str:
    """The token from the terminal (hidden) or one line of stdin; "" when there is none."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return ""
    try:
        if stdin.isatty():
            # The prompt goes to stderr: with --json, stdout carries the answer only.
            return str(typer.prompt("API token", hide_input=True, err=True)).strip()
        return stdin.readline().strip()
    except (EOFError, typer.Abort):
        return ""
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (OSError, UnicodeDecodeError) as exc:
        _usage_error(f"cannot read the token from stdin: {exc}", json_mode)


def _usage_error(message: str, json_mode: bool) -> NoReturn:
    print_error(message, [], code="usage", status=None, json_mode=json_mode)
    raise typer.Exit(EXIT_USAGE)


def _warn_if_overridden() -> None:
    if os.environ.get(TOKEN_ENV, "").strip():
        err.print(
            f"Note: {TOKEN_ENV} is set, and commands use it rather than the config file.",
            style="yellow",
            markup=False,
        )
