"""`-i key=value` input arguments, coerced by the types the process declares.

string / secret → as given; integer → int; number → int or float;
boolean → true/false/yes/no/1/0; object / array → JSON. A key that names no
declared parameter is sent as a string, so the server refuses it by name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from runplane.client.models import ProcessDetail
from runplane.domain.errors import InvalidInputArguments

TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})


def _check_pairs(values: list[str] | None) -> list[str]:
    for value in values or []:
        key, sep, _ = value.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE")
    return values or []


InputOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="KEY=VALUE",
        help="An input argument; repeat for more. Values are coerced by the declared type.",
        callback=_check_pairs,
    ),
]


def coerce(kind: str, raw: str) -> Any:
    """The value of `raw` as the declared parameter type `kind`; ValueError if it is not one."""
    if kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not an integer") from None
    if kind == "number":
        return _number(raw)
    if kind == "boolean":
        word = raw.strip().lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError(f"{raw!r} is not a boolean: use true/false, yes/no or 1/0")
    if kind in ("object", "array"):
        return _json(kind, raw)
    return raw  # string, secret, or a type this client does not know yet


def _number(raw: str) -> int | float:
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    return value


def _json(kind: str, raw: str) -> Any:
    expected = dict if kind == "object" else list
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{raw!r} is not valid JSON: {exc}") from None
    if not isinstance(value, expected):
        example = '{"a": 1}' if kind == "object" else "[1, 2]"
        raise ValueError(f"{raw!r} is not a JSON {kind} such as {example}")
    return value


def input_arguments(pairs: list[str], types: Mapping[str, str]) -> dict[str, Any]:
    """Parse `key=value` pairs by the declared `types`; every problem at once."""
    arguments: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for pair in pairs:
        key, _, raw = pair.partition("=")
        key = key.strip()
        if key in seen:
            problems.append({"name": key, "code": "duplicate", "detail": "Given more than once."})
            continue
        seen.add(key)
        try:
            arguments[key] = coerce(types.get(key, "string"), raw)
        except ValueError as exc:
            problems.append({"name": key, "code": "wrong_type", "detail": f"{exc}."})
    if problems:
        raise InvalidInputArguments(
            "The input arguments do not match the process parameters.", problems=problems
        )
    return arguments


def declared_types(process: ProcessDetail, environment: str | None) -> dict[str, str]:
    """Parameter name → type of the version a start would run.

    That is the version deployed to `environment`, or to the only environment
    the process is deployed to, else the newest version.
    """
    deployments = process.get("deployments", [])
    if environment is not None:
        deployments = [d for d in deployments if d["environment"] == environment]
    versions = {v["version"]: v for v in process.get("versions", [])}
    if not versions:
        return {}
    number = deployments[0]["version"] if len(deployments) == 1 else max(versions)
    version = versions.get(number) or versions[max(versions)]
    return {p["name"]: p["type"] for p in version.get("parameters", [])}
