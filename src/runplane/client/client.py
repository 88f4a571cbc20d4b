"""`Client`: the typed SDK of runplane's native HTTP API (`/api/v1`).

One synchronous `httpx.Client` underneath; the transport is the single seam
for tests (`httpx.MockTransport`). Every error response becomes a domain error
(`runplane.domain.errors`) and every transport failure a `ClientError`, so a
caller handles two exception trees, never httpx's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import quote

import httpx

from runplane import __version__
from runplane.client.errors import (
    ClientError,
    ServerTimeout,
    ServerUnreachable,
    UnexpectedResponse,
    error_from_response,
)
from runplane.client.models import (
    ApiToken,
    CreatedWorkspace,
    Deployment,
    Environment,
    Execution,
    ExecutionPage,
    Health,
    OAuthApp,
    ProcessDetail,
    ProcessSecret,
    ProcessSummary,
    RuntimeInfo,
    Schedule,
    User,
    Version,
    Workspace,
)
from runplane.domain.states import TERMINAL

DEFAULT_SERVER = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
REQUEST_TIMEOUT_SECONDS = 30.0
LONG_POLL_SECONDS = 25
# Added to a long poll's own wait, so the server answers before httpx gives up.
LONG_POLL_MARGIN_SECONDS = 15.0
TERMINAL_STATUSES = frozenset(s.value for s in TERMINAL)


class Client:
    """A connection to one runplane server."""

    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        token: str | None = None,
        timeout_seconds: float = REQUEST_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = _base_url(server)
        headers = {"Accept": "application/json", "User-Agent": f"runplane/{__version__}"}
        if token:
            _check_token(token, self.server)
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.server + API_PREFIX,
            headers=headers,
            timeout=timeout_seconds,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connections."""
        self._http.close()

    # -- health and processes -------------------------------------------------

    def health(self) -> Health:
        """The server's liveness and version."""
        return cast(Health, self._json("GET", "/health"))

    def list_processes(self) -> list[ProcessSummary]:
        """Every process of the workspace."""
        return cast(list[ProcessSummary], self._json("GET", "/processes")["items"])

    def get_process(self, process: str) -> ProcessDetail:
        """A process with its versions and deployments."""
        return cast(ProcessDetail, self._json("GET", f"/processes/{_seg(process)}"))

    def list_environments(self) -> list[Environment]:
        """Every environment of the workspace."""
        return cast(list[Environment], self._json("GET", "/environments")["items"])

    def list_runtimes(self) -> list[RuntimeInfo]:
        """Every runtime registered in the workspace, with its state and last heartbeat."""
        return cast(list[RuntimeInfo], self._json("GET", "/runtimes")["items"])

    # -- versions and deployments ----------------------------------------------

    def upload_version(
        self, process: str, bundle: bytes, task: str | None = None
    ) -> tuple[Version, bool]:
        """Store a bundle (zip) as a version; True when the content was new. `task`: the
        task a Robocorp robot's process runs."""
        response = self._send(
            "POST",
            f"/processes/{_seg(process)}/versions",
            content=bundle,
            headers={"Content-Type": "application/zip"},
            params={"task": task} if task else None,
        )
        return cast(Version, _body(response)), response.status_code == httpx.codes.CREATED

    def list_versions(self, process: str) -> list[Version]:
        """Every version of a process."""
        body = self._json("GET", f"/processes/{_seg(process)}/versions")
        return cast(list[Version], body["items"] if isinstance(body, dict) else body)

    def get_version(self, process: str, version: int) -> Version:
        """One version of a process."""
        return cast(Version, self._json("GET", f"/processes/{_seg(process)}/versions/{version}"))

    def deploy(
        self,
        process: str,
        environment: str,
        *,
        version: int | None = None,
        input_arguments: dict[str, Any] | None = None,
        invokable: bool = True,
        concurrency_limit: int | None = None,
    ) -> tuple[Deployment, bool]:
        """Deploy a version (default: the newest) to an environment; True when new."""
        response = self._send(
            "PUT",
            f"/processes/{_seg(process)}/deployments/{_seg(environment)}",
            json={
                "version": version,
                "inputArguments": input_arguments or {},
                "invokable": invokable,
                "concurrencyLimit": concurrency_limit,
            },
        )
        return cast(Deployment, _body(response)), response.status_code == httpx.codes.CREATED

    def list_deployments(
        self, *, process: str | None = None, environment: str | None = None
    ) -> list[Deployment]:
        """Deployments, optionally of one process or to one environment."""
        params = _params(process=process, environment=environment)
        return cast(list[Deployment], self._json("GET", "/deployments", params=params)["items"])

    # -- executions ------------------------------------------------------------

    def start_execution(
        self,
        process: str,
        input_arguments: dict[str, Any] | None = None,
        *,
        environment: str | None = None,
        execution_id: str | None = None,
    ) -> tuple[Execution, bool]:
        """Start a process; True when a new execution was created.

        With `execution_id` the start is idempotent (PUT): the same id with the
        same inputs answers the existing execution, with other inputs a 409.
        """
        body: dict[str, Any] = {"inputArguments": input_arguments or {}}
        if environment is not None:
            body["environment"] = environment
        path = f"/processes/{_seg(process)}/executions"
        if execution_id is None:
            return cast(Execution, self._json("POST", path, json=body)), True
        body["executionId"] = execution_id
        response = self._send("PUT", path, json=body)
        if response.status_code == httpx.codes.NO_CONTENT:
            return self.get_execution_by_client_id(process, execution_id), False
        return cast(Execution, _body(response)), True

    def get_execution(self, execution_id: str, *, wait: float | None = None) -> Execution:
        """An execution record; with `wait`, held until terminal or `wait` seconds pass."""
        params: dict[str, Any] = {}
        timeout: float | None = None
        if wait is not None:
            params["wait"] = max(0, math.ceil(wait))
            timeout = params["wait"] + LONG_POLL_MARGIN_SECONDS
        path = f"/executions/{_seg(execution_id)}"
        return cast(Execution, self._json("GET", path, params=params, timeout=timeout))

    def get_execution_by_client_id(self, process: str, execution_id: str) -> Execution:
        """An execution record by the client's execution id."""
        path = f"/processes/{_seg(process)}/executions/{_seg(execution_id)}"
        return cast(Execution, self._json("GET", path))

    def wait_for_execution(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        on_poll: Callable[[Execution], None] | None = None,
    ) -> Execution:
        """Long-poll until the execution is terminal or `timeout` seconds pass.

        Returns the last record either way; `on_poll` sees every non-final one.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait: float = LONG_POLL_SECONDS
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            record = self.get_execution(execution_id, wait=wait)
            done = record["status"] in TERMINAL_STATUSES
            if done or (deadline is not None and time.monotonic() >= deadline):
                return record
            if on_poll is not None:
                on_poll(record)

    def list_executions(
        self,
        *,
        process: str | None = None,
        status: list[str] | None = None,
        environment: str | None = None,
        since: str | None = None,
        until: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> ExecutionPage:
        """One page of executions, newest first; pass `nextCursor` back for the next."""
        params = _params(
            process=process,
            status=status or None,
            environment=environment,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
        return cast(ExecutionPage, self._json("GET", "/executions", params=params))

    def cancel_execution(self, execution_id: str) -> Execution:
        """Cancel at once when queued, or ask a running execution to stop."""
        return cast(Execution, self._json("POST", f"/executions/{_seg(execution_id)}/cancel"))

    def stream_logs(self, execution_id: str, *, follow: bool = False) -> Iterator[str]:
        """The execution's log as text chunks; with `follow`, until it is terminal."""
        params = {"follow": "true"} if follow else {}
        # A followed log may stay silent for as long as the process does.
        timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, read=None if follow else 60.0)
        path = f"/executions/{_seg(execution_id)}/logs"
        with self._stream("GET", path, params=params, timeout=timeout) as response:
            yield from response.iter_text()

    # -- API tokens (admin) ----------------------------------------------------

    def create_token(
        self,
        name: str,
        scopes: list[str],
        *,
        environments: list[str] | None = None,
        expires_in_seconds: int | None = None,
    ) -> ApiToken:
        """Create an API token; the answer's `token` is its secret, shown this once."""
        body: dict[str, Any] = {"name": name, "scopes": scopes}
        if environments:
            body["environments"] = environments
        if expires_in_seconds is not None:
            body["expiresIn"] = expires_in_seconds
        return cast(ApiToken, self._json("POST", "/tokens", json=body))

    def list_tokens(self) -> list[ApiToken]:
        """The workspace's live API tokens (never their secrets)."""
        return cast(list[ApiToken], self._json("GET", "/tokens")["items"])

    def rotate_token(self, name: str) -> ApiToken:
        """Give a token a new secret (in the answer's `token`); the old one stops working."""
        return cast(ApiToken, self._json("POST", f"/tokens/{_seg(name)}/rotate"))

    def delete_token(self, name: str) -> None:
        """Revoke a token."""
        self._send("DELETE", f"/tokens/{_seg(name)}")

    # -- OAuth2 apps (admin) ---------------------------------------------------

    def create_app(
        self, name: str, scopes: list[str], *, environments: list[str] | None = None
    ) -> OAuthApp:
        """Create an OAuth2 client-credentials app; `clientSecret` is shown this once."""
        body: dict[str, Any] = {"name": name, "scopes": scopes}
        if environments:
            body["environments"] = environments
        return cast(OAuthApp, self._json("POST", "/apps", json=body))

    def list_apps(self) -> list[OAuthApp]:
        """The workspace's live apps (never their secrets)."""
        return cast(list[OAuthApp], self._json("GET", "/apps")["items"])

    def rotate_app(self, name: str) -> OAuthApp:
        """Give an app a new `clientSecret`; the old one and its access tokens stop working."""
        return cast(OAuthApp, self._json("POST", f"/apps/{_seg(name)}/rotate"))

    def delete_app(self, name: str) -> None:
        """Delete an app; its access tokens stop working."""
        self._send("DELETE", f"/apps/{_seg(name)}")

    # -- process secrets (admin) -----------------------------------------------

    def generate_process_secret(self, process: str) -> ProcessSecret:
        """Create a process's secret (one per process); the answer's `secret`, shown once."""
        return cast(ProcessSecret, self._json("POST", f"/processes/{_seg(process)}/secret"))

    def rotate_process_secret(self, process: str) -> ProcessSecret:
        """Give a process a new secret (in the answer's `secret`); the old one stops working."""
        path = f"/processes/{_seg(process)}/secret/rotate"
        return cast(ProcessSecret, self._json("POST", path))

    def delete_process_secret(self, process: str) -> None:
        """Revoke a process's secret."""
        self._send("DELETE", f"/processes/{_seg(process)}/secret")

    def list_process_secrets(self) -> list[ProcessSecret]:
        """The processes that have a secret (never the secrets)."""
        return cast(list[ProcessSecret], self._json("GET", "/secrets")["items"])

    # -- schedules -----------------------------------------------------------------

    def create_schedule(self, process: str, environment: str, body: dict[str, Any]) -> Schedule:
        """A new schedule of a deployment: `{name, cron, timezone?, inputArguments?, missed?,
        enabled?}`."""
        path = f"/processes/{_seg(process)}/deployments/{_seg(environment)}/schedules"
        return cast(Schedule, self._json("POST", path, json=body))

    def list_schedules(self, process: str | None = None) -> list[Schedule]:
        """Every schedule (of one process), with its next due times."""
        params = {"process": process} if process else {}
        return cast(list[Schedule], self._json("GET", "/schedules", params=params)["items"])

    def get_schedule(self, schedule_id: str) -> Schedule:
        return cast(Schedule, self._json("GET", f"/schedules/{_seg(schedule_id)}"))

    def update_schedule(self, schedule_id: str, changes: dict[str, Any]) -> Schedule:
        """Change what `changes` names; a new timetable (or a resume) counts from now."""
        path = f"/schedules/{_seg(schedule_id)}"
        return cast(Schedule, self._json("PATCH", path, json=changes))

    def delete_schedule(self, schedule_id: str) -> None:
        self._send("DELETE", f"/schedules/{_seg(schedule_id)}")

    # -- workspaces and environments ---------------------------------------------

    def create_workspace(self, name: str) -> CreatedWorkspace:
        """Create a workspace (installation admin); `adminToken` is shown this once."""
        return cast(CreatedWorkspace, self._json("POST", "/workspaces", json={"name": name}))

    def list_workspaces(self) -> list[Workspace]:
        """Every workspace for the installation admin; one's own for everyone else."""
        return cast(list[Workspace], self._json("GET", "/workspaces")["items"])

    def create_environment(self, name: str) -> Environment:
        """Create an environment in the caller's workspace."""
        return cast(Environment, self._json("POST", "/environments", json={"name": name}))

    # -- users of the web console (admin) ---------------------------------------

    def create_user(
        self,
        name: str,
        role: str,
        *,
        workspace: str | None = None,
        password: str | None = None,
    ) -> User:
        """Create a user (or give an existing one the role in the workspace); without
        `password` the answer's `password` is a generated one, shown this once."""
        body = _params(name=name, role=role, workspace=workspace, password=password)
        return cast(User, self._json("POST", "/users", json=body))

    def list_users(self) -> list[User]:
        """The users holding a role in the workspace."""
        return cast(list[User], self._json("GET", "/users")["items"])

    def disable_user(self, name: str) -> User:
        """Disable a user: it cannot sign in, and its sessions end."""
        return cast(User, self._json("POST", f"/users/{_seg(name)}/disable"))

    def set_user_password(self, name: str, password: str) -> None:
        """Set a user's password; its sessions end."""
        self._send("PUT", f"/users/{_seg(name)}/password", json={"password": password})

    # -- plumbing --------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return _body(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.server) from exc
        if response.is_error:
            raise error_from_response(response)
        return response

    @contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        try:
            with self._http.stream(method, path, **kwargs) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                yield response
        except httpx.HTTPError as exc:
            raise _transport_error(exc, self.server) from exc


def _seg(value: str) -> str:
    """One URL path segment: a name or id, with `/` and friends escaped."""
    return quote(value, safe="")


def _check_token(token: str, server: str) -> None:
    """A token must fit in an HTTP header: printable ASCII (the token is never echoed)."""
    if not all(" " <= char <= "~" for char in token):
        raise ClientError(
            "the token has characters a token cannot have (control or non-ASCII "
            "characters): check RUNPLANE_TOKEN or run `runplane login`",
            url=server,
        )


def _base_url(server: str) -> str:
    try:
        url = httpx.URL(server)
    except httpx.InvalidURL as exc:
        raise ClientError(f"{server!r} is not a valid server URL: {exc}", url=server) from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ClientError(
            f"{server!r} is not a server URL: expected e.g. {DEFAULT_SERVER}", url=server
        )
    return server.rstrip("/")


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UnexpectedResponse(
            f"{response.request.url} answered HTTP {response.status_code} "
            f"with {response.headers.get('content-type', 'no content type')}, not JSON: "
            "is this a runplane server?",
            url=str(response.request.url),
        ) from exc


def _transport_error(exc: httpx.HTTPError, server: str) -> ClientError:
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        return ServerUnreachable(f"cannot reach the server at {server} ({exc})", url=server)
    if isinstance(exc, httpx.TimeoutException):
        return ServerTimeout(f"the server at {server} did not answer in time", url=server)
    return UnexpectedResponse(f"talking to the server at {server} failed: {exc}", url=server)
