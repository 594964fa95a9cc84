"""Intake pages: staff enter a case for a youth; the youth claims it and rates the station visit.

Each page calls one service (casework.services.intake); its errors land on the form
beside their field, with what was typed kept, never a 500.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from .. import forms_intake as f
from .. import services
from ..errors import CaseConflict, CaseworkError, NotPermitted
from ..models import Case
from ..services.intake import may_enter_intake, visit_to_rate
from .youth import _case_context, _fresh_data, _youth_case, apply_errors


@login_required
def staff_intake(request):
    """Enter a walk-in or 12355 phone request for a youth; the youth gets a claim code."""
    if not may_enter_intake(request.user):
        raise PermissionDenied(_("Only staff of a station or organisation can enter cases."))
    form = f.StaffIntakeForm(request.POST or None, user=request.user)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                case = services.intake_enter(actor=request.user, **form.cleaned_data)
            except CaseworkError as error:
                apply_errors(form, error)
            else:
                messages.success(
                    request,
                    _(
                        "Case %(reference)s was entered and sent to %(org)s. "
                        "The youth gets a claim code by SMS."
                    )
                    % {"reference": case.reference, "org": case.org},
                )
                return redirect("casework:staff_intake_done", reference=case.reference)
        status = 400
    return render(request, "casework/intake/staff_intake.html", {"form": form}, status=status)


@login_required
def staff_intake_done(request, reference: str):
    """What was entered: the reference to tell the youth, and a way to send a new code."""
    if not may_enter_intake(request.user):
        raise PermissionDenied(_("Only staff of a station or organisation can enter cases."))
    case = (
        Case.objects.select_related("org", "intake")
        .filter(reference=reference[:16], intake__entered_by=request.user)
        .first()
    )
    if case is None:
        raise PermissionDenied(_("You did not enter this case."))
    return render(request, "casework/intake/staff_intake_done.html", {"case": case})


@login_required
@require_POST
def staff_resend_code(request, reference: str):
    """Send the youth a new claim code (the old one expired or was locked)."""
    case = Case.objects.filter(reference=reference[:16]).first()
    if case is None:
        raise PermissionDenied()
    try:
        services.intake_resend_code(case=case, actor=request.user)
    except NotPermitted as error:
        raise PermissionDenied(str(error.message)) from error
    except CaseworkError as error:
        messages.error(request, str(error.message))
    else:
        messages.success(request, _("A new claim code was sent to the youth."))
    return redirect("casework:staff_intake_done", reference=case.reference)


@login_required
def claim(request):
    """Take a case that staff entered for you into your account, with the SMS code."""
    form = f.ClaimForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                case = services.case_claim(actor=request.user, **form.cleaned_data)
            except CaseworkError as error:
                apply_errors(form, error)
                status = 403 if isinstance(error, NotPermitted) else 400
            else:
                messages.success(
                    request, _("Case %(reference)s is now yours.") % {"reference": case.reference}
                )
                return redirect("casework:youth_case", reference=case.reference)
        else:
            status = 400
    return render(request, "casework/intake/claim.html", {"form": form}, status=status)


@login_required
def rate_visit(request, reference: str):
    """Rate the station visit of one of your cases (once per visit)."""
    case = _youth_case(request, reference)
    visit = visit_to_rate(case)
    status = 200
    if request.method == "POST":
        form = f.VisitRateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.visit_rate(
                    case=case,
                    actor=request.user,
                    stars=data["stars"],
                    comment=data["comment"],
                    expected_version=data["version"],
                )
            except CaseConflict as error:
                case = _youth_case(request, reference)
                form = f.VisitRateForm(_fresh_data(request.POST, case.version))
                form.is_valid()
                form.add_error(None, str(error.message))
                status = 409
            except CaseworkError as error:
                apply_errors(form, error)
                status = 400
            else:
                messages.success(request, _("Thank you for rating your visit."))
                return redirect("casework:youth_case", reference=case.reference)
        else:
            status = 400
    else:
        form = f.VisitRateForm(initial={"version": case.version})
    context = _case_context(case, request.user) | {
        "form": form,
        "visit": visit,
        "title": _("Rate the station visit"),
    }
    return render(request, "casework/intake/rate_visit.html", context, status=status)


urlpatterns = [
    path("work/intake/", staff_intake, name="staff_intake"),
    path("work/intake/<str:reference>/", staff_intake_done, name="staff_intake_done"),
    path("work/intake/<str:reference>/code/", staff_resend_code, name="staff_resend_code"),
    path("my/claim/", claim, name="youth_claim"),
    path("my/visits/<str:reference>/", rate_visit, name="youth_rate_visit"),
]
