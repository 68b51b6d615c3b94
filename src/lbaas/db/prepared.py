"""Hot-path statements compiled once per dialect and run on the driver's cursor.

SQLAlchemy Core costs ~25-50 µs per ``execute`` on top of the driver (cache lookup, parameter
construction, result metadata, events): more than SQLite itself spends on a primary-key
lookup. For the handful of statements every request runs (authentication, one load balancer's
view, the seed PATCH's lock, tags and update), :class:`Prepared` compiles the Core statement
once per dialect, keeps the SQL text and the types' result processors, and runs it on the
connection's own DBAPI cursor, inside the caller's transaction. The statement is still
written with Core against ``db.tables`` (one place names columns); rows come back as named
tuples with the same values (``DateTime`` as ``datetime``, ``Boolean`` as ``bool``, ``JSON``
parsed) that Core would give.

Only plain parameters are supported (no expanding ``IN``): a statement that needs more stays
on Core.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect


@dataclass(frozen=True)
class _Plan:
    sql: str
    positional: tuple[str, ...] | None  # bind names in order (qmark), or None (named: pyformat)
    constants: dict[str, Any]  # binds whose value is part of the statement
    binders: dict[str, Callable[[Any], Any]]  # the types' bind processors (datetime -> text on SQLite...)
    row: type | None
    processors: tuple[Callable[[Any], Any] | None, ...]


class Prepared:
    """A Core statement run on the DBAPI cursor of the caller's connection (see the module)."""

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is not None:
            return plan
        compiled = self.statement.compile(dialect=dialect)
        sql = str(compiled)
        # Binds rendered at execution time (e.g. aggregate_strings' separator) are constants here.
        post = {compiled.bind_names[b]: b for b in compiled.literal_execute_params}
        # ... and so are constant IN lists (``state IN ('NEW', 'RUNNING')``).
        post.update(
            {
                name: b
                for b, name in compiled.bind_names.items()
                if b.expanding and not b.required and b.value is not None
            }
        )
        for name, bind in post.items():
            if bind.expanding:
                item_type = getattr(bind.type, "item_type", bind.type)
                text = ", ".join(compiled.render_literal_value(v, item_type) for v in bind.value)
            else:
                text = compiled.render_literal_value(bind.value, bind.type)
            sql = sql.replace(f"__[POSTCOMPILE_{name}]", text)
        # Literal values Core turned into binds ('\t', a CASE's '1'...) travel with the statement.
        constants = {
            compiled.bind_names[b]: b.value
            for b in compiled.binds.values()
            if not b.required and b.value is not None and b in compiled.bind_names and b not in post.values()
        }
        binders = {}
        for bind in compiled.binds.values():
            name = compiled.bind_names.get(bind)
            if name is None or name in post:
                continue
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                binders[name] = proc
        constants = {k: binders[k](v) if k in binders else v for k, v in constants.items()}
        positional = (
            tuple(n for n in compiled.positiontup if n not in post)
            if compiled.positiontup is not None
            else None
        )
        row_type, processors = None, ()
        if isinstance(self.statement, sa.Select) or getattr(self.statement, "_returning", None):
            columns = list(self.statement.selected_columns) if isinstance(self.statement, sa.Select) else []
            if not columns:
                columns = list(self.statement._returning)  # noqa: SLF001 - RETURNING columns
            names = [c.key for c in columns]
            row_type = collections.namedtuple("Row", names, rename=True)  # type: ignore[misc]
            processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        plan = _Plan(
            sql=sql,
            positional=positional,
            constants=constants,
            binders={k: v for k, v in binders.items() if k not in constants},
            row=row_type,
            processors=processors,
        )
        self._plans[dialect.name] = plan
        return plan

    def _run(self, conn: Connection, params: dict[str, Any]) -> tuple[Any, _Plan]:
        plan = self._plan(conn.dialect)
        for name, proc in plan.binders.items():
            value = params.get(name)
            if value is not None:
                params[name] = proc(value)
        values = {**plan.constants, **params} if plan.constants else params
        args: Sequence[Any] | dict[str, Any] = (
            tuple(values[k] for k in plan.positional) if plan.positional is not None else values
        )
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(plan.sql, args)
        return cursor, plan

    def _row(self, plan: _Plan, raw: Sequence[Any]) -> Any:
        values = [v if p is None or v is None else p(v) for p, v in zip(plan.processors, raw, strict=True)]
        return plan.row(*values)  # type: ignore[misc]

    def first(self, conn: Connection, **params: Any) -> Any:
        """The first row (a named tuple) or None."""
        cursor, plan = self._run(conn, params)
        try:
            raw = cursor.fetchone()
        finally:
            cursor.close()
        return None if raw is None else self._row(plan, raw)

    def all(self, conn: Connection, **params: Any) -> list[Any]:
        cursor, plan = self._run(conn, params)
        try:
            return [self._row(plan, raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()

    def execute(self, conn: Connection, **params: Any) -> int:
        """Run a statement that returns no rows; its rowcount."""
        cursor, _plan = self._run(conn, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()
