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
    try:
        case = (
            Case.objects.select_for_update(of=("self",))
            .select_related("org", "category")
            .get(pk=pk)
        )
    except Case.DoesNotExist:
        raise NotFound() from None
    if expected_version is not None and case.version != expected_version:
        raise CaseConflict()
    return case
