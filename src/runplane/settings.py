"""Settings: one pydantic-settings class, read once at start (env prefix RUNPLANE_)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_JSON_BODY_BYTES = 1024 * 1024
MAX_BUNDLE_UPLOAD_BYTES = 64 * 1024 * 1024
MAX_ARTIFACT_BYTES = 32 * 1024 * 1024  # one file a run left in its artifacts folder


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/runplane, or ~/.local/share/runplane."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "runplane"


class Settings(BaseSettings):
    """Everything the server reads from its environment and command line."""

    model_config = SettingsConfigDict(env_prefix="RUNPLANE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    slots: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=0)
    demo: bool = True
    lease_ttl_seconds: float = Field(default=30.0, gt=0, le=30.0 * 60)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    # how often each replica looks for schedules that are due
    schedule_interval_seconds: float = Field(default=1.0, gt=0, le=30)
    drain_timeout_seconds: float = Field(default=10.0, ge=0)
    # how runtimes start executions: "warm" forks each from a fork server started once
    # (falls back to spawn where fork or pidfds are missing), "spawn" starts a fresh
    # interpreter per execution
    launcher: Literal["warm", "spawn"] = "warm"
    # zygotes of processes with `preload = true` kept at once (least recently used out)
    preload_max: int = Field(default=8, ge=1)
    # a zygote unused for this long exits
    preload_idle_seconds: float = Field(default=600.0, gt=0)
    # virtual environments of processes' dependencies a runtime keeps (least recently used out)
    environments_max: int = Field(default=16, ge=1)
    max_wait_seconds: float = Field(default=60.0, gt=0)
    # how long GET /api/v1/events can resume after an event (Last-Event-ID); older: reset
    event_retention_seconds: float = Field(default=3600.0, gt=0)
    # PostgreSQL: wake other replicas by LISTEN/NOTIFY (off: they poll each second,
    # e.g. behind a transaction-pooling proxy that cannot hold a LISTEN)
    notify: bool = True
    log_level: str = "info"
    access_log: bool = False  # one line per request on stderr, credentials redacted
    telemetry: bool = False  # FastAPI's OpenTelemetry spans/metrics/logs (needs a provider)
    auth_failure_limit: int = Field(default=10, ge=1)  # failed attempts per key per window
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    admin_token: SecretStr | None = None  # RUNPLANE_ADMIN_TOKEN: the admin token, for automation
    # RUNPLANE_ADMIN_PASSWORD: the console password of user `admin` (else generated, shown once)
    admin_password: SecretStr | None = None
    # a console session unused for this long is over (sign in again)
    session_idle_timeout_seconds: float = Field(default=8 * 3600.0, gt=0)
    # Boomi's Long members (executionDuration): ["Long", n] as real Boomi sends them, or n
    boomi_long_as_array: bool = True
    # console session cookies: Secure even when the request reached this server over plain
    # HTTP (set it behind a TLS-terminating proxy)
    cookie_secure: bool = False
    # seals secret parameters at rest; default: a key file made in the data directory
    secret_key: SecretStr | None = None
    # Also serve the MuleSoft RPA API under this path, as RPA Manager does: with
    # "/rpa/api", "/rpa/api/v2/processes/…" is "/mulesoft/rpa/api/v2/processes/…", so
    # callers change only the host of their URLs.
    mulesoft_base_path: str | None = Field(default=None, pattern=r"^(/[A-Za-z0-9._~-]+)+$")

    @property
    def resolved_database_url(self) -> str:
        """The database URL: the configured one, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'runplane.db'}"

    @property
    def heartbeat_interval_seconds(self) -> float:
        """How often a runtime renews its leases: a third of the TTL."""
        return self.lease_ttl_seconds / 3
