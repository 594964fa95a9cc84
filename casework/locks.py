"""Row locks for writing a case: one place that decides how a case is locked."""

from django.db import transaction

from .errors import CaseConflict, NotFound
from .models import Case


def lock_case(case_or_id: Case | int, *, expected_version: int | None = None) -> Case:
    """Lock the case row for this transaction and return a fresh copy of it.

    ``expected_version`` is the version the caller last saw (a form's hidden
    field, an API If-Match). When someone else changed the case since, the
    caller gets ``CaseConflict`` instead of silently acting on a newer case.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_case must be called inside transaction.atomic()")
    pk = case_or_id.pk if isinstance(case_or_id, Case) else case_or_id
    # Lock the bare row first. A locking query that joins the organisation would, after
    # waiting for a writer that moved the case to another organisation, re-check the
    # join against the old organisation row and find no case at all (PostgreSQL
    # re-evaluates only the locked row): the waiter would get NotFound, not the news.
    if not Case.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True):
        raise NotFound()
    # With the lock held no one can change the row, so this read is current.
    case = Case.objects.select_related("org", "category").get(pk=pk)
    if expected_version is not None and case.version != expected_version:
        raise CaseConflict()
    return case
