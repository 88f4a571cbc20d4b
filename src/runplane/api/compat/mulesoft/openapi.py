"""The OpenAPI document of one process's MuleSoft-style invocation API.

Tools that generate a client from a spec (Salesforce External Services,
Anypoint Exchange consumers) import it, so `inputArguments` and `result` are
typed from the process's declared parameters and outputs, and the operation ids
are MuleSoft's (`startProcessV2`, `startProcessNonIdempotentV2`,
`getProcessesExecutionStatusV2`).
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "secret": {"type": "string", "format": "password"},
    "integer": {"type": "integer", "format": "int64"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "object": {"type": "object", "additionalProperties": True},
    "array": {"type": "array", "items": {}},
}
TOKEN_PATH = "/accounts/api/v2/oauth2/token"  # noqa: S105 - a path


def _schema(declared: dict[str, Any]) -> dict[str, Any]:
    schema = dict(_TYPES[declared["type"]])
    if declared.get("description"):
        schema["description"] = declared["description"]
    if "default" in declared and declared["type"] != "secret":
        schema["default"] = declared["default"]
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def process_openapi(
    process: str, spec: dict[str, Any], base_url: str, *, api_key: bool = False
) -> dict[str, Any]:
    """OpenAPI 3.0.3 for starting `process` and reading its executions: with OAuth2
    client credentials (v2), or with an API key in `x-apikey` (v1)."""
    parameters = spec["parameters"]
    inputs: dict[str, Any] = {
        "type": "object",
        "properties": {p["name"]: _schema(p) for p in parameters},
    }
    required = [p["name"] for p in parameters if p.get("required") and "default" not in p]
    if required:
        inputs["required"] = required
    outputs = {
        "type": "object",
        "properties": {o["name"]: _schema(o) for o in spec["outputs"]},
        "additionalProperties": True,
    }
    server_root = base_url.split("/mulesoft/")[0]
    executions = f"/processes/{process}/executions"
    error_responses = {
        "400": {"description": "Malformed request", "content": _json(_ref("Error"))},
        "401": {"description": "Missing or invalid token", "content": _json(_ref("Error"))},
        "404": {"description": "Unknown process", "content": _json(_ref("Error"))},
        "409": {
            "description": "Not invokable, or executionId reused with other inputs",
            "content": _json(_ref("Error")),
        },
        "422": {"description": "Invalid input arguments", "content": _json(_ref("Error"))},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{process} (runplane)",
            "version": str(spec.get("version", "1")),
            "description": spec.get("description") or f"Start {process} and read its executions.",
        },
        "servers": [{"url": base_url}],
        "security": [{"apiKey": []}] if api_key else [{"clientCredentials": []}],
        "paths": {
            executions: {
                "put": {
                    "operationId": "startProcessV2",
                    "summary": "Start the process once per executionId",
                    "requestBody": {"required": True, "content": _json(_ref("ProcessExecution"))},
                    "responses": {
                        "201": {
                            "description": "Started",
                            "content": _json(_ref("ProcessExecutionStatus")),
                        },
                        "204": {"description": "Already started with this executionId"},
                        **error_responses,
                    },
                },
                "post": {
                    "operationId": "startProcessNonIdempotentV2",
                    "summary": "Start the process with a server-made executionId",
                    "requestBody": {
                        "required": True,
                        "content": _json(_ref("ProcessExecutionParameters")),
                    },
                    "responses": {
                        "201": {
                            "description": "Started",
                            "content": _json(_ref("ProcessExecutionStatus")),
                        },
                        **error_responses,
                    },
                },
            },
            executions + "/{executionId}": {
                "get": {
                    "operationId": "getProcessesExecutionStatusV2",
                    "summary": "The status and result of an execution",
                    "parameters": [
                        {
                            "name": "executionId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The execution",
                            "content": _json(_ref("ProcessExecutionStatus")),
                        },
                        "401": error_responses["401"],
                        "404": {
                            "description": "Unknown execution",
                            "content": _json(_ref("Error")),
                        },
                    },
                }
            },
        },
        "components": {
            "securitySchemes": (
                {"apiKey": {"type": "apiKey", "in": "header", "name": "x-apikey"}}
                if api_key
                else {
                    "clientCredentials": {
                        "type": "oauth2",
                        "flows": {
                            "clientCredentials": {
                                "tokenUrl": server_root + TOKEN_PATH,
                                "scopes": {},
                            }
                        },
                    }
                }
            ),
            "schemas": {
                "InputArguments": inputs,
                "OutputArguments": outputs,
                "ProcessExecution": {
                    "type": "object",
                    "required": ["executionId"],
                    "properties": {
                        "executionId": {"type": "string"},
                        "inputArguments": _ref("InputArguments"),
                    },
                },
                "ProcessExecutionParameters": {
                    "type": "object",
                    "properties": {"inputArguments": _ref("InputArguments")},
                },
                "ExecutionError": {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                },
                "ProcessExecutionStatus": {
                    "type": "object",
                    "required": ["executionId", "status"],
                    "properties": {
                        "executionId": {"type": "string"},
                        "status": {
                            "type": "string",
                            "enum": ["notStarted", "running", "success", "error"],
                        },
                        "statusChangedAt": {"type": "string", "format": "date-time"},
                        "message": {"type": "string"},
                        "result": {
                            "nullable": True,
                            "oneOf": [_ref("OutputArguments"), _ref("ExecutionError")],
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "integer"},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }
