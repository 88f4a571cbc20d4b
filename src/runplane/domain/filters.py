"""A filter over executions: conditions on named fields, grouped by all / any / not.

Vendor query languages (Boomi's QueryFilter) translate into this; the store
turns it into SQL, so a filter never means loading everything.

```
Filter = Condition(field, op, values) | AllOf(parts) | AnyOf(parts) | Not(part)
```

`AllOf(())` matches every execution, `AnyOf(())` none.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Field(StrEnum):
    """What a condition looks at."""

    ID = "id"
    STATUS = "status"  # values: Status members
    PROCESS_ID = "process_id"
    PROCESS_NAME = "process_name"
    ENVIRONMENT_ID = "environment_id"
    ENVIRONMENT_NAME = "environment_name"
    CREATED_AT = "created_at"  # values: aware datetimes
    UPDATED_AT = "updated_at"


class Op(StrEnum):
    """How a condition compares: membership, or an order comparison with one value."""

    IN = "in"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"


@dataclass(frozen=True)
class Condition:
    """`field op values`: IN any of the values, or compared with the one value."""

    field: Field
    op: Op
    values: tuple[Any, ...]


@dataclass(frozen=True)
class AllOf:
    """Every part holds (none: always true)."""

    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one part holds (none: never true)."""

    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """The part does not hold."""

    part: Filter


Filter = Condition | AllOf | AnyOf | Not

EVERYTHING: Filter = AllOf(())
NOTHING: Filter = AnyOf(())
