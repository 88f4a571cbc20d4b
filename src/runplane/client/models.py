"""The shapes the native API answers with, as TypedDicts (JSON in, plain dicts out).

Nothing is validated on the way in: the server is the authority on shapes, and
a typed dict keeps the SDK a thin, fast view of it.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class Health(TypedDict):
    """`GET /api/v1/health`."""

    status: str
    version: str


class Environment(TypedDict):
    """One item of `GET /api/v1/environments`."""

    name: str
    createdAt: str


class RuntimeInfo(TypedDict):
    """One item of `GET /api/v1/runtimes`."""

    id: str
    name: str
    environment: str | None
    slots: int
    labels: dict[str, str]
    version: str
    state: str
    startedAt: str
    lastHeartbeatAt: str


class ApiToken(TypedDict):
    """An API token; `token` (its secret) only in the answer that creates or rotates it."""

    name: str
    username: str
    scopes: list[str]
    environments: list[str] | None
    expiresAt: str | None
    createdAt: str
    token: NotRequired[str]


class OAuthApp(TypedDict):
    """An OAuth2 client-credentials app; `clientSecret` only when created or rotated."""

    name: str
    clientId: str
    scopes: list[str]
    environments: list[str] | None
    createdAt: str
    clientSecret: NotRequired[str]


class ProcessSecret(TypedDict):
    """A process's secret; `secret` only in the answer that generates or rotates it."""

    process: str
    createdAt: str
    secret: NotRequired[str]


class Workspace(TypedDict):
    """One item of `GET /api/v1/workspaces`."""

    name: str
    createdAt: str


class CreatedWorkspace(TypedDict):
    """`POST /api/v1/workspaces`: the new workspace and its admin token, shown once."""

    name: str
    environments: list[str]
    createdAt: str
    adminToken: str


class User(TypedDict):
    """A user of the web console; `password` only when the server generated it."""

    name: str
    role: str
    workspace: str
    createdAt: str
    disabled: bool
    lastSignInAt: str | None
    password: NotRequired[str]


class ProcessSummary(TypedDict):
    """One item of `GET /api/v1/processes`."""

    name: str
    latestVersion: int | None
    createdAt: str


class Parameter(TypedDict):
    """A declared input parameter of a process version."""

    name: str
    type: str
    required: bool
    default: NotRequired[Any]
    description: NotRequired[str]


class Output(TypedDict):
    """A declared output of a process version."""

    name: str
    type: str


class Version(TypedDict):
    """An immutable, content-addressed process version."""

    process: str
    version: int
    contentHash: str
    sizeBytes: int
    createdAt: str
    entrypoint: str | None
    command: list[str] | None
    timeoutSeconds: float
    retries: int
    description: str
    parameters: list[Parameter]
    outputs: list[Output]


class Deployment(TypedDict):
    """A version deployed to an environment, with its run configuration."""

    process: str
    environment: str
    version: int
    inputArguments: dict[str, Any]
    invokable: bool
    concurrencyLimit: int | None
    createdAt: str
    updatedAt: str


class ProcessDetail(TypedDict):
    """`GET /api/v1/processes/{process}`."""

    name: str
    createdAt: str
    versions: list[Version]
    deployments: list[Deployment]


class ExecutionError(TypedDict):
    """Why an execution did not succeed."""

    code: str
    message: str


class Execution(TypedDict):
    """An execution record."""

    id: str
    executionId: str | None
    process: str
    version: int
    environment: str
    status: str
    inputArguments: dict[str, Any]
    result: Any
    error: ExecutionError | None
    attempt: int
    maxAttempts: NotRequired[int]
    runtime: str | None
    cancelRequested: bool
    createdAt: str
    startedAt: str | None
    finishedAt: str | None
    durationMs: int | None
    links: dict[str, str]


class ExecutionPage(TypedDict):
    """`GET /api/v1/executions`: newest first, keyset-paginated."""

    items: list[Execution]
    nextCursor: str | None


class Schedule(TypedDict):
    """A deployment's schedule, as `/api/v1/schedules` shows it."""

    id: str
    name: str
    process: str
    environment: str
    cron: str
    timezone: str
    inputArguments: dict[str, Any]
    missed: str
    enabled: bool
    source: str
    nextDueAt: str | None
    nextDueTimes: list[str]
    lastDueAt: str | None
    lastExecutionId: str | None
    lastError: str | None
    createdAt: str
    updatedAt: str
