"""domain.filters → a SQL condition on the execution listing (executions joined with
their process and environment). Status and created_at conditions never pick an
index on SQLite, as the listing's named filters (store.listing)."""

from __future__ import annotations

import operator
from typing import Any

from sqlalchemy import and_, false, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from runplane.domain.filters import AnyOf, Condition, Field, Filter, Not, Op
from runplane.store.schema import environments, executions, processes
from runplane.store.sql import unindexed

_COLUMNS: dict[Field, ColumnElement[Any]] = {
    Field.ID: executions.c.id,
    Field.STATUS: unindexed(executions.c.status),
    Field.PROCESS_ID: executions.c.process_id,
    Field.PROCESS_NAME: processes.c.name,
    Field.ENVIRONMENT_ID: executions.c.environment_id,
    Field.ENVIRONMENT_NAME: environments.c.name,
    Field.CREATED_AT: unindexed(executions.c.created_at),
    Field.UPDATED_AT: executions.c.updated_at,
}

_COMPARE = {Op.LT: operator.lt, Op.LE: operator.le, Op.GT: operator.gt, Op.GE: operator.ge}


def _condition(c: Condition) -> ColumnElement[bool]:
    column = _COLUMNS[c.field]
    values = [getattr(v, "value", v) for v in c.values]  # Status members → their text
    if c.op is Op.IN:
        return column.in_(values) if values else false()
    (value,) = values
    compared: ColumnElement[bool] = _COMPARE[c.op](column, value)
    return compared


def where(flt: Filter) -> ColumnElement[bool]:
    """The SQL condition of a filter."""
    if isinstance(flt, Condition):
        return _condition(flt)
    if isinstance(flt, Not):
        return not_(where(flt.part))
    parts = [where(p) for p in flt.parts]
    if isinstance(flt, AnyOf):
        return or_(false(), *parts)
    return and_(true(), *parts)
