"""An ExecutionRequest body (JSON or XML) → what to start, where, with which inputs.

Both kinds of property map onto input arguments by name: a dynamic process
property's `name`, a process property value's `key` (its `componentId` is
not used: a runplane process has one set of parameters). Process property
values win over dynamic properties of the same name; a value with
`useDefault: true` (or a null value) is left out, so the parameter's default
applies. Values
stay text here; the start converts them to the declared types.

`@type` members and members this surface does not use are ignored. A
single object stands for a list of one (XML-to-JSON converters make those).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from runplane.api.compat.boomi.formats import local_name
from runplane.domain import errors

ROOT = "ExecutionRequest"


@dataclass(frozen=True)
class Trigger:
    """What an ExecutionRequest asks for."""

    atom: str  # an environment or runtime, by name or id
    process: str  # processId, else processName: a process by name or id
    process_id: str | None  # as sent, echoed back
    properties: dict[str, Any]


def _refuse(name: str, detail: str) -> errors.BadRequest:
    return errors.BadRequest(
        "The ExecutionRequest is not valid.",
        problems=[{"name": name, "code": "invalid", "detail": detail}],
    )


def _text(doc: dict[str, Any], name: str, where: str = "") -> str | None:
    value = doc.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise _refuse(where + name, "A string (no NUL).")
    return value


def _objects(value: Any, where: str) -> list[dict[str, Any]]:
    """A member holding a list of objects (or one object, or nothing)."""
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _refuse(f"{where}[{i}]", "An object.")
    return items


def _put(properties: dict[str, Any], name: str, value: Any) -> None:
    """Set a property; a null or absent value is not given."""
    if value is None:
        properties.pop(name, None)
    else:
        properties[name] = value


def _properties(doc: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    dynamic = _objects(doc.get("DynamicProcessProperties"), "DynamicProcessProperties")
    for group in dynamic:
        where = "DynamicProcessProperties.DynamicProcessProperty"
        for i, item in enumerate(_objects(group.get("DynamicProcessProperty"), where)):
            name = _text(item, "name", f"{where}[{i}].")
            if name is None:
                raise _refuse(f"{where}[{i}].name", "A non-empty string.")
            _put(properties, name, item.get("value"))
    for group in _objects(doc.get("ProcessProperties"), "ProcessProperties"):
        where = "ProcessProperties.ProcessProperty"
        for i, prop in enumerate(_objects(group.get("ProcessProperty"), where)):
            values = f"{where}[{i}].ProcessPropertyValue"
            for j, item in enumerate(_objects(prop.get("ProcessPropertyValue"), values)):
                key = _text(item, "key", f"{values}[{j}].")
                if key is None:
                    raise _refuse(f"{values}[{j}].key", "A non-empty string.")
                if item.get("useDefault") in (True, "true"):
                    properties.pop(key, None)
                    continue
                _put(properties, key, item.get("value"))
    return properties


def from_document(doc: Any) -> Trigger:
    """The trigger of an ExecutionRequest in its JSON form."""
    if not isinstance(doc, dict):
        raise errors.BadRequest("The request body must be an ExecutionRequest object.")
    atom = _text(doc, "atomId")
    if atom is None:
        raise _refuse("atomId", "Required: the atom (a runplane environment or runtime).")
    process_id = _text(doc, "processId")
    process = process_id or _text(doc, "processName")
    if process is None:
        raise _refuse("processId", "Required (or processName): the process to run.")
    return Trigger(atom=atom, process=process, process_id=process_id, properties=_properties(doc))


def _fields(element: Element, names: tuple[str, ...]) -> dict[str, Any]:
    """Named members of an element: attributes, or child elements' text."""
    out: dict[str, Any] = {local_name(k): v for k, v in element.attrib.items()}
    for child in element:
        name = local_name(child.tag)
        if name in names and len(child) == 0:
            out[name] = child.text or ""
    return {k: v for k, v in out.items() if k in names}


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if local_name(child.tag) == name]


def from_xml(root: Element) -> Trigger:
    """The trigger of an ExecutionRequest in its XML form (namespace optional)."""
    if local_name(root.tag) != ROOT:
        raise errors.BadRequest(f"The XML root element must be {ROOT}, not {local_name(root.tag)}.")
    doc = _fields(root, ("atomId", "processId", "processName"))
    doc["DynamicProcessProperties"] = [
        {
            "DynamicProcessProperty": [
                _fields(p, ("name", "value")) for p in _children(group, "DynamicProcessProperty")
            ]
        }
        for group in _children(root, "DynamicProcessProperties")
    ]
    doc["ProcessProperties"] = [
        {
            "ProcessProperty": [
                {
                    "ProcessPropertyValue": [
                        _fields(v, ("key", "value", "useDefault"))
                        for v in _children(prop, "ProcessPropertyValue")
                    ]
                }
                for prop in _children(group, "ProcessProperty")
            ]
        }
        for group in _children(root, "ProcessProperties")
    ]
    return from_document(doc)
