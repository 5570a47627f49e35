"""Set-based writes the ORM makes slow: multi-row INSERT (optionally RETURNING ids) and
UPDATE ... FROM (VALUES ...), on SQLite (>= 3.35) and PostgreSQL alike.

Django's ``bulk_create`` / ``bulk_update`` build a model instance and a CASE
expression per row; on the ingestion path that costs more than the database
work. Values are passed as parameters, never interpolated.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from django.db import connection

ColumnType = Literal["int", "text", "json", "datetime", "date", "bool"]
PG_CASTS = {
    "int": "bigint",
    "text": "text",
    "json": "jsonb",
    "datetime": "timestamptz",
    "date": "date",
    "bool": "boolean",
}
# SQLite allows 32766 parameters per statement; PostgreSQL 65535. Stay well below both.
MAX_PARAMS = 30000


class RawJson(str):
    """A JSON document already serialised (e.g. to check its size): stored as is."""


def _dump_json(value: Any) -> str:
    return value if isinstance(value, RawJson) else json.dumps(value, ensure_ascii=False, default=str)


def _same(value: Any) -> Any:
    return value


def _sqlite_datetime(value: dt.datetime) -> str:
    """What Django stores in SQLite for an aware datetime: naive UTC text."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return str(value)


def adapters(kinds: Sequence[ColumnType]) -> list:
    """One function per column turning a Python value into a driver parameter (None stays None)."""
    ops = connection.ops
    pg = connection.vendor == "postgresql"  # psycopg takes datetimes and dates as they are
    by_kind = {
        "json": _dump_json,
        "datetime": _same if pg else functools.lru_cache(maxsize=4096)(_sqlite_datetime),
        "date": _same if pg else ops.adapt_datefield_value,
    }
    return [by_kind.get(kind, _same) for kind in kinds]


def adapt(value: Any, kind: ColumnType) -> Any:
    return None if value is None else adapters([kind])[0](value)


def _adapt_row(row: Sequence[Any], funcs: list) -> list[Any]:
    return [None if value is None else f(value) for value, f in zip(row, funcs, strict=True)]


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def pg_records(names: list[str], rows: Sequence[Sequence[Any]]) -> str:
    records = []
    for row in rows:
        record = {}
        for name, value in zip(names, row, strict=True):
            record[name] = json.loads(value) if isinstance(value, RawJson) else value
        records.append(record)
    return json.dumps(records, ensure_ascii=False, default=_json_default)


def record_columns(columns: dict[str, ColumnType]) -> str:
    return ", ".join(f"{name} {PG_CASTS[kind]}" for name, kind in columns.items())


def _placeholder(kinds: Sequence[ColumnType]) -> str:
    if connection.vendor == "postgresql":
        return "(" + ", ".join(f"%s::{PG_CASTS[k]}" for k in kinds) + ")"
    return "(" + ", ".join("%s" for _ in kinds) + ")"


def _chunks(rows: Sequence[Sequence[Any]], width: int) -> Iterable[Sequence[Sequence[Any]]]:
    size = max(1, min(1000, MAX_PARAMS // max(width, 1)))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def insert_rows(
    table: str,
    columns: dict[str, ColumnType],
    rows: Sequence[Sequence[Any]],
    *,
    returning_id: bool = False,
    ignore_conflicts: bool = False,
) -> list[int]:
    """Insert ``rows`` (tuples in ``columns`` order); returns the new ids when asked, in row order."""
    names = list(columns)
    kinds = list(columns.values())
    row_sql = _placeholder(kinds)
    ids: list[int] = []
    if connection.vendor == "postgresql" and rows and not ignore_conflicts:
        # COPY is PostgreSQL's bulk path: no statement to parse, rows streamed as text. Ids,
        # when wanted, are drawn from the table's sequence first and copied in explicitly.
        funcs = adapters(kinds)
        with connection.cursor() as cursor:
            if returning_id:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(rows)]
                )
                ids = [row[0] for row in cursor.fetchall()]
                names = ["id", *names]
            with cursor.cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for n, row in enumerate(rows):
                    values = _adapt_row(row, funcs)
                    copy.write_row([ids[n], *values] if returning_id else values)
        return ids
    if connection.vendor == "postgresql" and rows and ignore_conflicts and not returning_id:
        # One statement over one JSON parameter, skipping rows that collide.
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} "
                f"FROM json_to_recordset(%s::json) AS v({record_columns(columns)}) ON CONFLICT DO NOTHING",
                [pg_records(names, rows)],
            )
        return ids
    if connection.vendor == "postgresql" and rows:
        # psycopg 3 pipelines executemany over one prepared statement: far cheaper than
        # parsing a statement with thousands of placeholders.
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES {row_sql}"
        if ignore_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        if returning_id:
            sql += " RETURNING id"
        funcs = adapters(kinds)
        params = [_adapt_row(row, funcs) for row in rows]
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            raw.executemany(sql, params, returning=returning_id)
            if returning_id:
                while True:
                    ids.append(raw.fetchone()[0])
                    if not raw.nextset():
                        break
        return ids
    funcs = adapters(kinds)
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, len(names)):
            params = [value for row in chunk for value in _adapt_row(row, funcs)]
            sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES {', '.join([row_sql] * len(chunk))}"
            if ignore_conflicts:
                sql += " ON CONFLICT DO NOTHING"
            if returning_id:
                sql += " RETURNING id"
            cursor.execute(sql, params)
            if returning_id:
                ids.extend(row[0] for row in cursor.fetchall())
    return ids


def update_from_values(
    table: str,
    columns: dict[str, ColumnType],
    rows: Sequence[Sequence[Any]],
    *,
    key: str = "id",
    assignments: dict[str, str] | None = None,
    where: str = "",
) -> int:
    """``UPDATE table SET col = v.col ... FROM (VALUES rows) v WHERE table.key = v.key``.

    ``columns`` lists the VALUES columns, the key first. ``assignments`` overrides the
    SET expression per target column (write ``{t}`` for the table and ``v`` for the values),
    and ``where`` adds a condition, e.g. to skip rows that would not change.
    """
    names = list(columns)
    kinds = list(columns.values())
    sets = assignments or {name: f"v.{name}" for name in names if name != key}
    row_sql = _placeholder(kinds)
    updated = 0
    set_sql = ", ".join(f"{col} = {expr.replace('{t}', table)}" for col, expr in sets.items())
    funcs = adapters(kinds)
    if connection.vendor == "postgresql":
        # All rows in one JSON parameter: a 1,000-row update is one parameter, not 12,000
        # (and JSON encodes far faster than psycopg dumps a Python list per column).
        sql = (
            f"UPDATE {table} SET {set_sql} FROM json_to_recordset(%s::json) AS v({record_columns(columns)}) "
            f"WHERE {table}.{key} = v.{key}"
        )
        if where:
            sql += f" AND ({where.replace('{t}', table)})"
        with connection.cursor() as cursor:
            cursor.execute(sql, [pg_records(names, rows)])
            return cursor.rowcount
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, len(names)):
            params = [value for row in chunk for value in _adapt_row(row, funcs)]
            # A subquery rather than a WITH clause: sqlite3 reports no rowcount for WITH ... UPDATE.
            aliases = ", ".join(f"column{n} AS {name}" for n, name in enumerate(names, start=1))
            sql = (
                f"UPDATE {table} SET {set_sql} FROM (SELECT {aliases} FROM "
                f"(VALUES {', '.join([row_sql] * len(chunk))})) AS v WHERE {table}.{key} = v.{key}"
            )
            if where:
                sql += f" AND ({where.replace('{t}', table)})"
            cursor.execute(sql, params)
            updated += cursor.rowcount
    return updated


def id_list_condition(column: str, ids: Sequence[int]) -> tuple[str, list[Any]]:
    """``column`` is one of ``ids``, as one parameter (an array on PostgreSQL, JSON on SQLite)."""
    if connection.vendor == "postgresql":
        # An array literal: psycopg's per-element list dumping costs more than the query.
        return f"{column} = ANY(%s::bigint[])", ["{" + ",".join(str(int(i)) for i in ids) + "}"]
    return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(list(ids))]


def text_list_condition(column: str, values: Sequence[str]) -> tuple[str, list[Any]]:
    """``column`` is one of ``values``, as one parameter."""
    if connection.vendor == "postgresql":
        quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        return f"{column} = ANY(%s::text[])", ["{" + ",".join(quoted) + "}"]
    return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(list(values), ensure_ascii=False)]
