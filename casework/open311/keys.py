"""Open311 API keys: create, check, revoke. The key is shown once; only its hash is kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from ..errors import ValidationFailed
from ..models import Open311Key, User

KEY_PREFIX = "yv311"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def open311_key_create(*, name: str) -> tuple[Open311Key, str]:
    """A new key named ``name`` (unique) with its own password-less account; returns the raw key."""
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationFailed(
            field_errors={"name": [str(_("Give the key a name (60 characters at most)."))]}
        )
    if Open311Key.objects.filter(name=name).exists():
        raise ValidationFailed(field_errors={"name": [str(_("A key with this name exists."))]})
    prefix = secrets.token_hex(6)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        account = User(
            username=f"open311-{slugify(name)[:40] or 'client'}-{prefix}",
            display_name=f"Open311 · {name}"[:60],
        )
        account.set_unusable_password()
        account.save()
        key = Open311Key.objects.create(
            name=name, prefix=prefix, key_hash=_hash(raw), account=account
        )
    return key, raw


def open311_key_check(raw: str | None) -> Open311Key | None:
    """The active key for ``raw``, or None (compared in constant time)."""
    parts = (raw or "").split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(raw) > 200:
        return None
    key = Open311Key.objects.select_related("account").filter(prefix=parts[1]).first()
    if key is None or not key.is_active or not hmac.compare_digest(key.key_hash, _hash(raw)):
        return None
    Open311Key.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


def open311_key_revoke(*, name: str) -> Open311Key:
    """Revoke the key named ``name``: it stops working at once; its cases stay."""
    key = Open311Key.objects.filter(name=name).first()
    if key is None:
        raise ValidationFailed(field_errors={"name": [str(_("No key with this name."))]})
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key
