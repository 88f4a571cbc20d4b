"""The typed SDK of runplane's native HTTP API, used by the CLI (and remote runtimes)."""

from __future__ import annotations

from runplane.client.client import DEFAULT_SERVER, TERMINAL_STATUSES, Client
from runplane.client.config import Config, ConfigError, Resolved, config_path, resolve
from runplane.client.errors import (
    ClientError,
    ServerTimeout,
    ServerUnreachable,
    UnexpectedResponse,
    error_from_problem,
    error_from_response,
)

__all__ = [
    "DEFAULT_SERVER",
    "TERMINAL_STATUSES",
    "Client",
    "ClientError",
    "Config",
    "ConfigError",
    "Resolved",
    "ServerTimeout",
    "ServerUnreachable",
    "UnexpectedResponse",
    "config_path",
    "error_from_problem",
    "error_from_response",
    "resolve",
]
