"""The lease protocol over HTTP, for a runtime on another machine (`runplane runtime`).

Same methods as `InProcessGateway`, each one request to the routes of
`api/native/runtimes.py` with a runtime token. Problems come back as the domain
errors they were raised as (a stale fencing token is `StaleLease`), so the agent
behaves the same either way. Transient failures (the connection, a 502/503/504)
are retried with backoff, except a claim's: a claim that may have been taken must
not be asked for again (the agent simply claims anew).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx

from runplane import __version__
from runplane.client.errors import (
    ClientError,
    ServerTimeout,
    ServerUnreachable,
    error_from_response,
)
from runplane.domain.model import Claim, Runtime
from runplane.domain.states import Status

log = logging.getLogger("runplane.runtime")

API_PREFIX = "/api/v1"
REQUEST_TIMEOUT_SECONDS = 30.0
CLAIM_TIMEOUT_MARGIN_SECONDS = 15.0  # the client waits this much longer than the long poll
RETRY_ATTEMPTS = 5
RETRY_BACKOFF_SECONDS = 0.25  # doubled after each failed try
RETRY_STATUSES = frozenset({502, 503, 504})
CONTENT_HASH_HEADER = "Runplane-Content-Hash"


def _claim(doc: dict[str, Any]) -> Claim:
    return Claim(
        execution_id=doc["executionId"],
        attempt=int(doc["attempt"]),
        lease_token=int(doc["leaseToken"]),
        lease_expires_at=datetime.fromisoformat(doc["leaseExpiresAt"]),
        version_id=doc["versionId"],
        content_hash=doc["contentHash"],
        spec=doc["spec"],
        inputs=doc["inputs"],
        secret_names=tuple(doc["secretNames"]),
        timeout_seconds=float(doc["timeoutSeconds"]),
        robot_run=doc.get("robotRun"),
    )


class HttpGateway:
    """The lease protocol as HTTP requests to a runplane server."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        labels: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.base_url = self.server
        self.labels = labels or {}
        # Learnt at registration: a third of the server's lease TTL.
        self.heartbeat_interval_seconds: float | None = None
        self._http = httpx.AsyncClient(
            base_url=self.server + API_PREFIX,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"runplane-runtime/{__version__}",
            },
            timeout=REQUEST_TIMEOUT_SECONDS,
            transport=transport,
            # Every request goes to this one server: over plain HTTP no TLS is ever
            # used, so its certificate store (a few MB, for the runtime's whole life)
            # is not loaded. Over HTTPS certificates are verified as usual.
            verify=httpx.URL(self.server).scheme != "http",
        )
        self._news: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def register(self, name: str, environment: str | None, slots: int) -> Runtime:
        doc = await self._json(
            "POST",
            "/runtimes",
            json={
                "name": name,
                "environment": environment,
                "slots": slots,
                "labels": self.labels,
                "version": __version__,
            },
        )
        self.heartbeat_interval_seconds = float(doc["heartbeatIntervalSeconds"])
        # The server keeps workspace and environment ids to itself: the agent needs the id.
        return Runtime(
            id=doc["id"],
            workspace_id="",
            name=doc["name"],
            environment_id=None,
            slots=int(doc["slots"]),
            labels=dict(doc["labels"]),
            version=doc["version"],
            state=doc["state"],
            started_at=datetime.fromisoformat(doc["startedAt"]),
            last_heartbeat_at=datetime.fromisoformat(doc["lastHeartbeatAt"]),
        )

    async def claim(self, runtime: Runtime, wait_seconds: float) -> Claim | None:
        # Sent again under the same claim id, a claim whose answer was lost gets the
        # lease it took back, so retrying never strands a lease.
        response = await self._request(
            "POST",
            f"/runtimes/{runtime.id}/claims",
            params={"wait": wait_seconds, "claimId": uuid.uuid4().hex},
            timeout=wait_seconds + CLAIM_TIMEOUT_MARGIN_SECONDS,
        )
        if response.status_code == 204:
            return None
        return _claim(response.json())

    async def heartbeat(self, execution_id: str, lease_token: int) -> tuple[datetime, bool]:
        doc = await self._json(
            "POST", f"/leases/{execution_id}/heartbeat", json={"leaseToken": lease_token}
        )
        cancel = bool(doc["cancelRequested"])
        if cancel:
            for event in self._news.get(execution_id, ()):
                event.set()
        return datetime.fromisoformat(doc["leaseExpiresAt"]), cancel

    async def append_log(
        self, execution_id: str, lease_token: int, attempt: int, text: str
    ) -> None:
        await self._request(
            "POST",
            f"/leases/{execution_id}/logs",
            json={"leaseToken": lease_token, "attempt": attempt, "text": text},
        )

    async def report(
        self,
        execution_id: str,
        lease_token: int,
        outcome: Status,
        *,
        result: dict[str, Any] | None,
        error_code: str | None,
        error_message: str | None,
        log: tuple[int, str] | None = None,
        robot_run: bool = False,
    ) -> Status:
        body: dict[str, Any] = {"leaseToken": lease_token, "status": outcome.value}
        if result is not None:
            body["result"] = result
        if error_code is not None:
            body["error"] = {"code": error_code, "message": error_message}
        if log is not None:
            body["log"] = {"attempt": log[0], "text": log[1]}
        if robot_run:
            body["robotRun"] = True
        doc = await self._json("POST", f"/leases/{execution_id}/report", json=body)
        return Status(doc["status"])

    async def put_artifact(
        self, execution_id: str, lease_token: int, attempt: int, name: str, content: bytes
    ) -> None:
        await self._request(
            "PUT",
            f"/leases/{execution_id}/artifacts",
            params={"leaseToken": lease_token, "attempt": attempt, "name": name},
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )

    async def release(self, execution_id: str, lease_token: int) -> Status:
        doc = await self._json(
            "POST", f"/leases/{execution_id}/release", json={"leaseToken": lease_token}
        )
        return Status(doc["status"])

    async def fetch_bundle(self, version_id: str) -> tuple[str, bytes]:
        response = await self._request("GET", f"/versions/{version_id}/bundle")
        return response.headers[CONTENT_HASH_HEADER], response.content

    async def dependencies(self, runtime: Runtime, processes: list[str]) -> list[dict[str, Any]]:
        doc = await self._json(
            "GET", f"/runtimes/{runtime.id}/dependencies", params={"process": processes}
        )
        return list(doc["items"])

    async def touch(self, runtime: Runtime, state: str) -> None:
        await self._request("POST", f"/runtimes/{runtime.id}/heartbeat", json={"state": state})

    @contextlib.asynccontextmanager
    async def changes(self, execution_id: str) -> AsyncIterator[asyncio.Event]:
        """Set when a lease heartbeat brings back a cancel request for this execution."""
        event = asyncio.Event()
        self._news[execution_id].add(event)
        try:
            yield event
        finally:
            waiters = self._news[execution_id]
            waiters.discard(event)
            if not waiters:
                del self._news[execution_id]

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._request(method, path, **kwargs)).json()

    async def _request(
        self, method: str, path: str, *, retry: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """One request; transient failures retried with backoff when `retry`."""
        attempts = RETRY_ATTEMPTS if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if last:
                    raise _transport_error(exc, self.server) from exc
                log.warning("%s %s failed (%s); retrying", method, path, type(exc).__name__)
            else:
                if response.status_code not in RETRY_STATUSES or last:
                    if response.is_error:
                        raise error_from_response(response)
                    return response
                log.warning("%s %s answered %d; retrying", method, path, response.status_code)
            await asyncio.sleep(RETRY_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _transport_error(exc: httpx.TransportError, server: str) -> ClientError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return ServerUnreachable(f"cannot reach the server at {server} ({exc})", url=server)
    if isinstance(exc, httpx.TimeoutException):
        return ServerTimeout(f"the server at {server} did not answer in time", url=server)
    return ClientError(f"talking to the server at {server} failed: {exc}", url=server)
