"""ExecutionRecord queries: Boomi's QueryFilter → a runplane filter, and query tokens.

Supported (anything else is a 400 naming it):

- `EQUALS`, `NOT_EQUALS` on `executionId`, `status`, `processId`, `processName`,
  `atomId`, `atomName`, `executionType`;
- `EQUALS`, `BETWEEN`, `GREATER_THAN`, `GREATER_THAN_OR_EQUAL`, `LESS_THAN`,
  `LESS_THAN_OR_EQUAL` on `executionTime` and `recordedDate`;

grouped with `and` / `or` over `nestedExpression`, to any depth. `processId`
and `atomId` match a runplane id or name. Times compare at whole seconds, as
records show them. `QuerySort` may order by `executionTime` (`ASC`/`DESC`;
newest first by default).

A query token is stateless: URL-safe base64 of the query as sent and the
keyset cursor of the next page, so any replica answers `queryMore` and no
table holds them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from runplane.api.compat.boomi import mapping
from runplane.domain import errors
from runplane.domain.filters import (
    EVERYTHING,
    NOTHING,
    AllOf,
    AnyOf,
    Condition,
    Field,
    Filter,
    Not,
    Op,
)

PAGE_SIZE = 100
MAX_EXPRESSIONS = 100
SECOND = timedelta(seconds=1)
LAST_YEAR = 9999


@dataclass(frozen=True)
class Query:
    """A parsed ExecutionRecord query, with the document it came from (for its tokens)."""

    matching: Filter
    newest_first: bool
    document: dict[str, Any]


def _refuse(name: str, detail: str) -> errors.BadRequest:
    return errors.BadRequest(
        "The query is not valid.",
        problems=[{"name": name, "code": "invalid_query", "detail": detail}],
    )


def _equal(field: Field, *others: Field) -> Callable[[str], Filter]:
    """A value equal to `field` (or to any of `others`)."""

    def build(value: str) -> Filter:
        options = [Condition(f, Op.IN, (value,)) for f in (field, *others)]
        return options[0] if len(options) == 1 else AnyOf(tuple(options))

    return build


def _execution_id(value: str) -> Filter:
    found = mapping.runplane_id(value, mapping.EXECUTION_ID_PREFIX)
    return NOTHING if found is None else Condition(Field.ID, Op.IN, (found,))


def _status(value: str) -> Filter:
    found = mapping.statuses(value)
    if found is None:
        raise _refuse("status", f"{value!r} is not an ExecutionRecord status.")
    return Condition(Field.STATUS, Op.IN, found)


def _execution_type(value: str) -> Filter:
    return EVERYTHING if value == mapping.EXECUTION_TYPE else NOTHING


EQUALITIES: dict[str, Callable[[str], Filter]] = {
    "executionId": _execution_id,
    "status": _status,
    "processId": _equal(Field.PROCESS_ID, Field.PROCESS_NAME),
    "processName": _equal(Field.PROCESS_NAME),
    "atomId": _equal(Field.ENVIRONMENT_ID, Field.ENVIRONMENT_NAME),
    "atomName": _equal(Field.ENVIRONMENT_NAME),
    "executionType": _execution_type,
}
TIMES = {"executionTime": Field.CREATED_AT, "recordedDate": Field.UPDATED_AT}
TIME_OPERATORS = (
    "EQUALS",
    "BETWEEN",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
)


def _time(text: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _refuse(where, f"{text!r} is not a date like 2025-01-31T23:59:59Z.") from exc
    if value.year >= LAST_YEAR:  # one second later must still be a date
        raise _refuse(where, f"{text!r}: a date before the year {LAST_YEAR}.")
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.replace(microsecond=0)


def _time_filter(field: Field, operator: str, times: list[datetime]) -> Filter:
    """Times compare at whole seconds: `= t` is `t <= x < t + 1 s`."""

    def at(op: Op, value: datetime) -> Condition:
        return Condition(field, op, (value,))

    first = times[0]
    if operator == "EQUALS":
        return AllOf((at(Op.GE, first), at(Op.LT, first + SECOND)))
    if operator == "BETWEEN":
        return AllOf((at(Op.GE, first), at(Op.LT, times[1] + SECOND)))
    if operator == "GREATER_THAN":
        return at(Op.GE, first + SECOND)
    if operator == "GREATER_THAN_OR_EQUAL":
        return at(Op.GE, first)
    if operator == "LESS_THAN":
        return at(Op.LT, first)
    return at(Op.LT, first + SECOND)


class _Translator:
    """Walks a QueryFilter expression, counting what it holds."""

    def __init__(self) -> None:
        self.seen = 0

    def expression(self, expr: Any, where: str) -> Filter:
        if not isinstance(expr, dict):
            raise _refuse(where, "An expression object.")
        self.seen += 1
        if self.seen > MAX_EXPRESSIONS:
            raise _refuse(where, f"At most {MAX_EXPRESSIONS} expressions per query.")
        operator = expr.get("operator")
        if not isinstance(operator, str):
            raise _refuse(f"{where}.operator", "A string.")
        if operator.lower() in ("and", "or"):
            nested = expr.get("nestedExpression", [])
            nested = nested if isinstance(nested, list) else [nested]
            parts = tuple(
                self.expression(e, f"{where}.nestedExpression[{i}]") for i, e in enumerate(nested)
            )
            return AllOf(parts) if operator.lower() == "and" else AnyOf(parts)
        return self.simple(expr, operator, where)

    def simple(self, expr: dict[str, Any], operator: str, where: str) -> Filter:
        prop = expr.get("property")
        arguments = expr.get("argument", [])
        arguments = arguments if isinstance(arguments, list) else [arguments]
        if not all(isinstance(a, str) and "\x00" not in a for a in arguments):
            raise _refuse(f"{where}.argument", "A list of strings (no NUL).")
        wanted = 2 if operator == "BETWEEN" else 1
        if prop in EQUALITIES and operator in ("EQUALS", "NOT_EQUALS"):
            if len(arguments) != 1:
                raise _refuse(f"{where}.argument", f"{operator} takes one argument.")
            matched = EQUALITIES[prop](arguments[0])
            return Not(matched) if operator == "NOT_EQUALS" else matched
        if prop in TIMES and operator in TIME_OPERATORS:
            if len(arguments) != wanted:
                raise _refuse(f"{where}.argument", f"{operator} takes {wanted} argument(s).")
            times = [_time(a, f"{where}.argument") for a in arguments]
            return _time_filter(TIMES[prop], operator, times)
        if prop not in EQUALITIES and prop not in TIMES:
            raise _refuse(f"{where}.property", f"Property {prop!r} is not supported in queries.")
        raise _refuse(
            f"{where}.operator", f"Operator {operator!r} is not supported on property {prop!r}."
        )


def _newest_first(sort: Any) -> bool:
    if sort is None:
        return True
    fields = sort.get("sortField", []) if isinstance(sort, dict) else None
    fields = fields if isinstance(fields, list) else [fields]
    if not fields:
        return True
    first = fields[0]
    if not isinstance(first, dict) or first.get("fieldName") != "executionTime" or len(fields) > 1:
        raise _refuse("QuerySort", "Only one sortField, executionTime, is supported.")
    order = str(first.get("sortOrder", "DESC")).upper()
    if order not in ("ASC", "DESC"):
        raise _refuse("QuerySort.sortField[0].sortOrder", "ASC or DESC.")
    return order == "DESC"


def parse(doc: Any) -> Query:
    """A query from its QueryConfig document (`{}`: every execution)."""
    if not isinstance(doc, dict):
        raise errors.BadRequest("The query must be a QueryConfig object.")
    query_filter = doc.get("QueryFilter")
    if query_filter is not None and not isinstance(query_filter, dict):
        raise _refuse("QueryFilter", "An object.")
    expression = (query_filter or {}).get("expression")
    matching = (
        EVERYTHING if expression is None else _Translator().expression(expression, "expression")
    )
    document = {"QueryFilter": query_filter, "QuerySort": doc.get("QuerySort")}
    return Query(matching, _newest_first(doc.get("QuerySort")), document)


def token(query: Query, cursor: str) -> str:
    """The queryToken that resumes `query` at `cursor`."""
    raw = orjson.dumps({"query": query.document, "cursor": cursor})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def from_token(text: str) -> tuple[Query, str]:
    """(query, cursor) of a queryToken; 400 when it is not one of ours."""
    text = text.strip().strip('"')
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        cursor = doc["cursor"]
        if not isinstance(cursor, str):
            raise TypeError
        return parse(doc["query"]), cursor
    except (binascii.Error, ValueError, TypeError, KeyError, errors.BadRequest) as exc:
        raise errors.BadRequest("The queryToken is not valid.") from exc
