"""The start form, generated from a version's declared parameters.

Each parameter is one labelled input: string → text, integer and number →
number, boolean → checkbox, object and array → a JSON text area (checked in
the browser before sending, and again here), secret → password. Values are
prefilled from the parameter's default overlaid by the deployment's run
configuration (and, to run an execution again, its inputs); secrets are never
prefilled. What comes back is text, converted to the declared types by the
same rules as every other text input (`domain.params.from_text`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from runplane.domain.params import MASK

WIDGETS = {
    "string": "text",
    "integer": "number",
    "number": "number",
    "boolean": "checkbox",
    "object": "json",
    "array": "json",
    "secret": "password",
}
FIELD_PREFIX = "input."  # form names of parameters, apart from the form's own fields


@dataclass(frozen=True)
class Field:
    """One input of the start form."""

    name: str
    type: str
    widget: str
    required: bool
    description: str
    value: str  # the prefilled text ('' for none); "true"/"false" for a checkbox
    problem: str = ""

    @property
    def form_name(self) -> str:
        """The name the input is posted under."""
        return FIELD_PREFIX + self.name

    @property
    def dom_id(self) -> str:
        """An id for the input (the label points at it)."""
        return "param-" + "".join(c if c.isalnum() else "-" for c in self.name)


def _text(kind: str, value: Any) -> str:
    if value is None or value == MASK or kind == "secret":
        return ""
    if kind == "boolean":
        return "true" if value is True else "false"
    if kind in ("object", "array"):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value)


def parameters_of(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The declared parameters of a version's spec, in declaration order."""
    params = spec.get("parameters") or []
    if isinstance(params, dict):
        return [{"name": k, **v} for k, v in params.items()]
    return list(params)


def fields(
    spec: Mapping[str, Any],
    *,
    configured: Mapping[str, Any] | None = None,
    submitted: Mapping[str, str] | None = None,
    problems: Mapping[str, str] | None = None,
) -> list[Field]:
    """The start form's inputs: defaults, then the run configuration, then `submitted`
    (what the person typed, shown again beside its problems)."""
    out = []
    for p in parameters_of(spec):
        name, kind = p["name"], p["type"]
        value = _text(kind, p.get("default"))
        if configured and name in configured:
            value = _text(kind, configured[name])
        if submitted is not None and name in submitted and kind != "secret":
            value = submitted[name]
        out.append(
            Field(
                name=name,
                type=kind,
                widget=WIDGETS.get(kind, "text"),
                required=bool(p.get("required")),
                description=p.get("description", ""),
                value=value,
                problem=(problems or {}).get(name, ""),
            )
        )
    return out


def posted(form: FormData, param: Mapping[str, Any]) -> str:
    """What was typed into a parameter's input ('' for nothing). A checkbox sends "true"
    when ticked and its hidden companion "false" always."""
    values = [v for v in form.getlist(FIELD_PREFIX + param["name"]) if isinstance(v, str)]
    if param["type"] == "boolean":
        return "true" if "true" in values else "false"
    return values[-1] if values else ""


def submitted_inputs(spec: Mapping[str, Any], form: FormData) -> dict[str, str]:
    """The parameters' texts as posted; an empty text is left out (the default applies;
    a required parameter is then reported missing)."""
    out: dict[str, str] = {}
    for p in parameters_of(spec):
        if not form.getlist(FIELD_PREFIX + p["name"]):
            continue  # not on the form: its default applies
        text = posted(form, p)
        if p["type"] not in ("string", "secret"):
            text = text.strip()
        if text:
            out[p["name"]] = text
    return out


def problems_by_field(problems: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """(parameter name → message, messages that name no parameter)."""
    by_name: dict[str, str] = {}
    other: list[str] = []
    for p in problems:
        name = str(p.get("name", ""))
        detail = str(p.get("detail", p.get("code", "invalid")))
        if name.startswith("inputArguments."):
            name = name[len("inputArguments.") :]
        if name and name not in ("environment", "executionId"):
            by_name[name] = (by_name[name] + " " if name in by_name else "") + detail
        else:
            other.append(f"{name}: {detail}" if name else detail)
    return by_name, other
