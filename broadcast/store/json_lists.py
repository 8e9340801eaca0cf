"""Membership in the JSON id lists that broadcasts and schedules keep (`zone_ids`,
`device_ids`), as set-based SQL whose size does not grow with the zone tree.

`json_list_has_any(Broadcast.zone_ids, ids)` is "the list holds one of `ids`", where `ids` is a
subquery (a zone's subtree, a commune's receivers) or a short list (a zone's ancestors):
`EXISTS (SELECT 1 FROM <elements of the list> WHERE value IN (ids))`. The elements come from a
table-valued function chosen when the statement is compiled: `json_each` on SQLite,
`json_array_elements_text` on PostgreSQL (a value that is not a JSON array, such as a stored
`null`, has no elements there). One OR of a LIKE per id, as the reports once built, made SQLite
refuse a province's query ("Expression tree is too large")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, String, exists
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class json_list_elements(FunctionElement[Any]):  # noqa: N801 (a SQL function's name)
    """The elements of a JSON array as text rows, in a column named `value`."""

    name = "json_list_elements"
    type = String()
    inherit_cache = True


@compiles(json_list_elements)
def _elements_default(element: json_list_elements, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_each({compiler.process(element.clauses, **kw)})"


@compiles(json_list_elements, "postgresql")
def _elements_postgresql(element: json_list_elements, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"json_array_elements_text(CASE WHEN json_typeof({value}) = 'array' THEN {value} END)"


def json_list_has_any(column: Any, values: Select[Any] | Iterable[str]) -> ColumnElement[bool]:
    """The JSON list in `column` holds at least one of `values` (a one-column SELECT of ids or
    a few literal ids); correlated with the row of `column` in the enclosing query."""
    elements = json_list_elements(column).table_valued("value").alias("element")
    wanted = values if isinstance(values, Select) else sorted(set(values))
    return exists().select_from(elements).where(elements.c.value.in_(wanted))


__all__ = ["json_list_elements", "json_list_has_any"]
