"""API keys for other systems (Open311 clients, hand-off services): made, checked, hashed.

A key reads ``<tag>_<prefix>_<secret>``. Only the SHA-256 of the whole key is
stored (the key is long and random, so a plain hash is enough) with its
``prefix``, which finds the row without a scan; the key is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db.models import Model, QuerySet
from django.utils import timezone

MAX_KEY_LENGTH = 200


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def new_key(tag: str) -> tuple[str, str]:
    """A fresh (prefix, raw key) with the ``tag`` in front."""
    prefix = secrets.token_hex(6)
    return prefix, f"{tag}_{prefix}_{secrets.token_urlsafe(32)}"


def check_key(raw: str | None, tag: str, rows: QuerySet) -> Model | None:
    """The active row of ``rows`` (with prefix, key_hash, revoked_at) whose key is ``raw``.

    Compared in constant time; marks the row's ``last_used_at``. None for anything else.
    """
    raw = raw or ""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != tag or len(raw) > MAX_KEY_LENGTH:
        return None
    row = rows.filter(prefix=parts[1]).first()
    if (
        row is None
        or row.revoked_at is not None
        or not hmac.compare_digest(row.key_hash, key_hash(raw))
    ):
        return None
    type(row).objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row
