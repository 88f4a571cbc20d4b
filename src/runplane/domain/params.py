"""Declared process parameters and the effective input arguments of a trigger.

Effective inputs = process defaults, overlaid by the deployment's run
configuration, overlaid by the request; validated against the declared types
before anything is stored. Every problem is collected, none stops the check
early, so a caller learns everything wrong at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MASK = "***"
MAX_SHOWN_VALUE_CHARS = 40
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class ParamType(StrEnum):
    """The types a process parameter can declare."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    OBJECT = "object"
    ARRAY = "array"
    SECRET = "secret"  # noqa: S105 - a type name, not a password


_JSON_NAMES: dict[type, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    dict: "object",
    list: "array",
    type(None): "null",
}


def json_type_name(value: Any) -> str:
    """The JSON name of a value's type, as a caller would read it."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def matches(kind: ParamType, value: Any) -> bool:
    """True when `value` is of the declared type (JSON semantics: a bool is no number)."""
    if kind in (ParamType.STRING, ParamType.SECRET):
        return isinstance(value, str)
    if kind is ParamType.BOOLEAN:
        return isinstance(value, bool)
    if kind is ParamType.INTEGER:
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is ParamType.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is ParamType.OBJECT:
        return isinstance(value, dict)
    return isinstance(value, list)


@dataclass(frozen=True)
class Parameter:
    """One declared input parameter of a process version."""

    name: str
    type: ParamType
    required: bool = False
    default: Any = None
    has_default: bool = False
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored with the version and shown by the API."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "required": self.required,
        }
        if self.has_default:
            out["default"] = MASK if self.type is ParamType.SECRET else self.default
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, secret_default: Any = None) -> Parameter:
        """Rebuild a parameter from its stored JSON form."""
        kind = ParamType(data["type"])
        has_default = "default" in data
        default = data.get("default")
        if kind is ParamType.SECRET and has_default:
            default = secret_default
        return cls(
            name=data["name"],
            type=kind,
            required=bool(data.get("required", False)),
            default=default,
            has_default=has_default,
            description=data.get("description", ""),
        )


def check_values(
    params: Mapping[str, Parameter], values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Problems with `values` taken alone: unknown names and wrong types."""
    problems: list[dict[str, Any]] = []
    for name, value in values.items():
        param = params.get(name)
        if param is None:
            problems.append(
                {
                    "name": name,
                    "code": "unknown_parameter",
                    "detail": f"The process declares no parameter {name!r}.",
                }
            )
        elif not matches(param.type, value):
            problems.append(
                {
                    "name": name,
                    "code": "wrong_type",
                    "detail": f"Expected {param.type.value}, got {json_type_name(value)}.",
                }
            )
    return problems


def effective_inputs(
    params: Mapping[str, Parameter],
    run_configuration: Mapping[str, Any],
    request: Mapping[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Overlay defaults, run configuration and request; return (inputs, problems)."""
    problems = check_values(params, request)
    merged: dict[str, Any] = {p.name: p.default for p in params.values() if p.has_default}
    merged.update({k: v for k, v in run_configuration.items() if k in params})
    merged.update({k: v for k, v in request.items() if k in params})
    for param in params.values():
        if param.required and merged.get(param.name) is None:
            problems.append(
                {
                    "name": param.name,
                    "code": "missing_required",
                    "detail": f"Parameter {param.name!r} ({param.type.value}) is required.",
                }
            )
    return coerce_integers(params, merged), problems


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _from_text(kind: ParamType, text: str) -> tuple[bool, Any]:
    """(converted, value) of one text value for a parameter of type `kind`."""
    text = text.strip()
    if kind is ParamType.INTEGER:
        return (True, int(text)) if _INTEGER_TEXT.fullmatch(text) else (False, None)
    if kind is ParamType.NUMBER:
        if _INTEGER_TEXT.fullmatch(text):
            return True, int(text)
        if not _NUMBER_TEXT.fullmatch(text):
            return False, None
        number = float(text)
        return (True, number) if math.isfinite(number) else (False, None)
    if kind is ParamType.BOOLEAN:
        lowered = text.lower()
        return (lowered in ("true", "false"), lowered == "true")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return False, None
    return matches(kind, value), value


def from_text(
    params: Mapping[str, Parameter], values: Mapping[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Values sent as text (vendor properties) converted to their declared types.

    Integers and numbers from their decimal text, booleans from `true` or
    `false` (any case), objects and arrays from JSON text; string and secret
    parameters keep the text. An empty text for a parameter that is not a
    string means "not given", so its default applies. Names that declare no
    parameter and values that are not text pass unchanged, for the usual
    check to judge. Returns (values, problems); a value that does not convert
    is left out and named in a `not_convertible` problem.
    """
    out: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for name, value in values.items():
        param = params.get(name)
        kind = param.type if param is not None else ParamType.STRING
        if kind in (ParamType.STRING, ParamType.SECRET) or not isinstance(value, str):
            out[name] = value
            continue
        if not value.strip():
            continue
        converted, typed = _from_text(kind, value)
        if converted:
            out[name] = typed
            continue
        shown = value[:MAX_SHOWN_VALUE_CHARS] + ("…" if len(value) > MAX_SHOWN_VALUE_CHARS else "")
        problems.append(
            {
                "name": name,
                "code": "not_convertible",
                "detail": f"Expected {kind.value}, got {shown!r}.",
            }
        )
    return out, problems


def coerce_integers(params: Mapping[str, Parameter], values: Mapping[str, Any]) -> dict[str, Any]:
    """Values with whole floats of integer parameters as ints (3.0 → 3; some JSON
    encoders send integers that way)."""
    out = dict(values)
    for name, value in values.items():
        declared = params.get(name)
        is_int = declared is not None and declared.type is ParamType.INTEGER
        if is_int and isinstance(value, float) and value.is_integer():
            out[name] = int(value)
    return out


def split_secrets(
    params: Mapping[str, Parameter], inputs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split inputs into (public with secrets masked, secrets only)."""
    public: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for name, value in inputs.items():
        param = params.get(name)
        if param is not None and param.type is ParamType.SECRET and value is not None:
            public[name] = MASK
            secrets[name] = value
        else:
            public[name] = value
    return public, secrets


def out_of_range(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Problems for values JSON storage cannot hold: integers beyond 64 bits, anywhere."""

    def fits(value: Any) -> bool:
        if isinstance(value, int) and not isinstance(value, bool):
            return -(2**63) <= value < 2**64
        if isinstance(value, dict):
            return all(fits(v) for v in value.values())
        if isinstance(value, list):
            return all(fits(v) for v in value)
        return True

    return [
        {
            "name": name,
            "code": "out_of_range",
            "detail": "Integers must fit in 64 bits.",
        }
        for name, value in inputs.items()
        if not fits(value)
    ]


def fingerprint(environment_id: str, inputs: Mapping[str, Any]) -> str:
    """A digest of a trigger's meaning, to tell a repeat from a different request.

    Computed over the validated effective inputs (not the raw bytes), so key
    order, whitespace and spelled-out defaults do not make a repeat "different".
    Canonical form: compact JSON, keys sorted at every level, UTF-8.
    """
    canonical = json.dumps(
        {"environment": environment_id, "inputs": inputs},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
