"""The organisation workbench: the staff case page, its actions, coordination tasks, evidence.

The case page offers only what the state machine (django-fsm's available
transitions for this person) and the routing rules (``casework.permissions``)
allow this person now. Each action is its own form posting to its own URL and
calls exactly one casework service with the version the page showed; domain
errors land on the form (a stale version as a conflict), never as a 500.
The inbox itself is ``workflows.views.inbox`` (/tasks/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape as escape_html

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import FileResponse, Http404
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from .. import forms_staff as f
from .. import forms_stations as fs
from .. import permissions, selectors, services
from ..errors import CaseConflict, CaseworkError, NotFound, NotPermitted
from ..events import EventKind
from ..models import Case, CoordinationTask, Evidence, User
from ..services.evidence import evidence_add
from ..services.stations import (
    active_appointment,
    acts_for_station,
    latest_appointment,
    takes_bookings,
)
from ..states import OPEN_STATES, CaseState
from . import jinja

# --- SLA countdown badges -----------------------------------------------------------

# A stage due within this time is shown as "due soon".
DUE_SOON = timedelta(hours=8)


@dataclass(frozen=True)
class SlaBadge:
    level: str  # "overdue", "soon" or "ok": a CSS class suffix, never the only signal
    text: str  # the words that say the same as the colour
    due: datetime

    @property
    def css(self) -> str:
        return {"overdue": "badge--bad", "soon": "badge--warn"}.get(self.level, "badge--ok")


def sla_badge(due: datetime | None, now: datetime) -> SlaBadge | None:
    """The countdown badge of a stage deadline: words and a level (pure)."""
    if due is None:
        return None
    if due <= now:
        return SlaBadge("overdue", gettext("Overdue by %s") % timesince(due, now, depth=1), due)
    left = timeuntil(due, now, depth=1)
    if due - now <= DUE_SOON:
        return SlaBadge("soon", gettext("Due soon: in %s") % left, due)
    return SlaBadge("ok", gettext("Due in %s") % left, due)


# --- who may open the workbench page of a case -----------------------------------------


def staff_may_view(case: Case, user: User | None) -> bool:
    """Handlers and verifiers of the holding organisation or station, supervisors above.

    The youth reads their own case in the youth portal, not here; partners see
    only their coordination tasks (``coordination_list``).
    """
    if user is None or not user.is_authenticated:
        return False
    if permissions.supervises_path(user, case.org.path):
        return True
    return any(
        r.org_id in (case.org_id, case.station_id)
        and r.role in (permissions.HANDLER, permissions.VERIFIER)
        for r in permissions.roles_of(user)
    )


def personal_data_opened(request, case: Case, *, what: str) -> None:
    """Staff opened a case's personal data (``what``: "case" or "evidence").

    The access log (casework.services.privacy) records it. Called once per
    rendering, after the permission check and before anything is shown. The task
    the person holds on the case was read with it when the page read the case
    (``selectors.staff_case``: ``viewer_task``).
    """
    from ..services.privacy import record_personal_data_access

    held = {"open_task": case.viewer_task} if "viewer_task" in case.__dict__ else {}
    record_personal_data_access(actor=request.user, case=case, fields=(what,), **held)


# --- the actions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    form_class: type[f.ActionForm]
    service: Callable  # the single casework service this action calls
    transition: str | None = None  # the FSM transition it performs, if it changes the state
    allowed: Callable[[Case, User], bool] | None = None  # for actions that keep the state
    help: str = ""


def _open_handler(case, user) -> bool:
    return case.is_open and permissions.is_case_handler(case, user)


def _can_escalate(case, user) -> bool:
    return _open_handler(case, user) and case.org.parent_path() is not None


def _can_delegate(case, user) -> bool:
    return _open_handler(case, user) and case.org.numchild > 0


def _can_reassign(case, user) -> bool:
    return case.is_open and permissions.supervises_path(user, case.org.path)


def _can_pull_up(case, user) -> bool:
    return case.is_open and any(
        r.role == permissions.SUPERVISOR
        and case.org.path.startswith(r.org_path)
        and r.org_id != case.org_id
        for r in permissions.roles_of(user)
    )


def _can_refer(case, user) -> bool:
    return case.state == CaseState.COORDINATING and permissions.is_case_handler(case, user)


def _can_add_evidence(case, user) -> bool:
    return case.is_open and permissions.is_case_handler_or_verifier(case, user)


def _visit_case(case) -> bool:
    return case.state == CaseState.VERIFYING and takes_bookings(case.station_id)


def _can_propose_visit(case, user) -> bool:
    return _visit_case(case) and acts_for_station(case, user) and active_appointment(case) is None


def _can_move_visit(case, user) -> bool:
    return (
        _visit_case(case) and acts_for_station(case, user) and active_appointment(case) is not None
    )


def _can_record_no_show(case, user) -> bool:
    if not (_visit_case(case) and acts_for_station(case, user)):
        return False
    visit = active_appointment(case)
    return (
        visit is not None
        and visit.status == visit.Status.CONFIRMED
        and visit.slot.starts_at <= timezone.now()
    )


def _can_decide_no_show(case, user) -> bool:
    if not (_visit_case(case) and permissions.is_case_handler(case, user)):
        return False
    visit = latest_appointment(case)
    return visit is not None and visit.status == visit.Status.NO_SHOW and not visit.no_show_decision


ACCEPT = Action("accept", _("Accept"), f.AcceptForm, services.case_accept, "accept")
REJECT = Action("reject", _("Reject"), f.RejectForm, services.case_reject, "reject")
SCHEDULE = Action(
    "schedule", _("Send for verification"), f.ScheduleVerificationForm,
    services.case_schedule_verification, "schedule_verification",
)  # fmt: skip
RECORD = Action(
    "record", _("Record the verification"), f.RecordVerificationForm,
    services.case_record_verification, "confirm",
)  # fmt: skip
VISIT_PROPOSE = Action(
    "visit_propose", _("Propose a visit time"), fs.VisitTimeForm, services.visit_propose,
    allowed=_can_propose_visit,
    help=_("The seat is held for the youth, who confirms the time (or books another)."),
)  # fmt: skip
VISIT_MOVE = Action(
    "visit_reschedule", _("Move the visit"), fs.VisitTimeForm, services.visit_reschedule,
    allowed=_can_move_visit, help=_("The youth is asked to confirm the new time."),
)  # fmt: skip
VISIT_NO_SHOW = Action(
    "visit_no_show", _("The youth did not come"), fs.VisitNoShowForm, services.visit_no_show,
    allowed=_can_record_no_show, help=_("The handler then decides what happens next."),
)  # fmt: skip
VISIT_DECIDE = Action(
    "visit_decide", _("Decide after the missed visit"), fs.NoShowDecisionForm,
    services.visit_decide_no_show, allowed=_can_decide_no_show,
)  # fmt: skip
REQUEST_INFO = Action(
    "request_info", _("Ask the youth"), f.RequestInfoForm, services.case_request_info,
    "request_info",
)  # fmt: skip
RESOLVE = Action(
    "resolve", _("Record the outcome"), f.ResolveForm, services.case_resolve, "resolve"
)
GIVE_FEEDBACK = Action(
    "give_feedback", _("Tell the youth"), f.FeedbackForm, services.case_give_feedback,
    "give_feedback",
)  # fmt: skip
REFER = Action(
    "refer", _("Refer to a partner"), f.ReferForm, services.case_refer, allowed=_can_refer
)
EVIDENCE = Action(
    "evidence", _("Add evidence"), f.EvidenceForm, evidence_add, allowed=_can_add_evidence,
    help=_("JPEG, PNG or PDF; the file is checked by its content, not only its name."),
)  # fmt: skip
ASSIGN = Action(
    "assign", _("Assign a handler"), f.AssignForm, services.case_assign, allowed=_open_handler
)
ESCALATE = Action(
    "escalate", _("Escalate to the level above"), f.EscalateForm, services.case_escalate,
    allowed=_can_escalate,
)  # fmt: skip
TRANSFER = Action(
    "transfer", _("Transfer to a sibling organisation"), f.TransferForm, services.case_transfer,
    allowed=_open_handler,
)  # fmt: skip
DELEGATE = Action(
    "delegate", _("Delegate down the tree"), f.DelegateForm, services.case_delegate,
    allowed=_can_delegate,
)  # fmt: skip
REASSIGN = Action(
    "reassign", _("Reassign (supervisor)"), f.ReassignForm, services.case_reassign,
    allowed=_can_reassign,
)  # fmt: skip
PULL_UP = Action(
    "pull_up", _("Pull up to my organisation (supervisor)"), f.PullUpForm, services.case_pull_up,
    allowed=_can_pull_up,
)  # fmt: skip

# The order in which the page shows them: the step's own work first, routing last.
ACTIONS: tuple[Action, ...] = (
    ACCEPT, SCHEDULE, VISIT_PROPOSE, VISIT_MOVE, VISIT_NO_SHOW, VISIT_DECIDE, RECORD, RESOLVE,
    GIVE_FEEDBACK, REFER, REQUEST_INFO, REJECT, EVIDENCE,
    ASSIGN, ESCALATE, TRANSFER, DELEGATE, REASSIGN, PULL_UP,
)  # fmt: skip
ACTIONS_BY_NAME = {action.name: action for action in ACTIONS}


def available_actions(case: Case, user: User) -> list[Action]:
    """What this person may do to this case now, in page order.

    State-changing actions come from django-fsm (source state, conditions and
    the transition's permission); the others from ``casework.permissions``.
    """
    transitions = {t.name for t in case.get_available_user_state_transitions(user)}

    def offered(action: Action) -> bool:
        if action.transition:
            return action.transition in transitions
        return action.allowed(case, user)

    return [action for action in ACTIONS if offered(action)]


CONFLICT_MESSAGE = _(
    "Someone else changed this case after you opened the page. "
    "The page now shows the current case: check it and submit again if still needed."
)


def apply_service_error(form, error: CaseworkError) -> None:
    """Put a domain error onto the form: on its fields where they exist, else on the form."""
    if isinstance(error, CaseConflict):
        form.add_error(None, CONFLICT_MESSAGE)
        return
    placed = False
    for field, errors in error.field_errors.items():
        for message in errors:
            form.add_error(form.form_field(field), message)
            placed = True
    if not placed:
        form.add_error(None, str(error.message))


def call_service(form, service: Callable, *, actor: User, **extra) -> CaseworkError | None:
    """Call the action's one service; return the domain error it raised (None: done).

    No permission (the page should not have offered it) is a 403, a vanished case a 404.
    """
    try:
        service(actor=actor, **extra, **form.service_kwargs())
    except NotPermitted:
        raise PermissionDenied from None
    except NotFound:
        raise Http404 from None
    except CaseworkError as error:
        return error
    return None


def refreshed_form(form_class, request, error: CaseworkError, *, fresh_version: int, **kwargs):
    """The posted form again, with the error on it.

    After a conflict it carries the case's current version, so that a person who
    has looked at the news can submit it again; their typed text is kept.
    """
    data = request.POST.copy()
    prefix = kwargs["prefix"]
    if isinstance(error, CaseConflict):
        data[f"{prefix}-version"] = str(fresh_version)
    form = form_class(data, request.FILES, **kwargs)
    form.is_valid()
    apply_service_error(form, error)
    return form


# --- pages --------------------------------------------------------------------------


def _load_case(reference: str, user: User) -> Case | None:
    return selectors.staff_case(reference, user)


def _case_for_staff(request, reference: str) -> Case:
    case = _load_case(reference, request.user)
    # 404 rather than 403: a stranger learns nothing, not even that the reference exists.
    if case is None or not staff_may_view(case, request.user):
        raise Http404(_("No such case."))
    return case


def timeline_html(case: Case) -> SafeString:
    """The case page's timeline: its ``<li>`` items in one pass, every value escaped.

    ``selectors.staff_case_timeline`` reads the events with their actor's and
    organisation's names in one query (no model instances; a name decrypted once per
    person). An item's text (the event, its state change, who, which organisation)
    repeats along a long timeline: each distinct text is made and escaped once (the
    standard library's ``html.escape``, which Django's ``escape`` calls). The time is
    the event's ISO time in the current time zone, and no escaping is needed for it.
    """
    system = gettext("system")
    zone = timezone.get_current_timezone()
    texts: dict[tuple, str] = {}
    items = []
    for (
        _seq,
        at,
        kind,
        from_state,
        to_state,
        _actor,
        name,
        org_name,
    ) in selectors.staff_case_timeline(case):
        key = (kind, from_state, to_state, name, org_name)
        text = texts.get(key)
        if text is None:
            parts = [str(_kind_label(kind))]
            if to_state and from_state != to_state:
                parts.append(f" ({from_state or '—'} → {to_state})")
            parts.append(" · ")
            parts.append(system if name is None else name)
            if org_name:
                parts.append(f" · {org_name}")
            text = texts[key] = escape_html("".join(parts))
        iso = at.astimezone(zone).isoformat()
        # iso[:10] and iso[11:16]: strftime("%Y-%m-%d %H:%M") of the same time
        items.append(f'<li><time datetime="{iso}">{iso[:10]} {iso[11:16]}</time>{text}</li>')
    return mark_safe("\n".join(items))  # every interpolated value is escaped just above


def _coordination_rows(case: Case, user: User, override: dict):
    rows = []
    for task in selectors.staff_case_list(case, "coordination"):
        task.case = case  # already loaded; the forms read its version
        forms_of_task = {}
        if task.status == CoordinationTask.Status.OPEN and case.is_open:
            if may_complete_coordination(task, user):
                forms_of_task["complete"] = override.get(("complete", task.pk)) or (
                    f.CoordinationCompleteForm(task=task, prefix=f"complete-{task.pk}")
                )
            if permissions.is_case_handler(case, user):
                forms_of_task["waive"] = override.get(("waive", task.pk)) or (
                    f.CoordinationWaiveForm(task=task, prefix=f"waive-{task.pk}")
                )
        rows.append((task, forms_of_task))
    return rows


def render_case_page(request, case: Case, *, override=None, alert=None, status: int = 200):
    """The case page; ``override`` re-shows posted forms (by action name) with their errors."""
    override = override or {}
    user = request.user
    # Every rendering shows the youth's words, a re-shown form after an error too.
    personal_data_opened(request, case, what="case")
    now = timezone.now()
    coordination = _coordination_rows(case, user, override)
    open_required = [
        task
        for task, _forms in coordination
        if task.required and task.status == CoordinationTask.Status.OPEN
    ]
    # The state machine's "resolve" asks whether a required task is still open: the
    # page has just read them all (``permissions.coordination_complete``).
    case._conditions = {"coordination_complete": not open_required}
    actions = [
        (
            action,
            override.get(action.name)
            or action.form_class(case=case, user=user, prefix=action.name),
        )
        for action in available_actions(case, user)
    ]
    context = {
        "case": case,
        "badge": sla_badge(case.stage_due_at, now) if case.is_open else None,
        "actions": actions,
        "alert": alert,
        "is_supervisor": permissions.supervises_path(user, case.org.path),
        "resolve_waits": case.state == CaseState.COORDINATING and bool(open_required),
        "case_messages": selectors.staff_case_list(case, "messages"),
        "verifications": selectors.staff_case_list(case, "verifications"),
        "visits": selectors.staff_case_list(case, "visits"),
        "evidence": selectors.staff_case_list(case, "evidence"),
        "coordination": coordination,
        "timeline_items": timeline_html(case),
    }
    # One CSRF token for the page's forms and the header's, as one template would give.
    token = get_token(request)
    context["csrf_field"] = format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', token
    )
    # Jinja2 escaped every value it printed.
    content = mark_safe(jinja.render_to_string("casework/staff/case.html", context))
    # The page around it; the whole context goes along (the test client records it).
    context.update(content=content, csrf_token=token)
    if "viewer_unread" in case.__dict__:  # the header's count, read with the case
        context["notifications_unread"] = case.viewer_unread
    return render(request, "casework/staff/case.html", context, status=status)


def _kind_label(kind: str) -> str:
    try:
        return EventKind(kind).label
    except ValueError:
        return kind


@login_required
def case_page(request, reference: str):
    """The workbench page of one case: facts, messages, timeline and the actions open now."""
    case = _case_for_staff(request, reference)
    return render_case_page(request, case)


def _after_change(request, case: Case):
    """Back to the case page if the person may still see it (a moved case may be gone)."""
    fresh = _load_case(case.reference, request.user)
    if fresh is not None and staff_may_view(fresh, request.user):
        return redirect("casework:staff_case", reference=case.reference)
    return redirect("workflows:inbox")


@require_POST
@login_required
def case_action(request, reference: str, action: str):
    """Run one action of the case page: validate its form, call its one service."""
    case = _case_for_staff(request, reference)
    chosen = ACTIONS_BY_NAME.get(action)
    if chosen is None:
        raise Http404(_("No such action."))
    if chosen not in available_actions(case, request.user):
        # The case moved on since the page was drawn (or the action was never offered).
        alert = _("“%(action)s” is not possible for you on this case now.") % {
            "action": chosen.label
        }
        return render_case_page(request, case, alert=alert, status=409)
    kwargs = {"case": case, "user": request.user, "prefix": chosen.name}
    form = chosen.form_class(request.POST, request.FILES, **kwargs)
    if not form.is_valid():
        return render_case_page(request, case, override={chosen.name: form}, status=400)
    error = call_service(form, chosen.service, actor=request.user, case=case.pk)
    if error is None:
        messages.success(
            request,
            _("Done: %(action)s · %(case)s.") % {"action": chosen.label, "case": reference},
        )
        return _after_change(request, case)
    # Re-read the case: after a conflict the page must show what changed.
    fresh = _case_for_staff(request, reference)
    kwargs["case"] = fresh
    form = refreshed_form(chosen.form_class, request, error, fresh_version=fresh.version, **kwargs)
    conflict = isinstance(error, CaseConflict)
    return render_case_page(
        request,
        fresh,
        override={chosen.name: form},
        alert=CONFLICT_MESSAGE if conflict else None,
        status=409 if conflict else 400,
    )


# --- coordination tasks ------------------------------------------------------------------


def may_complete_coordination(task: CoordinationTask, user: User) -> bool:
    """A member of the partner body (partner or handler role), or a handler of the case."""
    return permissions.has_role_at(
        user, task.partner_id, permissions.PARTNER, permissions.HANDLER
    ) or permissions.is_case_handler(task.case, user)


def _partner_org_ids(user) -> list[int]:
    return [
        r.org_id
        for r in permissions.roles_of(user)
        if r.role in (permissions.PARTNER, permissions.HANDLER)
    ]


@login_required
def coordination_list(request):
    """The coordination tasks given to the person's partner bodies.

    Partners see the instructions, the case reference and category, and the
    deadline: never the youth's description, name or contact.
    """
    org_ids = _partner_org_ids(request.user)
    tasks = list(
        CoordinationTask.objects.filter(partner_id__in=org_ids)
        .select_related("case", "case__category", "partner")
        .order_by("status", "due_at", "created_at")[:200]
    )
    now = timezone.now()
    rows = []
    for task in tasks:
        form = None
        if task.status == CoordinationTask.Status.OPEN and task.case.is_open:
            form = f.CoordinationCompleteForm(task=task, prefix=f"complete-{task.pk}")
        badge = sla_badge(task.due_at, now) if task.status == CoordinationTask.Status.OPEN else None
        rows.append((task, badge, form))
    return render(request, "casework/staff/coordination_list.html", {"rows": rows})


COORDINATION_ACTIONS = {
    "complete": (f.CoordinationCompleteForm, services.coordination_complete),
    "waive": (f.CoordinationWaiveForm, services.coordination_waive),
}


@require_POST
@login_required
def coordination_action(request, task_id: int, action: str):
    """Complete (partner or handler) or waive (handler) one coordination task."""
    task = (
        CoordinationTask.objects.select_related("case", "case__org", "case__category", "partner")
        .filter(pk=task_id)
        .first()
    )
    if task is None or action not in COORDINATION_ACTIONS:
        raise Http404(_("No such coordination task."))
    case = task.case
    is_partner = permissions.has_role_at(
        request.user, task.partner_id, permissions.PARTNER, permissions.HANDLER
    )
    if not (is_partner or staff_may_view(case, request.user)):
        raise Http404(_("No such coordination task."))
    form_class, service = COORDINATION_ACTIONS[action]
    prefix = f"{action}-{task.pk}"
    form = form_class(request.POST, task=task, prefix=prefix)
    error = None
    if form.is_valid():
        error = call_service(form, service, actor=request.user)
        if error is None:
            messages.success(
                request, _("Done: coordination task of %(case)s.") % {"case": case.reference}
            )
            if staff_may_view(case, request.user):
                return redirect("casework:staff_case", reference=case.reference)
            return redirect("casework:coordination_list")
        task.case = Case.objects.select_related("org", "category").get(pk=case.pk)
        form = refreshed_form(
            form_class, request, error, fresh_version=task.case.version, task=task, prefix=prefix
        )
    status = 409 if isinstance(error, CaseConflict) else 400
    if not staff_may_view(case, request.user):
        # Partners have no case page: their list shows the errors.
        for message in form.non_field_errors():
            messages.error(request, message)
        for name, errs in form.errors.items():
            if name in form.fields:
                for message in errs:
                    messages.error(request, f"{form.fields[name].label}: {message}")
        return redirect("casework:coordination_list")
    return render_case_page(
        request,
        task.case,
        override={(action, task.pk): form},
        alert=CONFLICT_MESSAGE if status == 409 else None,
        status=status,
    )


# --- evidence files --------------------------------------------------------------------------


@login_required
def evidence_file(request, evidence_id: int):
    """Serve one evidence file to staff who may see its case; nobody else learns it exists."""
    evidence = Evidence.objects.select_related("case", "case__org").filter(pk=evidence_id).first()
    if evidence is None or not staff_may_view(evidence.case, request.user):
        raise Http404(_("No such file."))
    personal_data_opened(request, evidence.case, what="evidence")
    try:
        handle = evidence.file.open("rb")
    except FileNotFoundError:
        raise Http404(_("The file is missing from storage.")) from None
    extension = evidence.file.name.rsplit(".", 1)[-1]
    response = FileResponse(
        handle,
        content_type=evidence.content_type,
        as_attachment=True,
        filename=f"{evidence.case.reference}-evidence-{evidence.pk}.{extension}",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


# --- the workbench home ------------------------------------------------------------------


@login_required
def workbench(request):
    """Where the staff member's work is: the inbox, cases assigned to them, coordination tasks."""
    roles = permissions.roles_of(request.user)
    if not roles:
        raise PermissionDenied(_("The workbench is for the staff of organisations."))
    now = timezone.now()
    assigned = [
        (case, sla_badge(case.stage_due_at, now))
        for case in Case.objects.filter(
            assignee=request.user, state__in=[s.value for s in OPEN_STATES]
        )
        .select_related("org", "category")
        .order_by(F("stage_due_at").asc(nulls_last=True), "pk")[:50]
    ]
    coordination_open = CoordinationTask.objects.filter(
        partner_id__in=_partner_org_ids(request.user), status=CoordinationTask.Status.OPEN
    ).count()
    return render(
        request,
        "casework/staff/workbench.html",
        {
            "assigned": assigned,
            "coordination_open": coordination_open,
            "is_supervisor": any(r.role == permissions.SUPERVISOR for r in roles),
        },
    )


urlpatterns = [
    path("work/", workbench, name="workbench"),
    path("work/cases/<str:reference>/", case_page, name="staff_case"),
    path("work/cases/<str:reference>/<slug:action>/", case_action, name="staff_action"),
    path("work/coordination/", coordination_list, name="coordination_list"),
    path(
        "work/coordination/<int:task_id>/<slug:action>/",
        coordination_action,
        name="coordination_action",
    ),
    path("work/evidence/<int:evidence_id>/", evidence_file, name="evidence_file"),
]
