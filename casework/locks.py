"""Row locks for writing a case: one place that decides how a case is locked."""

import functools

from django.db import connection, transaction

from .errors import CaseConflict, NotFound
from .models import Case


def lock_case(
    case_or_id: Case | int,
    *,
    expected_version: int | None = None,
    actor=None,
    message: bool = False,
) -> Case:
    """Lock the case row for this transaction and return a fresh copy of it.

    ``expected_version`` is the version the caller last saw (a form's hidden
    field, an API If-Match). When someone else changed the case since, the
    caller gets ``CaseConflict`` instead of silently acting on a newer case.

    ``actor``: the person about to act. On PostgreSQL their memberships come in
    the same statement and are cached on them (``permissions.roles_of``), so the
    permission check needs no query of its own; they are read afresh, as of
    this transaction. ``message``: the service will write one ``CaseMessage``;
    its id is reserved now (``case._message_id``) so that the timeline event
    can name it and the message be written with the event (``_core``).

    The returned case remembers the values it was read with, so that
    ``save_case`` writes only the columns the service changed.
    """
    conn = transaction.get_connection()  # the wrapper itself: no proxy lookup per use
    if not conn.in_atomic_block:
        raise RuntimeError("lock_case must be called inside transaction.atomic()")
    pk = case_or_id.pk if isinstance(case_or_id, Case) else case_or_id
    # One statement: the case row locked (only it: FOR UPDATE OF), its organisation and
    # category joined. When that query waited for a writer that moved the case to another
    # organisation, PostgreSQL re-checks the join with the new case row but the old
    # organisation row, finds no match and returns nothing; so does a missing case. Both
    # take the slow way below, which tells them apart.
    user_id = getattr(actor, "pk", None) if getattr(actor, "is_authenticated", False) else None
    case = _LockStatement.get(message, conn).run(
        conn, pk, actor if user_id is not None else None, user_id
    )
    if case is None:
        # Lock the bare row first, then read it with its joins: with the lock held no
        # one can change the row, so this read is current.
        if not Case.objects.select_for_update().filter(pk=pk).order_by().values_list("pk"):
            raise NotFound()
        case = Case.objects.select_related("org", "category").get(pk=pk)
    if expected_version is not None and case.version != expected_version:
        raise CaseConflict()
    remember_values(case)
    return case


def _roles_sql() -> str:
    """The actor's memberships as one JSON array of [organisation id, path, role]."""
    from .models import Membership, Organisation

    return (
        "(SELECT json_agg(json_build_array(m.organisation_id, mo.path, m.role)) "
        f'FROM "{Membership._meta.db_table}" m '
        f'JOIN "{Organisation._meta.db_table}" mo ON mo.id = m.organisation_id '
        "WHERE m.user_id = %s)"
    )


class _LockStatement:
    """The locking read of ``lock_case``, compiled once per process, vendor and variant.

    Every transition runs it: a ``casework.prepared.ModelRead`` of the case
    with its organisation and category (some sixty columns), on PostgreSQL a
    prepared statement with the actor's memberships and, for a service that
    writes a message, the message's id added to the row.
    """

    @classmethod
    def get(cls, message: bool = False, conn=None) -> "_LockStatement":
        return cls._compiled_for((conn or connection).vendor, message)

    @classmethod
    @functools.cache
    def _compiled_for(cls, vendor: str, message: bool) -> "_LockStatement":
        """Compiled once per process, database vendor and ``message``."""
        return cls(message)

    def __init__(self, message: bool):
        from .prepared import ModelRead

        queryset = (
            Case.objects.select_related("org", "category")
            .select_for_update(of=("self",))
            .filter(pk=ModelRead.PROBE)
            .order_by()[:1]
        )
        # PostgreSQL: the actor's memberships (and the reserved message id) ride along.
        self.extras = connection.vendor == "postgresql"
        self.message = message and self.extras
        extra = ""
        if self.extras:
            extra = _roles_sql()
            if self.message:
                from .models import CaseMessage

                table = CaseMessage._meta.db_table
                extra += f", nextval(pg_get_serial_sequence('\"{table}\"', 'id'))"
        self.read = ModelRead(queryset, extra=extra)

    def run(self, conn, pk, actor, user_id) -> Case | None:
        found = self.read.run(conn, [user_id, pk] if self.extras else [pk])
        if found is None:
            return None
        case, extras = found
        if self.extras:
            if actor is not None:
                from .permissions import Role, remember_roles

                roles = tuple(Role(org, path, role) for org, path, role in extras[0] or ())
                remember_roles(actor, roles)
            if self.message:
                case._message_id = extras[1]
        return case


def remember_values(case: Case) -> None:
    """Note the column values ``case`` has now (as read, or as just saved).

    The values are taken from the instance's ``__dict__`` where its attribute only
    stores them there, so an encrypted column still ``Sealed`` (``casework.crypto``)
    stays unopened; it compares equal to its plain text once read."""
    data = case.__dict__
    case._saved_values = {
        name: data[name] if raw and name in data else getattr(case, name)
        for name, raw in _case_names()
    }


_FIELDS: list = []
_NAMES: list = []


def _case_fields() -> list:
    """(attname, field, auto_now, value getter) of every column of a case but the primary key."""
    if not _FIELDS:
        from .prepared import column_value_getter

        _FIELDS.extend(
            (f.attname, f, bool(getattr(f, "auto_now", False)), column_value_getter(f))
            for f in Case._meta.concrete_fields
            if not f.primary_key
        )
    return _FIELDS


def _case_names() -> list:
    """(attname, stored as it is in ``__dict__``) of every column of a case but the key."""
    if not _NAMES:
        from .prepared import stores_plainly

        _NAMES.extend((name, stores_plainly(Case, name)) for name, *_rest in _case_fields())
    return _NAMES


def _changed(case: Case) -> list:
    saved = case._saved_values
    data = case.__dict__
    changed = []
    for entry, (name, raw) in zip(_case_fields(), _case_names(), strict=True):
        if entry[2]:
            changed.append(entry)
            continue
        value = data[name] if raw and name in data else getattr(case, name)
        if value is not saved[name] and value != saved[name]:
            changed.append(entry)
    return changed


def changed_fields(case: Case) -> list:
    """The fields of a case from ``lock_case`` changed since it was read (and ``auto_now`` ones)."""
    return [entry[1] for entry in _changed(case)]


def update_statement(case: Case, connection) -> tuple[str, list]:
    """``UPDATE`` of the columns of a locked case changed since ``lock_case`` read it, as
    ``save_case`` writes them (each field's own ``pre_save`` and database value, so
    ``auto_now`` and encrypted fields behave as in ``Model.save``), for a caller's
    statement; the case then remembers the values written, as after ``save_case``."""
    changed = _changed(case)
    sets = ", ".join(f'"{entry[1].column}" = %s' for entry in changed)
    params = [get(case, False, connection) for _name, _field, _auto, get in changed]
    params.append(case.pk)
    saved = case._saved_values
    for name, _field, _auto, _get in changed:
        saved[name] = getattr(case, name)  # written as plain values: nothing left sealed
    return f'UPDATE "{Case._meta.db_table}" SET {sets} WHERE "id" = %s', params


def save_case(case: Case) -> None:
    """Save a locked case: only the columns changed since ``lock_case`` read it.

    A case that did not come from ``lock_case`` is saved whole. Writing fewer
    columns also spares re-encrypting the personal fields nobody changed.
    """
    if getattr(case, "_saved_values", None) is None:
        case.save()
        return
    case.save(update_fields=[field.name for field in changed_fields(case)])
    remember_values(case)
