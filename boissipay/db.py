"""Plain SQL for the hot paths, through Django's own connection (so in the caller's
transaction), as prepared statements with parameters sent apart from the text.

Django's cursors bind parameters on the client: each statement is quoted in Python and
parsed and planned again by PostgreSQL. On the purchase path, which runs a handful of
fixed statements per request, psycopg's server-side binding with `prepare=True` skips
both (ADR 0016). Errors are Django's (IntegrityError, ...), as from a Django cursor.
Statements run here are not seen by Django's query capture (DEBUG's connection.queries,
CaptureQueriesContext)."""

from __future__ import annotations

import psycopg
from django.db import connection


def fetch_one(sql: str, params) -> tuple | None:
    """Run `sql` (%s placeholders) prepared; its first row, or None."""
    cursor = _cursor()
    with connection.wrap_database_errors:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone() if cursor.description else None


def execute(sql: str, params) -> int:
    """Run `sql` prepared; the number of rows it changed."""
    cursor = _cursor()
    with connection.wrap_database_errors:
        cursor.execute(sql, params, prepare=True)
        return cursor.rowcount


def _cursor() -> psycopg.Cursor:
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    return psycopg.Cursor(connection.connection)
