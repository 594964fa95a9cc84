"""Row locks for writing a case: one place that decides how a case is locked."""

from django.db import connection, transaction
from django.db.models.query import get_related_populators

from .errors import CaseConflict, NotFound
from .models import Case


def lock_case(case_or_id: Case | int, *, expected_version: int | None = None) -> Case:
    """Lock the case row for this transaction and return a fresh copy of it.

    ``expected_version`` is the version the caller last saw (a form's hidden
    field, an API If-Match). When someone else changed the case since, the
    caller gets ``CaseConflict`` instead of silently acting on a newer case.

    The returned case remembers the values it was read with, so that
    ``save_case`` writes only the columns the service changed.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_case must be called inside transaction.atomic()")
    pk = case_or_id.pk if isinstance(case_or_id, Case) else case_or_id
    # One statement: the case row locked (only it: FOR UPDATE OF), its organisation and
    # category joined. When that query waited for a writer that moved the case to another
    # organisation, PostgreSQL re-checks the join with the new case row but the old
    # organisation row, finds no match and returns nothing; so does a missing case. Both
    # take the slow way below, which tells them apart.
    case = _LockStatement.get().run(pk)
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


class _LockStatement:
    """The locking read of ``lock_case``, compiled once per process and database vendor.

    Every transition runs it: Django would otherwise rebuild the same
    three-table SELECT (some sixty columns) from the queryset each time. It is
    the queryset's own SQL and its own row-to-object machinery (converters,
    ``from_db``, the select_related populators), only kept.
    """

    _compiled: dict[str, "_LockStatement"] = {}
    PROBE = -7  # the one parameter: the case id

    @classmethod
    def get(cls) -> "_LockStatement":
        found = cls._compiled.get(connection.vendor)
        if found is None:
            found = cls._compiled[connection.vendor] = cls()
        return found

    def __init__(self):
        queryset = (
            Case.objects.select_related("org", "category")
            .select_for_update(of=("self",))
            .filter(pk=self.PROBE)
            .order_by()[:1]
        )
        compiler = queryset.query.get_compiler(using=queryset.db)
        self.sql, params = compiler.as_sql()
        if list(params) != [self.PROBE]:  # pragma: no cover - a Django change would show here
            raise RuntimeError(f"unexpected parameters in the lock statement: {params!r}")
        self.compiler = compiler
        klass_info = compiler.klass_info
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in compiler.select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, compiler.select, queryset.db)
        self.db = queryset.db

    def run(self, pk) -> Case | None:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [pk])
            row = cursor.fetchone()
        if row is None:
            return None
        (row,) = self.compiler.results_iter(results=[[row]])
        case = Case.from_db(self.db, self.init_list, row[self.start : self.end])
        for populator in self.populators:
            populator.populate(row, case)
        return case


def remember_values(case: Case) -> None:
    """Note the column values ``case`` has now (as read, or as just saved)."""
    case._saved_values = {f.attname: getattr(case, f.attname) for f in Case._meta.concrete_fields}


def save_case(case: Case) -> None:
    """Save a locked case: only the columns changed since ``lock_case`` read it.

    A case that did not come from ``lock_case`` is saved whole. Writing fewer
    columns also spares re-encrypting the personal fields nobody changed.
    """
    saved = getattr(case, "_saved_values", None)
    if saved is None:
        case.save()
        return
    changed = [
        f.name
        for f in Case._meta.concrete_fields
        if not f.primary_key
        and (getattr(f, "auto_now", False) or getattr(case, f.attname) != saved[f.attname])
    ]
    case.save(update_fields=changed)
    remember_values(case)
