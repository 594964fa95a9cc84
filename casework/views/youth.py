"""Pages of the youth area: sign-up, the request form, "my cases" and the case page.

Each action page calls exactly one service. A service's ``CaseworkError`` is shown
on the form beside the field it concerns, with what was typed kept; a stale form
(the case changed since the page was shown) gets the conflict message and the
current version, never a 500. Someone else's case is a 404, as if it did not exist.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from .. import forms as youth_forms
from .. import services
from ..errors import CaseConflict, CaseworkError, NotPermitted
from ..models import Case, CaseMessage, Organisation, Region
from ..permissions import appeal_available
from ..services import privacy
from ..states import OPEN_STATES, CaseState
from ..youth_timeline import (
    next_step,
    org_ids_in,
    org_name,
    plain_timeline,
    solved_label,
    steps_for,
)

CASES_PER_PAGE = 20
REFERENCE_RE = re.compile(r"[A-Z0-9-]{1,16}")
# Messages the youth sees on the case page (never internal notes).
YOUTH_MESSAGE_KINDS = (
    CaseMessage.Kind.QUESTION,
    CaseMessage.Kind.ANSWER,
    CaseMessage.Kind.FEEDBACK,
    CaseMessage.Kind.DISPUTE,
)


# --- helpers -------------------------------------------------------------------


def needs_guardian_consent(user) -> bool:
    """Under the consent age (14) with no active guardian consent on record."""
    return privacy.needs_guardian_consent(user) and privacy.active_guardian_consent(user) is None


# Service field names that the youth's forms call differently.
FIELD_ALIASES = {"region_code": "city", "relationship": "relation"}


def apply_errors(form, error: CaseworkError) -> None:
    """Put a service's errors on the form: beside their field, or at the top."""
    field_errors = error.field_errors or {}
    placed = False
    for field, errors in field_errors.items():
        target = FIELD_ALIASES.get(field, field) if field not in form.fields else field
        for message in errors:
            if target in form.fields:
                form.add_error(target, message)
                placed = True
            else:
                form.add_error(None, message)
                placed = True
    if not placed:
        form.add_error(None, str(error.message))


def _youth_case(request, reference: str) -> Case:
    """The signed-in youth's own case, or 404 (someone else's case does not exist for them)."""
    if not REFERENCE_RE.fullmatch(reference):
        raise Http404(_("No such case."))
    case = (
        Case.objects.select_related("org", "category", "station", "rating")
        .filter(reference=reference, youth=request.user)
        .first()
    )
    if case is None:
        raise Http404(_("No such case."))
    return case


def _ratings_service():
    """Helper G's ratings and complaints services (None while they are not there)."""
    try:
        from ..services import ratings
    except ImportError:
        return None
    return ratings


def _complaint_service():
    return getattr(_ratings_service(), "complaint_submit", None)


def _dispute_offered(case: Case, user) -> bool:
    offered = getattr(_ratings_service(), "dispute_offered", None)
    if offered is not None:
        return bool(offered(case, user))
    return case.state == CaseState.FEEDBACK_GIVEN


def _rating_editable(case: Case) -> bool:
    """A closed case whose rating was given within the rating window (ratings.rating_edit)."""
    if case.state != CaseState.CLOSED or not _has_rating(case):
        return False
    return timezone.now() - case.rating.created_at <= settings.CASEWORK_RATING_WINDOW


def available_actions(case: Case, user) -> list[dict]:
    """The forms the youth may open for this case, in the order they matter."""
    actions = []
    if case.state == CaseState.AWAITING_YOUTH:
        actions.append({"slug": "answer", "label": _("Answer the question"), "primary": True})
    if case.state == CaseState.FEEDBACK_GIVEN:
        actions.append({"slug": "rate", "label": _("Rate the handling"), "primary": True})
    if _dispute_offered(case, user):
        actions.append({"slug": "dispute", "label": _("The result is not right")})
    if _rating_editable(case):
        actions.append({"slug": "rerate", "label": _("Change my rating")})
    if case.state == CaseState.REJECTED and appeal_available(case):
        actions.append({"slug": "appeal", "label": _("Appeal the decision"), "primary": True})
    if _complaint_service() is not None and case.state != CaseState.SUBMITTED:
        actions.append({"slug": "complain", "label": _("Complain about the handling")})
    if case.state in OPEN_STATES:
        actions.append({"slug": "withdraw", "label": _("Withdraw my request"), "danger": True})
    return actions


# --- sign-up -------------------------------------------------------------------------


def register(request):
    """Sign up as a young person: username, password, display name, birth date, region."""
    if request.user.is_authenticated:
        return redirect("casework:youth_cases")
    form = youth_forms.RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! You can ask for help now."))
        return redirect("casework:youth_cases")
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/register.html", {"form": form}, status=status)


# --- my cases ------------------------------------------------------------------------


@login_required
def my_cases(request):
    """The youth's own requests, newest first."""
    cases = (
        Case.objects.filter(youth=request.user)
        .select_related("org", "category")
        .order_by("-submitted_at")
    )
    page = Paginator(cases, CASES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {"case": case, "org": org_name(case.org), "next": next_step(case)}
        for case in page.object_list
    ]
    return render(request, "casework/youth/my_cases.html", {"page": page, "rows": rows})


# --- the request form ----------------------------------------------------------------


@login_required
def new_case(request):
    """Ask for help ("找帮助"). Without JavaScript, "update choices" reloads the pickers."""
    if needs_birth_date(request.user):
        return redirect("casework:youth_birth_date")
    if needs_guardian_consent(request.user):
        return redirect("casework:youth_consent")
    refreshing = request.method == "POST" and "refresh" in request.POST
    if request.method == "POST":
        form = youth_forms.CaseRequestForm(request.POST)
    else:
        form = youth_forms.CaseRequestForm(initial=_initial_region(request.user))
    status = 200
    if request.method == "POST" and not refreshing:
        if form.is_valid():
            data = form.cleaned_data
            try:
                case = services.case_submit(
                    youth=request.user,
                    category=data["category"],
                    region_code=data["region_code"],
                    title=data["title"],
                    description=data["description"],
                    urgency=data["urgency"],
                    requested_org=data.get("requested_org"),
                    is_public=data["is_public"],
                )
            except CaseworkError as error:
                apply_errors(form, error)
            else:
                messages.success(
                    request,
                    _("Your request %(reference)s was sent to %(org)s.")
                    % {"reference": case.reference, "org": org_name(case.org)},
                )
                return redirect("casework:youth_case", reference=case.reference)
        status = 400
    if refreshing:
        form.errors.clear()  # only the pickers changed: no errors yet
    return render(request, "casework/youth/new_case.html", {"form": form}, status=status)


def _initial_region(user) -> dict:
    code = (getattr(user, "region_code", "") or "").strip()
    region = Region.objects.filter(code=code).select_related("parent").first() if code else None
    if region is None:
        return {}
    if region.level == Region.Level.DISTRICT and region.parent:
        return {"province": region.parent.parent_id, "city": region.parent_id, "district": code}
    if region.level == Region.Level.CITY:
        return {"province": region.parent_id, "city": code}
    return {"province": code}


def needs_birth_date(user) -> bool:
    """A youth with no birth date on record (an account made by an administrator)."""
    return user.birth_date is None and privacy.is_youth_account(user)


@login_required
def birth_date(request):
    """Asked once, before the request form, of a youth whose birth date is not known."""
    if not needs_birth_date(request.user):
        return redirect("casework:youth_new")
    form = youth_forms.BirthDateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                privacy.declare_birth_date(user=request.user, born=form.cleaned_data["birth_date"])
            except CaseworkError as error:
                apply_errors(form, error)
            else:
                return redirect("casework:youth_new")
        status = 400
    return render(request, "casework/youth/birth_date.html", {"form": form}, status=status)


@login_required
def guardian_consent(request):
    """The guardian-consent step for youth under 14, before the request form."""
    if not needs_guardian_consent(request.user):
        return redirect("casework:youth_new")
    form = youth_forms.GuardianConsentForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _record_consent(request.user, form.cleaned_data)
            except CaseworkError as error:
                apply_errors(form, error)
            else:
                messages.success(request, _("Thank you. Your guardian's consent is recorded."))
                return redirect("casework:youth_new")
        status = 400
    return render(request, "casework/youth/consent.html", {"form": form}, status=status)


def _record_consent(user, data: dict) -> None:
    privacy.record_guardian_consent(
        youth=user,
        guardian_name=data["guardian_name"],
        relationship=data["relation"],
        method=data["method"],
        actor=user,
    )


@login_required
@require_GET
def regions(request):
    """The regions under ``parent`` (JSON), for the dependent selects."""
    parent = youth_forms._code(request.GET.get("parent"))
    rows = Region.objects.filter(parent_id=parent) if parent else Region.objects.none()
    return JsonResponse({"regions": [{"code": r.code, "name": r.name} for r in rows]})


@login_required
@require_GET
def org_search(request):
    """Organisations a youth may name, filtered by category and a name fragment (JSON)."""
    category = youth_forms._code(request.GET.get("category"))
    query = youth_forms.search_text(request.GET.get("q"))
    orgs = youth_forms.named_org_queryset(category=category, query=query)[:50]
    return JsonResponse({"orgs": [{"id": o.pk, "name": org_name(o)} for o in orgs]})


# --- the case page -------------------------------------------------------------------


@login_required
def case_page(request, reference: str):
    """One of the youth's cases in plain words: who holds it, stage, next step, deadline."""
    case = _youth_case(request, reference)
    return render(request, "casework/youth/case.html", _case_context(case, request.user))


def _case_context(case: Case, user) -> dict:
    events = list(case.events.only("seq", "kind", "at", "org_id", "payload"))
    names = {
        o.pk: org_name(o)
        for o in Organisation.objects.filter(pk__in=org_ids_in(events)).only(
            "pk", "name", "name_en"
        )
    }
    msgs = case.messages.filter(internal=False, kind__in=YOUTH_MESSAGE_KINDS).only(
        "kind", "body", "created_at", "author_id"
    )
    paused = case.state == CaseState.AWAITING_YOUTH
    question = None
    if paused:
        question = next(
            (m for m in reversed(list(msgs)) if m.kind == CaseMessage.Kind.QUESTION), None
        )
    appeal_open = case.state == CaseState.REJECTED and appeal_available(case)
    appeal_until = None
    if appeal_open and case.closed_at:
        appeal_until = case.closed_at + settings.CASEWORK_APPEAL_WINDOW
    rating = getattr(case, "rating", None) if _has_rating(case) else None
    return {
        "case": case,
        "org_name": org_name(case.org),
        "station_name": org_name(case.station),
        "steps": steps_for(case),
        "next_step": next_step(case, appeal_open=appeal_open),
        "deadline": None if paused else case.stage_due_at,
        "paused": paused,
        "appeal_until": appeal_until,
        "timeline": plain_timeline(events, names),
        "messages_for_youth": [
            {"mine": m.author_id == case.youth_id, "kind": m.get_kind_display(), **_msg(m)}
            for m in msgs
        ],
        "question": question,
        "actions": available_actions(case, user),
        "complaints": _complaints(case),
        "rating": rating,
        "solved_label": solved_label(rating.solved) if rating else "",
        "public_url": reverse("casework:public_case", args=[case.public_token]),
        "visit": _visit_panel(case, user),
    }


def _visit_panel(case: Case, user):
    from .stations import visit_panel

    return visit_panel(case, user)


def _complaints(case: Case) -> list:
    complaints = getattr(case, "complaints", None)
    if complaints is None:
        return []
    return list(complaints.only("body", "status", "answer", "created_at", "answered_at"))


def _msg(message: CaseMessage) -> dict:
    return {"body": message.body, "at": message.created_at}


def _has_rating(case: Case) -> bool:
    try:
        return case.rating is not None
    except Case.rating.RelatedObjectDoesNotExist:
        return False


# --- the action forms ----------------------------------------------------------------


def _answer(case, user, data, version):
    return services.case_provide_info(
        case=case, actor=user, answer=data["answer"], expected_version=version
    )


def _withdraw(case, user, data, version):
    return services.case_withdraw(
        case=case, actor=user, reason=data.get("reason", ""), expected_version=version
    )


def _appeal(case, user, data, version):
    return services.case_appeal(
        case=case, actor=user, statement=data["statement"], expected_version=version
    )


def _rate(case, user, data, version):
    return services.case_rate(
        case=case,
        actor=user,
        timeliness=data["timeliness"],
        attitude=data["attitude"],
        outcome=data["outcome"],
        solved=data["solved"],
        comment=data.get("comment", ""),
        expected_version=version,
    )


def _rerate(case, user, data, version):
    return services.rating_edit(
        case=case,
        actor=user,
        timeliness=data["timeliness"],
        attitude=data["attitude"],
        outcome=data["outcome"],
        solved=data["solved"],
        comment=data.get("comment", ""),
        expected_version=version,
    )


def _dispute(case, user, data, version):
    return services.case_dispute(
        case=case, actor=user, reason=data["reason"], expected_version=version
    )


def _complain(case, user, data, version):
    service = _complaint_service()
    if service is None:
        raise NotPermitted(_("Complaints cannot be sent online yet."))
    return service(case=case, actor=user, body=data["body"])


ACTIONS = {
    "answer": (
        youth_forms.AnswerForm,
        _answer,
        _("Answer the question"),
        _("Thank you. Your answer was sent and the case continues."),
    ),
    "withdraw": (
        youth_forms.WithdrawForm,
        _withdraw,
        _("Withdraw my request"),
        _("Your request was withdrawn."),
    ),
    "appeal": (
        youth_forms.AppealForm,
        _appeal,
        _("Appeal the decision"),
        _("Your appeal was sent to the organisation one level up."),
    ),
    "rate": (
        youth_forms.RateForm,
        _rate,
        _("Rate the handling"),
        _("Thank you for your rating. Your request is closed."),
    ),
    "rerate": (
        youth_forms.RateForm,
        _rerate,
        _("Change my rating"),
        _("Your rating was changed."),
    ),
    "dispute": (
        youth_forms.DisputeForm,
        _dispute,
        _("The result is not right"),
        _("Your request was reopened."),
    ),
    "complain": (
        youth_forms.ComplaintForm,
        _complain,
        _("Complain about the handling"),
        _("Your complaint was sent to the supervisors."),
    ),
}


@login_required
def case_action(request, reference: str, action: str):
    """One action form for one of the youth's cases; POST calls its one service."""
    if action not in ACTIONS:
        raise Http404(_("No such page."))
    case = _youth_case(request, reference)
    form_class, run, title, done = ACTIONS[action]
    status = 200
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                run(case, request.user, data, data["version"])
            except CaseConflict as error:
                # Show what the case is now and let the youth decide again.
                case = _youth_case(request, reference)
                form = form_class(_fresh_data(request.POST, case.version))
                form.is_valid()
                form.add_error(None, str(error.message))
                status = 409
            except NotPermitted as error:
                form.add_error(None, str(error.message))
                status = 403
            except CaseworkError as error:
                apply_errors(form, error)
                status = 400
            else:
                messages.success(request, done)
                return redirect("casework:youth_case", reference=case.reference)
        else:
            if "version" in form.errors:
                # A mangled hidden field: treat it as a stale page, with the current version.
                form = form_class(_fresh_data(request.POST, case.version))
                form.is_valid()
                form.add_error(None, str(CaseConflict.default_message))
            status = 400
    else:
        form = form_class(initial=_initial(action, case))
    context = _case_context(case, request.user) | {"form": form, "action": action, "title": title}
    return render(request, "casework/youth/action.html", context, status=status)


def _initial(action: str, case: Case) -> dict:
    """What an action form shows first: the case version; when changing a rating, the rating."""
    initial = {"version": case.version}
    if action == "rerate" and _has_rating(case):
        rating = case.rating
        initial |= {
            "timeliness": str(rating.timeliness),
            "attitude": str(rating.attitude),
            "outcome": str(rating.outcome),
            "solved": rating.solved,
            "comment": rating.comment,
        }
    return initial


def _fresh_data(post, version: int):
    data = post.copy()
    data["version"] = str(version)
    return data


urlpatterns = [
    path("register/", register, name="register"),
    path("my/", my_cases, name="youth_cases"),
    path("my/new/", new_case, name="youth_new"),
    path("my/new/consent/", guardian_consent, name="youth_consent"),
    path("my/new/birth-date/", birth_date, name="youth_birth_date"),
    path("my/regions/", regions, name="youth_regions"),
    path("my/organisations/", org_search, name="youth_org_search"),
    path("my/cases/<str:reference>/", case_page, name="youth_case"),
    path("my/cases/<str:reference>/<slug:action>/", case_action, name="youth_action"),
]
