"""What can go wrong talking to a runplane server, and the one problem→error mapping.

```
RunplaneError (runplane.domain.errors)   the server answered with a problem
ClientError                              no usable answer at all
├── ServerUnreachable                    connection refused, DNS failure, ...
├── ServerTimeout                        no answer in time
└── UnexpectedResponse                   an answer that is not runplane's
```

A problem document (RFC 9457) is mapped back onto the class of the domain
error tree that carries its `code`; an unknown code falls back to the most
general class with its HTTP status, keeping the server's `status` and `code`.
"""

from __future__ import annotations

from typing import Any

import httpx

from runplane.domain import errors

PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "errors"})


class ClientError(Exception):
    """The server gave no usable answer."""

    code = "client_error"

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.url = url


class ServerUnreachable(ClientError):
    """Could not connect to the server."""

    code = "server_unreachable"


class ServerTimeout(ClientError):
    """The server did not answer in time."""

    code = "server_timeout"


class UnexpectedResponse(ClientError):
    """The server answered with something that is not a runplane response."""

    code = "unexpected_response"


def _error_classes() -> list[type[errors.RunplaneError]]:
    """The whole tree, most general first (breadth-first from the root)."""
    found: list[type[errors.RunplaneError]] = [errors.RunplaneError]
    for cls in found:
        found.extend(sub for sub in cls.__subclasses__() if sub not in found)
    return found


_CLASSES = _error_classes()
_BY_CODE: dict[str, type[errors.RunplaneError]] = {c.code: c for c in reversed(_CLASSES)}
_BY_STATUS: dict[int, type[errors.RunplaneError]] = {c.status: c for c in reversed(_CLASSES)}


def error_class(code: str | None, status: int) -> type[errors.RunplaneError]:
    """The domain error class for a problem's `code`, else for its HTTP status."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    return _BY_STATUS.get(status, errors.RunplaneError)


def error_from_problem(problem: dict[str, Any], status: int) -> errors.RunplaneError:
    """Turn a problem document into the matching domain error instance."""
    code = problem.get("code")
    code = code if isinstance(code, str) else None
    cls = error_class(code, status)
    detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
    listed = problem.get("errors")
    problems = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
    extra = {k: v for k, v in problem.items() if k not in PROBLEM_MEMBERS}
    exc = cls(str(detail), problems=problems, **extra)
    # Keep what the server said even when this SDK does not know the code yet.
    exc.status = status
    if code is not None:
        exc.code = code
    return exc


def error_from_response(response: httpx.Response) -> errors.RunplaneError:
    """Map an error response (a problem document, or anything else) to a domain error."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:200] or response.reason_phrase
        body = {"detail": f"HTTP {response.status_code}: {text}"}
    return error_from_problem(body, response.status_code)
