"""People who sign in to the web console: users, their role per workspace, sessions.

A user's name is unique in the installation; what the user may do is a role
per workspace, and a signed-in session acts in one workspace with the scopes
of the user's role there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from runplane.domain.auth import CredentialKind, Principal, Scope

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1000  # bounds the hashing work one request can ask for
SESSION_ID_CHARS = 16  # of the session's digest, in its principal's credential_id
SESSION_CREDENTIAL_PREFIX = "session:"


class Role(StrEnum):
    """What a user may do in a workspace."""

    ADMIN = "admin"  # everything
    OPERATOR = "operator"  # start, cancel, read
    VIEWER = "viewer"  # read


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ADMIN: frozenset({Scope.ADMIN}),
    Role.OPERATOR: frozenset({Scope.EXECUTIONS_START, Scope.EXECUTIONS_READ}),
    Role.VIEWER: frozenset({Scope.EXECUTIONS_READ}),
}


@dataclass(frozen=True)
class User:
    """A user as seen from one workspace: its role there."""

    id: str
    name: str
    role: Role
    workspace: str  # the workspace's name
    created_at: datetime
    disabled: bool
    last_sign_in_at: datetime | None


@dataclass(frozen=True)
class Session:
    """A signed-in session (stored by the digest of its token) with its user's state."""

    id: str  # hex SHA-256 of the session token
    user_id: str
    user_name: str
    workspace_id: str
    role: Role | None  # None: the user has no role in the session's workspace (any more)
    user_disabled: bool
    created_at: datetime
    last_seen_at: datetime

    def principal(self, expires_at: datetime) -> Principal:
        """The caller this session stands for (its role's scopes in its workspace)."""
        assert self.role is not None
        return Principal(
            workspace_id=self.workspace_id,
            credential_id=session_credential_id(self.id),
            kind=CredentialKind.SESSION,
            name=self.user_name,
            scopes=ROLE_SCOPES[self.role],
            expires_at=expires_at,
        )


@dataclass(frozen=True)
class SignedIn:
    """A successful sign-in: the session token (shown once) and what it acts as."""

    token: str = field(repr=False)
    user: User
    workspace_id: str
    csrf_token: str = field(repr=False)


def session_credential_id(session_id: str) -> str:
    """A stable id for a session's principal: a prefix of its digest, never the token."""
    return SESSION_CREDENTIAL_PREFIX + session_id[:SESSION_ID_CHARS]


def session_id_prefix(credential_id: str) -> str | None:
    """The digest prefix a session principal's credential_id carries (None: no session)."""
    if not credential_id.startswith(SESSION_CREDENTIAL_PREFIX):
        return None
    return credential_id.removeprefix(SESSION_CREDENTIAL_PREFIX) or None


def parse_role(value: str) -> Role | None:
    """The role named `value`, or None when there is no such role."""
    try:
        return Role(value)
    except ValueError:
        return None


def role_problem(value: str) -> dict[str, Any] | None:
    """The problem with a role name, or None when it names a role."""
    if parse_role(value) is not None:
        return None
    allowed = ", ".join(r.value for r in Role)
    return {"name": "role", "code": "invalid_role", "detail": f"{value!r}: one of {allowed}."}


def password_problems(password: str, user_name: str) -> list[dict[str, Any]]:
    """Every problem with a new password (empty when it is acceptable)."""
    problems: list[dict[str, Any]] = []
    if len(password) < MIN_PASSWORD_CHARS:
        problems.append(
            {
                "name": "password",
                "code": "password_too_short",
                "detail": f"At least {MIN_PASSWORD_CHARS} characters.",
            }
        )
    if len(password) > MAX_PASSWORD_CHARS:
        problems.append(
            {
                "name": "password",
                "code": "password_too_long",
                "detail": f"At most {MAX_PASSWORD_CHARS} characters.",
            }
        )
    if password.strip().lower() == user_name.lower():
        problems.append(
            {
                "name": "password",
                "code": "password_is_user_name",
                "detail": "The password must not be the user name.",
            }
        )
    return problems
