"""Statements of the write path that PostgreSQL parses and plans once per connection.

A case transition runs the same few statements thousands of times with other
values. Sent as plain text (all that psycopg2 does), PostgreSQL parses,
analyses and plans each of them every time, which for the case lock (three
tables, some sixty columns) and the one-statement writes of a transition costs
more backend CPU than executing them. ``Statement`` sends its SQL once per
connection as ``PREPARE`` (together with the first ``EXECUTE``, in the same
round trip) and from then on only ``EXECUTE name(values)``.

Prepared statements belong to the server session. Behind PgBouncer in
transaction pooling mode a session is not the client's from one transaction to
the next, so ``DATABASE_PGBOUNCER=true`` turns them off
(``CASEWORK_PREPARED_STATEMENTS``); so does any database other than
PostgreSQL. Off, ``Statement`` sends its SQL as it is, with the same values.
"""

from __future__ import annotations

import functools
import hashlib
import re

from django.conf import settings
from django.db import connection as default_connection
from django.db.backends.signals import connection_created
from django.dispatch import receiver

_PLACEHOLDER = re.compile(r"%(%|s)")


def _numbered(sql: str) -> tuple[str, int]:
    """``%s`` placeholders as ``$1, $2, …`` (and ``%%`` as ``%``); the SQL and the count."""
    count = 0

    def number(match):
        nonlocal count
        if match.group(1) == "%":
            return "%"
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(number, sql), count


def enabled(connection=default_connection) -> bool:
    return connection.vendor == "postgresql" and getattr(
        settings, "CASEWORK_PREPARED_STATEMENTS", True
    )


@receiver(connection_created)
def _forget_prepared(sender, connection, **kwargs):
    """A new server session has no prepared statements yet."""
    connection._casework_prepared = set()
    connection._casework_uncertain = set()


class Statement:
    """One SQL text with ``%s`` placeholders, prepared once per connection on PostgreSQL.

    ``run(cursor, params)`` executes it; read the results from the cursor as usual.
    """

    __slots__ = ("execute_sql", "name", "prepare_sql", "sql")

    def __init__(self, sql: str):
        self.sql = sql
        numbered, count = _numbered(sql)
        self.name = name = "cw_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
        values = f"({', '.join(['%s'] * count)})" if count else ""
        self.execute_sql = f"EXECUTE {name}{values}"
        # The text goes through psycopg2's interpolation with the EXECUTE's values.
        self.prepare_sql = f"PREPARE {name} AS {numbered.replace('%', '%%')}; {self.execute_sql}"

    def run(self, cursor, params=()) -> None:
        connection = cursor.db
        if not enabled(connection):
            cursor.execute(self.sql, params)
            return
        prepared = getattr(connection, "_casework_prepared", None)
        if prepared is None:
            prepared = connection._casework_prepared = set()
        if self.name in prepared:
            cursor.execute(self.execute_sql, params)
            return
        uncertain = getattr(connection, "_casework_uncertain", None)
        if uncertain and self.name in uncertain:
            # An earlier PREPARE; EXECUTE failed: was it the PREPARE or the EXECUTE?
            uncertain.discard(self.name)
            cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [self.name])
            if cursor.fetchone():
                prepared.add(self.name)
                cursor.execute(self.execute_sql, params)
                return
        try:
            cursor.execute(self.prepare_sql, params)  # one round trip: PREPARE; EXECUTE
        except Exception:
            if uncertain is None:
                uncertain = connection._casework_uncertain = set()
            uncertain.add(self.name)
            raise
        prepared.add(self.name)


class ModelRead:
    """A ``select_related`` queryset's read, compiled once: its SQL, converters and populators.

    ``queryset`` filters on one value, ``PROBE``, the placeholder of the row's
    key while compiling. Django would otherwise rebuild the same SELECT of many
    columns from the queryset and work out its converters on every call; this
    keeps the queryset's own SQL and its own row-to-object machinery
    (converters, ``from_db``, the select_related populators). ``where``
    replaces the SQL from its ``WHERE`` on (with ``%s`` placeholders of its
    own); ``extra`` adds expressions to the select list, returned beside the
    object. Run on PostgreSQL as a prepared ``Statement``.
    """

    PROBE = -7

    def __init__(self, queryset, *, where: str | None = None, extra: str = ""):
        from django.db.models.query import get_related_populators

        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        if list(params) != [self.PROBE]:  # pragma: no cover - a Django change would show here
            raise RuntimeError(f"unexpected parameters in a compiled read: {params!r}")
        klass_info = compiler.klass_info
        fields = klass_info["select_fields"]
        self.model = klass_info["model"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in compiler.select[self.start : self.end]]
        self.build = _builder(self.model, self.init_list, queryset.db)
        self.populators = [
            _FastPopulator.of(populator, queryset.db)
            for populator in get_related_populators(klass_info, compiler.select, queryset.db)
        ]
        self.converters = [
            (pos, (_sealing(convs, expression), expression))
            for pos, (convs, expression) in compiler.get_converters(
                [col for col, _sql, _alias in compiler.select]
            ).items()
        ]
        self.width = len(compiler.select)
        self.db = queryset.db
        if where is not None:
            sql = sql[: sql.rindex(" WHERE ")] + " " + where
        if extra:
            at = sql.index(" FROM ")
            sql = sql[:at] + ", " + extra + sql[at:]
        self.statement = Statement(sql)

    def run(self, connection, params) -> tuple | None:
        """(the object, the ``extra`` values) of the first row, or None."""
        with connection.cursor() as cursor:
            self.statement.run(cursor, params)
            row = cursor.fetchone()
        if row is None:
            return None
        return self._build(row, connection)

    def run_all(self, connection, params) -> list[tuple]:
        """(the object, the ``extra`` values) of every row."""
        with connection.cursor() as cursor:
            self.statement.run(cursor, params)
            rows = cursor.fetchall()
        return [self._build(row, connection) for row in rows]

    def _build(self, row, connection) -> tuple:
        values = list(row[: self.width])
        for pos, (convs, expression) in self.converters:
            value = values[pos]
            for convert in convs:
                value = convert(value, expression, connection)
            values[pos] = value
        obj = self.build(values[self.start : self.end])
        for populator in self.populators:
            populator.populate(values, obj)
        return obj, row[self.width :]


def _sealing(convs: list, expression) -> list:
    """An encrypted column's converters as one that keeps its token ``Sealed`` until the
    attribute is read (``casework.crypto``); other columns' converters as they are."""
    from .crypto import EncryptedTextField, sealing_converter

    field = getattr(expression, "target", None)
    if (
        isinstance(field, EncryptedTextField)
        and len(convs) == 1
        and getattr(convs[0], "__func__", None) is type(field).from_db_value
    ):
        return [sealing_converter(field)]
    return convs


class _FastPopulator:
    """A ``select_related`` populator whose object is made by ``_builder``; the
    populator's own ``populate`` when the relation is not a plain one."""

    __slots__ = ("build", "end", "local_setter", "pk_idx", "remote_setter", "start")

    @classmethod
    def of(cls, populator, db):
        if populator.reorder_for_init is not None or populator.related_populators:
            return populator
        fast = cls()
        fast.start, fast.end = populator.cols_start, populator.cols_end
        fast.pk_idx = populator.pk_idx
        fast.build = _builder(populator.model_cls, populator.init_list, db)
        fast.local_setter = populator.local_setter
        fast.remote_setter = populator.remote_setter
        return fast

    def populate(self, row, from_obj):
        data = row[self.start : self.end]
        obj = None if data[self.pk_idx] is None else self.build(data)
        self.local_setter(from_obj, obj)
        if obj is not None:
            self.remote_setter(obj, from_obj)


def _builder(model, attnames: list[str], db):
    """A function making the instance of ``model`` that ``Model.from_db(db, attnames, values)``
    makes, from values already converted.

    ``from_db`` goes through ``Model.__init__``, which sets each field through its
    class attribute. For a model without ``pre_init``/``post_init`` listeners,
    every column in ``attnames`` and fields whose class attribute only stores the
    value in the instance's ``__dict__`` on a new instance (Django's deferred
    attributes, a foreign key's id, a django-fsm field without state proxies),
    the values go straight into ``__dict__``; otherwise the built instance comes
    from ``from_db`` itself. Listeners are looked at on every call (Django caches
    the answer).
    """
    from django.db.models.base import ModelState
    from django.db.models.signals import post_init, pre_init

    def slow(values):
        return model.from_db(db, attnames, values)

    if sorted(attnames) != sorted(f.attname for f in model._meta.concrete_fields):
        return slow
    if not all(stores_plainly(model, name) for name in attnames):
        return slow
    names = tuple(attnames)
    new = model.__new__

    def build(values):
        if pre_init.has_listeners(model) or post_init.has_listeners(model):
            return slow(values)
        obj = new(model)
        state = obj._state = ModelState()
        state.adding = False
        state.db = db
        obj.__dict__.update(zip(names, values, strict=True))
        return obj

    return build


def stores_plainly(model, attname: str) -> bool:
    """True when ``model``'s class attribute ``attname`` keeps a value set on an instance in
    the instance's ``__dict__`` under that name, as it is (Django's deferred attributes, a
    foreign key's id, an encrypted field, a django-fsm field without state proxies)."""
    from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
    from django.db.models.query_utils import DeferredAttribute
    from django_fsm import FSMFieldDescriptor

    from .crypto import EncryptedAttribute

    attribute = getattr(model, attname, None)
    kind = type(attribute)
    return kind in (DeferredAttribute, ForeignKeyDeferredAttribute, EncryptedAttribute) or (
        kind is FSMFieldDescriptor and not attribute.field.state_proxy
    )


@functools.cache
def instance_maker(model):
    """A function ``make(values, related)`` giving what ``model(**values, **related)`` gives,
    for ``values`` by attname (``pk`` for the primary key) and ``related`` foreign-key
    objects by field name, without ``Model.__init__`` setting every field one by one.

    The values go straight into the new instance's ``__dict__``, the fields not given
    their defaults, the related objects into its relation cache. ``model(...)`` itself
    when a ``pre_init``/``post_init`` listener is connected, a field's class attribute
    does more than store the value, or a name is not a concrete field's.
    """
    from django.db.models.base import ModelState
    from django.db.models.signals import post_init, pre_init

    meta = model._meta
    fields = meta.concrete_fields
    plain = all(stores_plainly(model, f.attname) for f in fields)
    attnames = {f.attname for f in fields}
    relations = {f.name: f.attname for f in fields if f.is_relation}
    pk_name = meta.pk.attname
    new = model.__new__

    def make(values: dict, related: dict | None = None):
        if "pk" in values:
            values = dict(values)
            values[pk_name] = values.pop("pk")
        if (
            not plain
            or pre_init.has_listeners(model)
            or post_init.has_listeners(model)
            or not attnames.issuperset(values)
            or (related and not set(related).issubset(relations))
        ):
            kwargs = dict(values)
            if related:
                kwargs.update(related)
            return model(**kwargs)
        obj = new(model)
        state = obj._state = ModelState()
        data = obj.__dict__
        for field in fields:
            name = field.attname
            if name not in values:
                data[name] = field.get_default()
        data.update(values)
        if related:
            cache = state.fields_cache
            for name, value in related.items():
                data[relations[name]] = None if value is None else value.pk
                cache[name] = value
        return obj

    return make


def _plain_types() -> tuple:
    from django.db import models

    return (
        models.AutoField,
        models.BigAutoField,
        models.BigIntegerField,
        models.BooleanField,
        models.CharField,
        models.DateTimeField,
        models.DurationField,
        models.ForeignKey,
        models.IntegerField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        models.SmallIntegerField,
        models.TextField,
    )


_PLAIN: set = set()


def column_value_getter(field):
    """A function ``(obj, add, connection) -> value`` giving the value ``Model.save`` writes
    for ``field``: the field's own ``pre_save`` and ``get_db_prep_save``, except for the
    plain field types (exactly those classes, not subclasses such as encrypted or FSM
    fields) whose stored value is the attribute itself, which skip that machinery."""
    if not _PLAIN:
        _PLAIN.update(_plain_types())
    attname = field.attname
    automatic = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    if type(field) in _PLAIN and not automatic:
        return lambda obj, add, connection: getattr(obj, attname)
    return lambda obj, add, connection: field.get_db_prep_save(field.pre_save(obj, add), connection)
