"""`column IN (subquery)` that PostgreSQL plans from the subquery's real size.

A zone's subtree is a recursive CTE, and PostgreSQL cannot know how many rows a recursion yields:
it guessed 591 zones (and so 1,000 receivers) for a commune's 6 zones, and read every delivery of
the province's history by a sequential scan to find a commune's 20 receivers' ones. Written
`column = ANY(ARRAY(subquery))`, the subquery runs once first (an InitPlan) and the outer scan is
planned for a short list: an index lookup per receiver, the work growing with the zone asked
about, not with the province. Other databases get the plain `IN`."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Boolean, ColumnElement, Select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnClause
from sqlalchemy.sql.visitors import InternalTraversal


class in_subquery(ColumnElement[bool]):  # noqa: N801 (reads as an SQL operator)
    """`column` is one of the values the one-column `subquery` selects."""

    type = Boolean()
    # cached like SQLAlchemy's own constructs: compiling a report's statement took 6 ms
    _traverse_internals: ClassVar[list[tuple[str, InternalTraversal]]] = [
        ("column", InternalTraversal.dp_clauseelement),
        ("subquery", InternalTraversal.dp_clauseelement),
    ]
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any] | ColumnClause[Any], subquery: Select[Any]):
        self.column = column
        self.subquery = subquery.scalar_subquery()


@compiles(in_subquery)
def _in_default(element: in_subquery, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} IN {compiler.process(element.subquery, **kw)}"


@compiles(in_subquery, "postgresql")
def _in_postgresql(element: in_subquery, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} = ANY(ARRAY{compiler.process(element.subquery, **kw)})"


__all__ = ["in_subquery"]
