"""Open311 API keys: create, check, revoke. The key is shown once; only its hash is kept."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from ..apikeys import check_key, key_hash, new_key
from ..errors import ValidationFailed
from ..models import Open311Key, User

KEY_PREFIX = "yv311"


def open311_key_create(*, name: str) -> tuple[Open311Key, str]:
    """A new key named ``name`` (unique) with its own password-less account; returns the raw key."""
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise ValidationFailed(
            field_errors={"name": [str(_("Give the key a name (60 characters at most)."))]}
        )
    if Open311Key.objects.filter(name=name).exists():
        raise ValidationFailed(field_errors={"name": [str(_("A key with this name exists."))]})
    prefix, raw = new_key(KEY_PREFIX)
    with transaction.atomic():
        account = User(
            username=f"open311-{slugify(name)[:40] or 'client'}-{prefix}",
            display_name=f"Open311 · {name}"[:60],
        )
        account.set_unusable_password()
        account.save()
        key = Open311Key.objects.create(
            name=name, prefix=prefix, key_hash=key_hash(raw), account=account
        )
    return key, raw


def open311_key_check(raw: str | None) -> Open311Key | None:
    """The active key for ``raw``, or None (compared in constant time)."""
    return check_key(raw, KEY_PREFIX, Open311Key.objects.select_related("account"))


def open311_key_revoke(*, name: str) -> Open311Key:
    """Revoke the key named ``name``: it stops working at once; its cases stay."""
    key = Open311Key.objects.filter(name=name).first()
    if key is None:
        raise ValidationFailed(field_errors={"name": [str(_("No key with this name."))]})
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key
