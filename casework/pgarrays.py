"""PostgreSQL array literals for set-based writes (``unnest(%s::bigint[], …)``).

psycopg2 sends a Python list as ``ARRAY[v1, v2, …]``: one parsed constant per
element, which for a sweep batch of thousands of rows costs more than the
write itself. A list sent as one ``'{v1,v2,…}'`` literal is parsed by the
array type's input function in one go, several times faster.
"""

from __future__ import annotations

from datetime import datetime


def _element(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values) -> str:
    """The text form of a one-dimensional array; cast it in SQL (``%s::bigint[]``)."""
    return "{" + ",".join(map(_element, values)) + "}"
