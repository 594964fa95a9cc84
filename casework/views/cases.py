"""The first pages: the case list and a read-only case detail with its timeline.

Pages only read here; every change to a case goes through ``casework.services``.
"""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from .. import selectors
from ..events import EventKind
from ..models import Case
from ..permissions import HANDLER, PARTNER, SUPERVISOR, VERIFIER, may_view_case, roles_of
from ..services.privacy import record_personal_data_access
from ..states import CaseState

CASES_PER_PAGE = 50
SYSTEM_ACTOR = _("system")


def home(request):
    """Send each person to where their work is: youth to their requests, staff to the
    workbench, supervisors to the console, everyone else to the public statistics."""
    user = request.user
    if not user.is_authenticated:
        return redirect("casework:public_stats")
    if user.is_superuser:
        return redirect("casework:case_list")
    kinds = {role.role for role in roles_of(user)}
    if SUPERVISOR in kinds:
        return redirect("casework:supervisor")
    if kinds & {HANDLER, VERIFIER, PARTNER}:
        return redirect("casework:workbench")
    return redirect("casework:youth_cases")


@login_required
def case_list(request):
    """The cases the signed-in person may see, newest first, optionally of one state."""
    cases = selectors.cases_visible_to(request.user)
    state = request.GET.get("state", "")
    if state in CaseState.values:
        cases = cases.filter(state=state)
    else:
        state = ""  # an unknown state filters nothing rather than failing
    page = Paginator(cases, CASES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(case, may_view_case(case, request.user)) for case in page.object_list]
    return render(
        request,
        "casework/case_list.html",
        {"page": page, "rows": rows, "state": state, "states": CaseState.choices},
    )


def _label(choices, value: str) -> str:
    try:
        return choices(value).label
    except ValueError:
        return value


@login_required
def case_detail(request, reference: str):
    """One case and its timeline, for the people allowed to read it (404 for anyone else)."""
    case = (
        Case.objects.select_related("org", "category", "assignee", "station")
        .filter(reference=reference)
        .first()
    )
    # 404 rather than 403: a stranger learns nothing, not even that the reference exists.
    if case is None or not may_view_case(case, request.user):
        raise Http404(_("No such case."))
    # The page shows the youth's own words: log who looked and why (not the youth).
    record_personal_data_access(actor=request.user, case=case)
    events = [
        {
            "seq": event.seq,
            "kind": _label(EventKind, event.kind),
            "at": event.at,
            "actor": str(event.actor) if event.actor_id else SYSTEM_ACTOR,
            "org": event.org,
            "from_state": _label(CaseState, event.from_state) if event.from_state else "",
            "to_state": _label(CaseState, event.to_state) if event.to_state else "",
        }
        for event in case.events.select_related("actor", "org").order_by("seq")
    ]
    return render(request, "casework/case_detail.html", {"case": case, "events": events})
