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
from django.db import DEFAULT_DB_ALIAS, connections


def fetch_one(sql: str, params) -> tuple | None:
    """Run `sql` (%s placeholders) prepared; its first row, or None."""
    wrapper, cursor = _cursor()
    with wrapper.wrap_database_errors:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone() if cursor.description else None


def execute(sql: str, params) -> int:
    """Run `sql` prepared; the number of rows it changed."""
    wrapper, cursor = _cursor()
    with wrapper.wrap_database_errors:
        cursor.execute(sql, params, prepare=True)
        return cursor.rowcount


def _cursor():
    """This thread's Django connection and a psycopg cursor on it, kept with it (a new
    connection gets a new cursor)."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    wrapper.ensure_connection()
    wrapper.validate_no_broken_transaction()
    raw = wrapper.connection
    cursor = getattr(wrapper, "_boissipay_cursor", None)
    if cursor is None or cursor.connection is not raw or cursor.closed:
        cursor = psycopg.Cursor(raw)
        wrapper._boissipay_cursor = cursor  # type: ignore[attr-defined]  # one per connection
    return wrapper, cursor
