"""PostgreSQL array literals for set-based writes (``unnest(%s::bigint[], …)``).

psycopg2 sends a Python list as ``ARRAY[v1, v2, …]``: one parsed constant per
element, which for a sweep batch of thousands of rows costs more than the
write itself. A list sent as one ``'{v1,v2,…}'`` literal is parsed by the
array type's input function in one go, several times faster.

A sweep batch builds about twenty of these of a thousand values each, so a
column whose values are all of one plain type (the usual case) is written in
one pass without a call per element.
"""

from __future__ import annotations

from datetime import datetime


def _quote(text: str) -> str:
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text + '"'


def _element(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    return _quote(value.isoformat() if isinstance(value, datetime) else str(value))


def array_literal(values) -> str:
    """The text form of a one-dimensional array; cast it in SQL (``%s::bigint[]``)."""
    values = values if isinstance(values, list | tuple) else list(values)
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if len(kinds) == 1:
        (kind,) = kinds
        if kind is int:
            items = ["NULL" if v is None else str(v) for v in values]
        elif kind is str:
            # Hashes, states, JSON: quoted; only text with a quote or backslash is escaped.
            items = ["NULL" if v is None else _quote(v) for v in values]
        elif issubclass(kind, datetime):
            # ISO 8601 has neither quotes nor backslashes.
            items = ["NULL" if v is None else '"' + v.isoformat() + '"' for v in values]
        else:
            items = list(map(_element, values))
    else:
        items = list(map(_element, values))
    return "{" + ",".join(items) + "}"
