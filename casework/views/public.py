"""Pages of the public area, no sign-in: a case's progress by token, and statistics.

The progress page shows only what ``casework.public.public_view`` returns: that
function is the one redaction rule; this module adds no case data of its own.
Signed-in people may report a case from its progress page (``report_case``).
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from config.db_router import use_replica

from .. import services
from ..errors import CaseworkError, NotFound, NotPermitted
from ..events import EventKind
from ..forms import ReportForm
from ..models import Case, Category, Region
from ..public import public_queryset, public_view, region_names_for
from ..public_stats import public_stats
from ..states import CaseState
from ..youth_timeline import ESCALATION_REASONS, STEPS

TOKEN_MAX = 64
# Tokens are secrets.token_urlsafe(); anything else (e.g. a NUL byte) cannot match one.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")

STAGE_LABELS = {
    "intake": _("Online intake"),
    "verification": _("Offline verification"),
    "coordination": _("Coordination"),
    "paused": _("Waiting for the young person"),
    "feedback": _("Feedback"),
    "rating": _("Rating"),
    "closed": _("Closed"),
}
LEVEL_LABELS = {
    1: _("province"),
    2: _("city"),
    3: _("district or university"),
    4: _("branch or service station"),
}


def _label(choices, value) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value or "")


# The public page names the fifth step for everyone ("接受青年评价"), not "your rating".
PUBLIC_STEPS = [(key, _("Youth rating") if key == "rating" else label) for key, label in STEPS]


def _steps(stage: str, in_progress: bool) -> list[dict]:
    keys = [key for key, _label in PUBLIC_STEPS]
    done_all = not in_progress
    index = keys.index(stage) if stage in keys else (len(keys) if done_all else -1)
    if stage == "paused":
        index = keys.index("coordination")
    return [
        {"label": label, "done": i < index or done_all, "current": i == index and not done_all}
        for i, (key, label) in enumerate(PUBLIC_STEPS)
    ]


def _case_by_token(queryset, token: str) -> Case:
    if len(token) > TOKEN_MAX or not TOKEN_RE.fullmatch(token):
        raise Http404(_("No such case."))
    case = queryset.filter(public_token=token).first()
    if case is None:
        raise Http404(_("No such case."))
    return case


def _noindex(response):
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
@cache_control(private=True, no_store=True)
@use_replica
def case_progress(request, token: str):
    """A case's public progress page: redacted, never indexed, sends no referrer."""
    case = _case_by_token(public_queryset(), token)
    view = public_view(case, region_names=region_names_for([case]))
    if view.get("hidden") or getattr(case, "hidden_from_public", False):
        # Reported above the threshold and waiting for review: show nothing of it.
        view = {"reference": view.get("reference"), "private": True, "hidden": True}
    own = request.user.is_authenticated and case.youth_id == request.user.pk
    context = {"view": view, "token": token, "may_report": not own}
    if not view.get("private"):
        context |= {
            "steps": _steps(view["stage"], view["in_progress"]),
            # "Closed" says less than how it closed (closed, rejected, withdrawn).
            "stage_label": _label(CaseState, view["state"])
            if view["stage"] == "closed"
            else STAGE_LABELS.get(view["stage"], ""),
            "region_label": _region_label(view["region_code"], view["region"]),
            "level_label": LEVEL_LABELS.get(view["handling_level"], ""),
            "category_label": _category_label(view["category"], view["category_name"]),
            "outcome_label": _label(Case.Outcome, view["outcome"]) if view["outcome"] else "",
            "timeline": [
                {"on": e["on"], "label": _label(EventKind, e["kind"])} for e in view["timeline"]
            ],
            "escalations": [
                {"on": e["on"], "reason": ESCALATION_REASONS.get(e["reason"], "")}
                for e in view["escalations"]
            ],
        }
    return _noindex(render(request, "casework/public/case.html", context))


@login_required
@cache_control(private=True, no_store=True)
def report_case(request, token: str):
    """Report a case as fake or abusive, or say whether its help information is true.

    Anyone signed in who can see the case (on its public page, or as staff) may,
    once; its own youth may not (they complain instead). ``report_submit`` decides.
    """
    case = _case_by_token(Case.objects.all(), token)
    form = ReportForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                kind = form.cleaned_data["kind"]
                services.report_submit(case=case, actor=request.user, kind=kind)
            except NotFound:
                raise Http404(_("No such case.")) from None
            except NotPermitted as error:
                form.add_error(None, str(error.message))
                status = 403
            except CaseworkError as error:
                for message in [*error.field_errors.get("kind", [])] or [str(error.message)]:
                    form.add_error(None, message)
            else:
                messages.success(request, _("Thank you. Your report was recorded."))
                return redirect("casework:public_case", token=token)
    context = {"form": form, "token": token, "reference": case.reference}
    return _noindex(render(request, "casework/public/report.html", context, status=status))


def _region_label(code: str, name: str) -> str:
    from django.utils.translation import get_language

    if code and (get_language() or "").startswith("en"):
        english = Region.objects.filter(code=code).values_list("name_en", flat=True).first()
        return english or name
    return name


def _category_label(code: str, name: str) -> str:
    from django.utils.translation import get_language

    if (get_language() or "").startswith("en"):
        english = Category.objects.filter(code=code).values_list("name_en", flat=True).first()
        return english or name
    return name


@require_GET
@use_replica
def statistics(request):
    """Platform-wide figures: cases by stage, category and city; on-time rate; ratings."""
    stats = public_stats()
    by_stage = [(STAGE_LABELS.get(stage, stage), n) for stage, n in stats.by_stage]
    by_channel = [(Case.Channel(channel).label, n) for channel, n in stats.by_channel]
    return render(
        request,
        "casework/public/stats.html",
        {
            "stats": stats,
            "by_stage": by_stage,
            "by_channel": by_channel,
            "top": max([n for _s, n in by_stage] or [1]),
        },
    )


urlpatterns = [
    path("p/<str:token>/", case_progress, name="public_case"),
    path("p/<str:token>/report/", report_case, name="public_report"),
    path("stats/", statistics, name="public_stats"),
]
