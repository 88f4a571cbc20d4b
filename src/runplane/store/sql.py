"""SQL expressions the two backends spell differently, as Core constructs, so that the
statements that use them are the same code on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

MICROS = 1_000_000
UNIX_EPOCH_JULIAN_DAY = 2440587.5


class epoch_us(FunctionElement[int]):
    """Microseconds since the Unix epoch of a `UTCDateTime` column, as an exact integer.

    SQLite keeps these columns as naive UTC text (`YYYY-MM-DD HH:MM:SS.ffffff`):
    whole seconds come from the first 19 characters, microseconds from the
    fraction (SQLite's date functions alone would round to milliseconds).
    PostgreSQL's `timestamptz` gives the same number through EXTRACT(EPOCH).
    """

    type = BigInteger()
    name = "epoch_us"
    inherit_cache = True


@compiles(epoch_us, "sqlite")
def _epoch_us_sqlite(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    # julianday() of whole seconds, rounded back to whole seconds, is exact and twice
    # as fast as strftime('%s'); unixepoch() would need SQLite 3.38.
    return (
        f"(CAST(ROUND((julianday(substr({value}, 1, 19)) - {UNIX_EPOCH_JULIAN_DAY})"
        f" * 86400) AS INTEGER) * {MICROS} + CAST(substr({value}, 21, 6) AS INTEGER))"
    )


@compiles(epoch_us, "postgresql")
def _epoch_us_postgresql(element: epoch_us, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {value}) * {MICROS} AS BIGINT)"


class unindexed(FunctionElement[Any]):
    """A column whose conditions must not pick the index a query walks.

    SQLite's planner takes any index that constrains a range, even when the
    query then has to sort every row of that range; the unary `+` is SQLite's
    documented way to keep a term from constraining an index. Elsewhere it is
    the column itself.
    """

    name = "unindexed"
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"
