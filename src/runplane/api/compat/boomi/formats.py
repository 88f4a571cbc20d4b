"""Boomi's two wire formats: JSON or XML bodies in, the one the caller accepts out.

Bodies are XML when `Content-Type` says so (or, with no JSON type, when they
start with `<`), else JSON. XML is parsed with defusedxml (no DTDs, no
entities). Answers are JSON unless `Accept` asks for XML and not for JSON;
`Content-Type` is exactly `application/json` or `application/xml`, since
callers pick their parser from it.

XML answers: the element is the document's `@type` in Boomi's namespace
(prefix `bns`), scalar members are attributes, lists of objects are child
elements named by their member (with `xsi:type`), `["Long", n]` is `n`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, ParseError, register_namespace, tostring

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from starlette.responses import Response

from runplane.api.native.render import JSON
from runplane.domain import errors

NAMESPACE = "http://api.platform.boomi.com/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_MEDIA_TYPE = "application/xml"
LONG = "Long"

register_namespace("bns", NAMESPACE)
register_namespace("xsi", XSI)


def wants_xml(accept: str | None) -> bool:
    """True when `Accept` asks for XML and not for JSON (JSON is the default)."""
    accept = (accept or "").lower()
    return "xml" in accept and "json" not in accept


def is_xml(content_type: str | None, raw: bytes) -> bool:
    """True when a body is XML: by its Content-Type, or by its first character."""
    content_type = (content_type or "").lower()
    if "xml" in content_type:
        return True
    return "json" not in content_type and raw.lstrip().startswith(b"<")


def read_json(raw: bytes) -> Any:
    """The JSON value of a body (`{}` when empty)."""
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.MalformedJson(f"The request body is not valid JSON: {exc}.") from exc


def read_xml(raw: bytes) -> Element:
    """The root element of an XML body, parsed safely."""
    try:
        root: Element = fromstring(raw, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise errors.BadRequest(f"The request body is not valid XML: {exc}.") from exc
    return root


def local_name(tag: str) -> str:
    """An element or attribute name without its namespace (`{ns}name` → `name`)."""
    return tag.rsplit("}", 1)[-1]


def _element(tag: str, doc: Mapping[str, Any]) -> Element:
    element = Element(f"{{{NAMESPACE}}}{tag}")
    for key, value in doc.items():
        if key == "@type" or value is None:
            continue
        if isinstance(value, list) and len(value) == 2 and value[0] == LONG:
            element.set(key, str(value[1]))
        elif isinstance(value, list):
            for item in value:
                child = _element(key, item)
                if item.get("@type"):
                    child.set(f"{{{XSI}}}type", f"bns:{item['@type']}")
                element.append(child)
        elif isinstance(value, dict):
            element.append(_element(key, value))
        elif isinstance(value, bool):
            element.set(key, "true" if value else "false")
        else:
            element.set(key, str(value))
    return element


def to_xml(doc: Mapping[str, Any]) -> bytes:
    """The XML form of a Boomi document (its `@type` names the root element)."""
    text: bytes = tostring(_element(doc["@type"], doc), encoding="utf-8", xml_declaration=True)
    return text


def render(
    doc: Mapping[str, Any],
    status_code: int = 200,
    *,
    xml: bool = False,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A Boomi document as JSON, or as XML when the caller asked for it."""
    if xml:
        return Response(
            to_xml(doc), status_code=status_code, media_type=XML_MEDIA_TYPE, headers=headers
        )
    return JSON(doc, status_code=status_code, headers=headers)
