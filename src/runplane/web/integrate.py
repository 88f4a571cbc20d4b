"""Integrate: ready-to-copy calls that start and track a process on this server, one per
surface, with this server's URLs and the right ids filled in and the credential left as
a shell variable."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runplane.domain.auth import Principal
from runplane.domain.model import Deployment, Process
from runplane.web.forms import parameters_of

SAMPLES: dict[str, Any] = {
    "string": "text",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "object": {},
    "array": [],
    "secret": "…",
}


@dataclass(frozen=True)
class Snippet:
    """The calls of one surface, and what the credential is."""

    surface: str
    credential: str
    commands: str


def _example_inputs(deployment: Deployment | None, spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parameters_of(spec):
        if p["type"] != "secret" and "default" in p:
            out[p["name"]] = p["default"]
        else:
            out[p["name"]] = SAMPLES.get(p["type"], "text")
    return out


def _curl(*parts: str) -> str:
    return " ".join(parts)


def _q(value: str) -> str:
    return shlex.quote(value)


def snippets(
    base: str,
    who: Principal,
    process: Process,
    deployments: Sequence[Deployment],
    spec: dict[str, Any] | None = None,
) -> list[Snippet]:
    """One snippet per surface (native, MuleSoft, Robocorp, Boomi) for this process."""
    target = next((d for d in deployments if d.invokable), None)
    environment = target.environment_name if target else "production"
    inputs = _example_inputs(target, spec or {})
    name, ws = process.name, who.workspace_id
    native_body = json.dumps(
        {"executionId": "order-1", "inputArguments": inputs, "environment": environment}
    )
    native = "\n".join(
        (
            _curl(
                "curl -s -X PUT",
                _q(f"{base}/api/v1/processes/{name}/executions"),
                '-H "Authorization: Bearer $RUNPLANE_TOKEN"',
                "-H 'Content-Type: application/json'",
                "-d",
                _q(native_body),
            ),
            _curl(
                "curl -s",
                _q(f"{base}/api/v1/processes/{name}/executions/order-1?wait=30"),
                '-H "Authorization: Bearer $RUNPLANE_TOKEN"',
            ),
        )
    )
    mulesoft_body = json.dumps({"executionId": "order-1", "inputArguments": inputs})
    mulesoft = "\n".join(
        (
            _curl(
                "ACCESS_TOKEN=$(curl -s -X POST",
                _q(f"{base}/accounts/api/v2/oauth2/token"),
                '-u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials',
                "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
            ),
            _curl(
                "curl -s -X PUT",
                _q(f"{base}/mulesoft/rpa/api/v2/processes/{name}/executions"),
                '-H "Authorization: Bearer $ACCESS_TOKEN"',
                "-H 'Content-Type: application/json'",
                "-d",
                _q(mulesoft_body),
            ),
            _curl(
                "curl -s",
                _q(f"{base}/mulesoft/rpa/api/v2/processes/{name}/executions/order-1"),
                '-H "Authorization: Bearer $ACCESS_TOKEN"',
            ),
        )
    )
    runs = f"{base}/workspace-v1/workspaces/{ws}/processes/{name}/runs"
    robocorp = "\n".join(
        (
            _curl(
                "curl -s -X POST",
                _q(runs),
                '-H "robocloud-process-secret: $PROCESS_SECRET"',
                "-H 'Content-Type: application/json'",
                "-d",
                _q(json.dumps({"variables": inputs})),
            ),
            _curl(
                "curl -s",
                _q(runs + "/") + '"$RUN_ID"',
                '-H "robocloud-process-secret: $PROCESS_SECRET"',
            ),
        )
    )
    properties = [
        {"name": k, "value": v if isinstance(v, str) else json.dumps(v)} for k, v in inputs.items()
    ]
    boomi_body = json.dumps(
        {
            "@type": "ExecutionRequest",
            "atomId": environment,
            "processId": name,
            "DynamicProcessProperties": {"DynamicProcessProperty": properties},
        }
    )
    boomi = "\n".join(
        (
            _curl(
                "curl -s -X POST",
                _q(f"{base}/api/rest/v1/{ws}/ExecutionRequest"),
                '-u "BOOMI_TOKEN.user@example.com:$RUNPLANE_TOKEN"',
                "-H 'Content-Type: application/json' -H 'Accept: application/json'",
                "-d",
                _q(boomi_body),
            ),
            _curl(
                "curl -s",
                _q(f"{base}/api/rest/v1/{ws}/ExecutionRecord/async/") + '"$REQUEST_ID"',
                '-u "BOOMI_TOKEN.user@example.com:$RUNPLANE_TOKEN"',
            ),
        )
    )
    return [
        Snippet("Native API", "RUNPLANE_TOKEN: an API token with executions:start", native),
        Snippet(
            "MuleSoft RPA",
            "CLIENT_ID and CLIENT_SECRET: an OAuth app (Credentials)",
            mulesoft,
        ),
        Snippet(
            "Robocorp Control Room",
            "PROCESS_SECRET: this process's secret (Credentials); RUN_ID: the id the first "
            "call answered",
            robocorp,
        ),
        Snippet(
            "Boomi AtomSphere",
            "RUNPLANE_TOKEN: an API token; REQUEST_ID: the requestId the first call answered",
            boomi,
        ),
    ]
