"""Field encryption at rest: Fernet tokens under keys from the environment.

Built on ``cryptography``'s ``MultiFernet`` (AES-128-CBC + HMAC-SHA256, a
maintained library) rather than an encrypted-fields package: the packages we
looked at derive their keys from ``SECRET_KEY``, which would tie the data to
the session-signing secret; here the keys are their own list,
``FIELD_ENCRYPTION_KEYS``, newest first. Values are encrypted with the first
key and decrypted with any of them, so a new key can be put in front, the rows
re-encrypted (``manage.py rotate_keys``) and the old key dropped afterwards.

Encrypted columns hold random-looking tokens: they cannot be searched,
filtered or ordered in SQL, so those lookups raise instead of quietly matching
nothing. Empty values stay empty (so "has a phone?" is still answerable).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.conf import settings
from django.core.exceptions import FieldError, ImproperlyConfigured, ValidationError
from django.db import models, transaction
from django.db.models.query_utils import DeferredAttribute
from django.utils.translation import gettext_lazy as _

# A Fernet token: version byte 0x80 (base64 "gAAAAA...") and at least 73 bytes.
_TOKEN_RE = re.compile(r"^gAAAAA[A-Za-z0-9_\-]{90,}={0,2}$")
ALLOWED_LOOKUPS = {"isnull"}


class DecryptionError(ImproperlyConfigured):
    """A stored token none of the configured keys opens (a key is missing)."""


def configured_keys() -> list[str]:
    keys = list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or [])
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: set it to one or more Fernet keys "
            "(python manage.py rotate_keys --new-key prints one)."
        )
    return keys


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key"
        ) from exc


def cipher() -> MultiFernet:
    return _multifernet(tuple(configured_keys()))


def new_key() -> str:
    return Fernet.generate_key().decode()


def looks_encrypted(value: str) -> bool:
    return bool(_TOKEN_RE.match(value))


def encrypt(value: str) -> str:
    if value in (None, ""):
        return value
    return cipher().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(value: str) -> str:
    if value in (None, ""):
        return value
    try:
        return cipher().decrypt(value.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError):
        if looks_encrypted(value):
            raise DecryptionError(
                "An encrypted value cannot be opened with FIELD_ENCRYPTION_KEYS "
                "(was a key removed before rotate_keys finished?)"
            ) from None
        # Plaintext written before the column was encrypted; the migration and
        # rotate_keys rewrite it encrypted.
        return value


class Sealed:
    """An encrypted column's stored token, not opened yet (``casework.prepared.ModelRead``).

    The instance holds it in its ``__dict__`` until the attribute is first read
    (``EncryptedAttribute``), which opens it with the field's own
    ``from_db_value``: a locked case whose title and description the change
    never reads is not decrypted at all. Compares equal to its opened value.
    """

    __slots__ = ("field", "opened", "token")

    def __init__(self, token: str, field):
        self.token = token
        self.field = field
        self.opened = _UNOPENED

    def open(self):
        if self.opened is _UNOPENED:
            self.opened = self.field.from_db_value(self.token, None, None)
        return self.opened

    def __eq__(self, other):
        if other is self:
            return True
        if isinstance(other, Sealed):
            return self.token == other.token or self.open() == other.open()
        return self.open() == other

    __hash__ = None

    def __repr__(self):
        return f"<Sealed {self.field.attname}>"

    def __reduce__(self):
        return (_opened, (self.open(),))


_UNOPENED = object()


def _opened(value):
    return value


class EncryptedAttribute(DeferredAttribute):
    """An encrypted field's attribute: a ``Sealed`` value is opened on first read.

    A data descriptor (unlike Django's ``DeferredAttribute``), so that reads come here
    even when the instance's ``__dict__`` holds the value; a set stores the value there.
    """

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        data = instance.__dict__
        value = data.get(self.field.attname)
        if type(value) is Sealed:
            value = data[self.field.attname] = value.open()
            return value
        return super().__get__(instance, cls)


def sealing_converter(field):
    """A ``ModelRead`` converter for ``field``'s column: the token kept ``Sealed``, opened
    when read; empty values converted at once, as ``from_db_value`` does."""
    convert = field.from_db_value

    def seal(value, expression, connection):
        if value in (None, ""):
            return convert(value, expression, connection)
        return Sealed(value, field)

    return seal


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; reads give back the plain text."""

    description = "Text encrypted at rest"
    descriptor_class = EncryptedAttribute

    def from_db_value(self, value, expression, connection):
        return decrypt(value)

    def to_python(self, value):
        return value if value is None else str(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value)

    def get_lookup(self, lookup_name):
        if lookup_name not in ALLOWED_LOOKUPS:
            raise FieldError(
                f"{self.model.__name__}.{self.name} is encrypted: it cannot be "
                f"filtered with “{lookup_name}” in the database."
            )
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name):
        return None


class EncryptedCharField(EncryptedTextField):
    """Encrypted, with a one-line form input limited to ``max_length`` characters."""

    def formfield(self, **kwargs):
        kwargs.setdefault("form_class", forms.CharField)
        kwargs.setdefault("widget", forms.TextInput)
        kwargs.setdefault("max_length", self.max_length)
        return models.Field.formfield(self, **kwargs)


class EncryptedEmailField(EncryptedCharField):
    def formfield(self, **kwargs):
        kwargs.setdefault("form_class", forms.EmailField)
        return super().formfield(**kwargs)


class EncryptedDateField(EncryptedTextField):
    """A date stored as an encrypted ISO string; reads give back a ``date``.

    Like every encrypted column it cannot be filtered or ordered in SQL: the
    code derives what it needs (the age, the minor flag) in Python.
    """

    description = "Date encrypted at rest"

    def from_db_value(self, value, expression, connection):
        return self.to_python(decrypt(value))

    def to_python(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, datetime.date):
            return value
        try:
            return datetime.date.fromisoformat(str(value)[:10])
        except ValueError as exc:
            raise ValidationError(_("Enter a valid date."), code="invalid") from exc

    def get_prep_value(self, value):
        value = self.to_python(value)
        return None if value is None else encrypt(value.isoformat())

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return "" if value is None else value.isoformat()

    def formfield(self, **kwargs):
        kwargs.setdefault("form_class", forms.DateField)
        return models.Field.formfield(self, **kwargs)


def search_digest(value: str | None) -> str:
    """A keyed digest of a normalised value, for exact-match search of encrypted fields.

    HMAC-SHA256 under ``SEARCH_DIGEST_KEY`` (its own secret, not an encryption key,
    so rotating the encryption keys leaves the digests valid). Case and spaces are
    ignored, so "Chen Xiaoyu " finds "chen xiaoyu". Empty values digest to "".
    """
    normal = "".join((value or "").split()).casefold()
    if not normal:
        return ""
    key = settings.SEARCH_DIGEST_KEY
    return hmac.new(key.encode("utf-8"), normal.encode("utf-8"), hashlib.sha256).hexdigest()


def encrypted_fields(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


def reencrypt_model(
    model,
    fields: Iterable[str] | None = None,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    using: str = "default",
) -> int:
    """Rewrite every row's encrypted columns under the first key; returns rows done.

    Reads each batch decrypted (any configured key, or legacy plaintext), writes it
    back encrypted with the primary key, one transaction per batch, in primary key
    order so an interrupted run can simply be started again.
    """
    fields = list(fields or encrypted_fields(model))
    if not fields:
        return 0
    manager = model._base_manager.using(using)
    done, last_pk = 0, None
    while True:
        query = manager.order_by("pk")
        if last_pk is not None:
            query = query.filter(pk__gt=last_pk)
        rows = list(query.values_list("pk", *fields)[:batch_size])
        if not rows:
            return done
        with transaction.atomic(using=using):
            for pk, *values in rows:
                # A plain UPDATE per row: no model instance, so no save() side effects.
                manager.filter(pk=pk).update(**dict(zip(fields, values, strict=True)))
        done += len(rows)
        last_pk = rows[-1][0]
        if progress is not None:
            progress(len(rows))
