"""The one error tree of runplane.

```
RunplaneError (500 internal)
├── BadRequest (400)            MalformedJson, InvalidScope, UnsupportedGrantType
├── Unauthenticated (401)       InvalidCredentials, InvalidClient, SessionExpired
├── Forbidden (403)
├── MethodNotAllowed (405)
├── NotFound (404)              WorkspaceNotFound, EnvironmentNotFound, ProcessNotFound,
│                               VersionNotFound, DeploymentNotFound, ExecutionNotFound,
│                               CredentialNotFound, AppNotFound, RuntimeNotFound,
│                               UserNotFound
├── Conflict (409)              ExecutionIdConflict, ProcessNotDeployed, ProcessNotInvokable,
│                               InvalidTransition, ExecutionFinished, StaleLease,
│                               RuntimeNameTaken, UserExists
├── PayloadTooLarge (413)
├── UnsupportedMediaType (415)
├── TooManyRequests (429)
└── Unprocessable (422)         InvalidRequest, InvalidInputArguments, InvalidManifest,
                                InvalidBundle, EnvironmentRequired
```

Each class carries its HTTP status and a stable machine `code`; its docstring
is the human title. Every surface (native API, token endpoints, vendor
routers) renders these in its own format, in one place per surface. Each
`problems` entry names one thing wrong: `{"name": ..., "code": ..., "detail": ...}`.
"""

from __future__ import annotations

from typing import Any


class RunplaneError(Exception):
    """Unexpected error."""

    status = 500
    code = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        problems: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        self.detail = detail or self.title()
        self.problems = problems or []
        self.extra = extra
        super().__init__(self.detail)

    @classmethod
    def title(cls) -> str:
        """The one-line human title: the first line of the class docstring."""
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


class BadRequest(RunplaneError):
    """The request is malformed."""

    status = 400
    code = "bad_request"


class MalformedJson(BadRequest):
    """The request body is not valid JSON."""

    code = "malformed_json"


class InvalidScope(BadRequest):
    """The requested scope is unknown or not granted to this client."""

    code = "invalid_scope"


class UnsupportedGrantType(BadRequest):
    """Only the client_credentials grant is supported."""

    code = "unsupported_grant_type"


class NotFound(RunplaneError):
    """The resource does not exist."""

    status = 404
    code = "not_found"


class WorkspaceNotFound(NotFound):
    """No workspace with this name."""

    code = "workspace_not_found"


class EnvironmentNotFound(NotFound):
    """No environment with this name in the workspace."""

    code = "environment_not_found"


class ProcessNotFound(NotFound):
    """No process with this name."""

    code = "process_not_found"


class VersionNotFound(NotFound):
    """No such version of the process."""

    code = "version_not_found"


class DeploymentNotFound(NotFound):
    """The process is not deployed to this environment."""

    code = "deployment_not_found"


class CredentialNotFound(NotFound):
    """No such credential."""

    code = "credential_not_found"


class AppNotFound(NotFound):
    """No OAuth2 client app with this name."""

    code = "app_not_found"


class UserNotFound(NotFound):
    """No user with this name in the workspace."""

    code = "user_not_found"


class ExecutionNotFound(NotFound):
    """No execution with this id."""

    code = "execution_not_found"


class RuntimeNotFound(NotFound):
    """No runtime with this id."""

    code = "runtime_not_found"


class WorkItemNotFound(NotFound):
    """No work item with this id."""

    code = "work_item_not_found"


class Unauthenticated(RunplaneError):
    """A credential is required."""

    status = 401
    code = "unauthenticated"


class InvalidCredentials(Unauthenticated):
    """The credential is not valid (unknown, expired or revoked)."""

    code = "invalid_credentials"


class InvalidClient(InvalidCredentials):
    """Client authentication failed (unknown client, wrong secret or deleted app)."""

    code = "invalid_client"


class SessionExpired(Unauthenticated):
    """The session is unknown, ended or idle too long: sign in again."""

    code = "session_expired"


class Forbidden(RunplaneError):
    """The credential does not allow this."""

    status = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    """The request lacks a valid CSRF token: reload the page and try again."""

    code = "csrf_failed"


class MethodNotAllowed(RunplaneError):
    """This method is not allowed on this resource."""

    status = 405
    code = "method_not_allowed"


class Conflict(RunplaneError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"


class ExecutionIdConflict(Conflict):
    """This executionId was already used with different input arguments."""

    code = "execution_id_conflict"


class WorkItemConflict(Conflict):
    """The work item is not in a state that allows this."""

    code = "work_item_conflict"


class ProcessNotDeployed(Conflict):
    """The process is not deployed to the target environment."""

    code = "process_not_deployed"


class ProcessNotInvokable(Conflict):
    """The process is deployed but may not be started over the API."""

    code = "process_not_invokable"


class InvalidTransition(Conflict):
    """The execution cannot make this state change."""

    code = "invalid_transition"


class ExecutionFinished(Conflict):
    """The execution has already finished."""

    code = "execution_finished"


class RuntimeNameTaken(Conflict):
    """Another runtime this caller cannot take over is registered under this name."""

    code = "runtime_name_taken"


class UserExists(Conflict):
    """A user with this name exists."""

    code = "user_exists"


class StaleLease(Conflict):
    """The lease on this execution is no longer held by the caller."""

    code = "stale_lease"


class PayloadTooLarge(RunplaneError):
    """The request body is too large."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(RunplaneError):
    """The request body has an unsupported media type."""

    status = 415
    code = "unsupported_media_type"


class TooManyRequests(RunplaneError):
    """Too many failed attempts: wait before trying again."""

    status = 429
    code = "too_many_requests"


class Unavailable(RunplaneError):
    """The service cannot answer right now: try again shortly."""

    status = 503
    code = "unavailable"


class DatabaseUnavailable(Unavailable):
    """The database is not reachable right now: try again shortly."""

    code = "database_unavailable"


class Unprocessable(RunplaneError):
    """The request is well-formed but cannot be processed."""

    status = 422
    code = "unprocessable"


class InvalidRequest(Unprocessable):
    """The request does not match the expected shape."""

    code = "invalid_request"


class InvalidInputArguments(Unprocessable):
    """The input arguments do not match the process parameters."""

    code = "invalid_input_arguments"


class InvalidManifest(Unprocessable):
    """The process manifest (runplane.toml) is invalid."""

    code = "invalid_manifest"


class InvalidBundle(Unprocessable):
    """The process bundle is not a valid archive."""

    code = "invalid_bundle"


class EnvironmentRequired(Unprocessable):
    """The process is deployed invokable to several environments: name one."""

    code = "environment_required"


class PrepareFailed(Unprocessable):
    """An environment a runtime was asked to build first (``--prepare``) could not be built."""

    code = "dependencies_failed"
