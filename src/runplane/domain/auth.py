"""Who is calling: scopes, and the principal a credential resolves to.

Visibility is per workspace: objects of another workspace do not exist for a
principal (404). Within its workspace a principal may be limited to some
environments and, for a per-process secret, to one process; acting outside
those limits, or without the scope an action needs, is 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from runplane.domain.errors import Forbidden


class Scope(StrEnum):
    """What a credential may do. `admin` implies every other scope."""

    EXECUTIONS_START = "executions:start"
    EXECUTIONS_READ = "executions:read"
    PROCESSES_WRITE = "processes:write"
    RUNTIME = "runtime"
    ADMIN = "admin"


class CredentialKind(StrEnum):
    """The kinds of credentials: bearer-like secrets stored hashed in one table, and
    the sessions of signed-in users (their own table, domain/users.py)."""

    API_TOKEN = "api_token"  # noqa: S105 - kind names, not secrets
    PROCESS_SECRET = "process_secret"  # noqa: S105
    ACCESS_TOKEN = "access_token"  # noqa: S105
    SESSION = "session"
    # a Robocorp robot's run: its work items only, while the run holds its lease
    RUN_TOKEN = "run_token"  # noqa: S105


@dataclass(frozen=True)
class Principal:
    """The caller a credential resolves to."""

    workspace_id: str
    credential_id: str
    kind: CredentialKind
    name: str
    scopes: frozenset[Scope]
    environment_ids: frozenset[str] | None = None  # None: every environment
    process_id: str | None = None  # a per-process secret: this process only
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        """True once the credential's expiry has passed."""
        return self.expires_at is not None and self.expires_at <= now

    def has(self, scope: Scope) -> bool:
        """True when the principal holds `scope` (admin holds every scope)."""
        return scope in self.scopes or Scope.ADMIN in self.scopes

    def require(self, scope: Scope) -> None:
        """Forbidden unless the principal holds `scope`."""
        if not self.has(scope):
            raise Forbidden(f"This credential lacks the scope {scope.value!r}.", scope=scope.value)

    def require_full_admin(self) -> None:
        """Forbidden unless the principal is an admin limited to no environment or process.

        Managing credentials is reserved to such admins: a limited admin could
        otherwise mint (or rotate its way into) a credential broader than itself.
        """
        self.require(Scope.ADMIN)
        if self.environment_ids is not None or self.process_id is not None:
            raise Forbidden(
                "Managing credentials needs an admin credential limited to no environment."
            )

    def require_not_process_secret(self) -> None:
        """Forbidden for a process secret (or another credential tied to one process):
        it starts and reads its own process only."""
        if self.process_id is not None:
            raise Forbidden("A process secret can only start and read its own process.")

    def require_catalog_read(self) -> None:
        """Forbidden unless the principal may read the catalog: processes, deployments,
        schedules (any of the read, start or write scopes, not a process secret)."""
        self.require_not_process_secret()
        self.require_any(Scope.EXECUTIONS_READ, Scope.PROCESSES_WRITE, Scope.EXECUTIONS_START)

    def require_any(self, *scopes: Scope) -> None:
        """Forbidden unless the principal holds one of `scopes`."""
        if not any(self.has(s) for s in scopes):
            names = " or ".join(repr(s.value) for s in scopes)
            raise Forbidden(f"This credential needs the scope {names}.")

    def sees_environment(self, environment_id: str) -> bool:
        """True when the principal may act in this environment."""
        return self.environment_ids is None or environment_id in self.environment_ids

    def sees_process(self, process_id: str) -> bool:
        """True when the principal may act on this process."""
        return self.process_id is None or self.process_id == process_id

    def require_target(
        self, process_id: str, process: str, environment_id: str, environment: str
    ) -> None:
        """Forbidden unless the principal may act on this process in this environment."""
        if not self.sees_process(process_id):
            raise Forbidden(f"This credential cannot act on process {process!r}.")
        if not self.sees_environment(environment_id):
            raise Forbidden(f"This credential cannot act in environment {environment!r}.")


@dataclass(frozen=True)
class OAuthApp:
    """An OAuth2 client-credentials app: exchanges its client id and secret for access tokens."""

    id: str
    workspace_id: str
    name: str
    client_id: str
    scopes: frozenset[Scope]
    environment_ids: frozenset[str] | None  # None: every environment
    created_at: datetime

    def grants(self, scope: Scope) -> bool:
        """True when the app may hand `scope` to its access tokens (admin grants every scope)."""
        return scope in self.scopes or Scope.ADMIN in self.scopes
