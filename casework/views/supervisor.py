"""The supervisor console: the subtree dashboard, the audit timeline and the CSV exports.

Charts are SVG drawn on the server with their numbers written beside them (and
the same numbers in tables), so they need no script and read out loud.
Reassign and pull-up are actions of the workbench case page
(``casework.views.staff``), offered there to supervisors.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from config.db_router import use_replica

from .. import permissions, selectors
from ..events import EventKind
from ..forms import ModelChoiceField
from ..models import Case, Category, Organisation
from ..services import privacy as privacy_services
from ..services.dashboard_rollup import period_start
from ..states import CaseState
from .staff import sla_badge

PERIODS = [(4, _("4 weeks")), (12, _("12 weeks")), (26, _("26 weeks")), (52, _("52 weeks"))]


# --- charts: pure geometry for server-rendered SVG ---------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: int
    text_x: int


def bar_chart(items: list[tuple[str, int]], *, width: int = 360, row: int = 26) -> dict:
    """Horizontal bars, one row each, scaled to the largest value (pure)."""
    top = max((value for _, value in items), default=0) or 1
    bars = [
        Bar(
            label=str(label),
            value=value,
            y=i * row,
            width=round(width * value / top),
            text_x=round(width * value / top) + 6,
        )
        for i, (label, value) in enumerate(items)
    ]
    return {"bars": bars, "height": max(len(items), 1) * row, "width": width + 60, "row": row - 6}


def line_chart(
    labels: list[str], series: dict[str, list[int]], *, width: int = 560, height: int = 160
) -> dict:
    """Lines over the same x axis (weeks), scaled to the largest value of all series (pure)."""
    count = max(len(labels), 1)
    top = max((v for values in series.values() for v in values), default=0) or 1
    step = width / max(count - 1, 1)

    def point(i: int, v: int) -> tuple[int, int]:
        return round(i * step), round(height - height * v / top)

    lines = []
    for index, (name, values) in enumerate(series.items()):
        points = [point(i, v) for i, v in enumerate(values)]
        lines.append(
            {
                "name": name,
                "points": " ".join(f"{x},{y}" for x, y in points),
                "dots": [(x, y, v) for (x, y), v in zip(points, values, strict=True)],
                "style": index,
            }
        )
    ticks = [(round(i * step), label) for i, label in enumerate(labels)]
    # Label every few weeks so the axis stays legible.
    every = max(1, len(ticks) // 8)
    return {
        "lines": lines,
        "ticks": ticks[::every],
        "width": width,
        "height": height,
        "top": top,
    }


# --- scope and filters ---------------------------------------------------------------


class DashboardFilter(forms.Form):
    org = ModelChoiceField(
        label=_("Organisation"), queryset=Organisation.objects.none(), required=False
    )
    category = ModelChoiceField(
        label=_("Category"), queryset=Category.objects.all(), required=False
    )
    weeks = forms.TypedChoiceField(
        label=_("Period"), choices=PERIODS, coerce=int, required=False, empty_value=12
    )

    def __init__(self, *args, roots: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        # Any organisation in the supervised subtrees may be chosen (the table's links
        # drill down one level at a time) ...
        subtree = Q()
        for root in roots:
            subtree |= Q(path__startswith=root)
        self.fields["org"].queryset = Organisation.objects.filter(subtree).order_by("path")
        self.fields["org"].empty_label = None
        self.roots = roots

    def limit_choices(self, current: Organisation) -> None:
        """... but the menu lists only the supervised roots, the current one and its children."""
        near = Q(path__in=self.roots) | Q(pk=current.pk)
        near |= Q(path__startswith=current.path, depth=current.depth + 1)
        self.fields["org"].widget.choices = [
            (org.pk, str(org))
            for org in Organisation.objects.filter(near).order_by("path").only("pk", "name")
        ]
        self.initial["org"] = current.pk


@dataclass
class Scope:
    root: Organisation
    category: Category | None
    weeks: int
    since: datetime
    now: datetime

    def cases(self):
        return selectors.cases_in_view(
            self.root.path,
            since=self.since,
            category_id=self.category.pk if self.category else None,
        )


def dashboard_scope(request) -> tuple[Scope, DashboardFilter]:
    """The subtree and filters of the request; 403 for anyone who supervises nothing."""
    roots = selectors.supervised_paths(request.user)
    if not roots:
        raise PermissionDenied(_("The console is for supervisors."))
    form = DashboardFilter(request.GET or None, roots=roots)
    # A value the form does not accept filters nothing rather than failing; the valid
    # fields still apply.
    data = {}
    if form.is_bound:
        form.is_valid()
        data = form.cleaned_data
    root = data.get("org")
    if root is None or not permissions.supervises_path(request.user, root.path):
        root = Organisation.objects.get(path=roots[0])
    form.limit_choices(root)
    weeks = data.get("weeks") or 12
    now = timezone.now()
    scope = Scope(
        root=root,
        category=data.get("category"),
        weeks=weeks,
        # Whole weeks: from the Monday ``weeks`` weeks ago, as the dashboard's rollup counts.
        since=period_start(now, weeks),
        now=now,
    )
    return scope, form


def _state_label(value: str) -> str:
    try:
        return CaseState(value).label
    except ValueError:
        return value


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100)}%"


# --- pages --------------------------------------------------------------------------


@login_required
@use_replica
def dashboard(request):
    """Open cases by stage, overdue cases, escalations, per-organisation rates, trends."""
    scope, form = dashboard_scope(request)
    stats = selectors.dashboard(
        scope.root,
        weeks=scope.weeks,
        now=scope.now,
        category_id=scope.category.pk if scope.category else None,
    )
    week_labels = [week.strftime("%m-%d") for week in stats.weeks]
    branches = [
        {
            "name": str(b.org) if b.org else b.path,
            "org": b.org,
            "is_root": b.path == scope.root.path,
            "stats": b,
            "on_time": _percent(b.on_time_rate),
            "reopen": _percent(b.reopen_rate),
        }
        for b in stats.branches
    ]
    context = {
        "form": form,
        "scope": scope,
        "stats": stats,
        "query": request.GET.urlencode(),
        "state_chart": bar_chart(
            [(_state_label(state), n) for state, n, _overdue in stats.open_by_state]
        ),
        "state_rows": [(_state_label(s), n, o) for s, n, o in stats.open_by_state],
        "on_time_chart": bar_chart(
            [
                (row["name"], round((row["stats"].on_time_rate or 0) * 100))
                for row in branches
                if row["stats"].finished
            ]
        ),
        "branches": branches,
        "trend": line_chart(
            week_labels,
            {
                str(_("submitted")): stats.submitted_per_week,
                str(_("closed")): stats.closed_per_week,
                str(_("escalated")): stats.escalations_per_week,
            },
        ),
        "trend_rows": list(
            zip(
                week_labels,
                stats.submitted_per_week,
                stats.closed_per_week,
                stats.escalations_per_week,
                strict=True,
            )
        ),
        "overdue_rows": [
            (case, sla_badge(case.stage_due_at, scope.now)) for case in stats.overdue_cases
        ],
    }
    context.update(_channel_context(stats))
    return render(request, "casework/supervisor/dashboard.html", context)


def _channel_context(stats: selectors.Dashboard) -> dict:
    """How the cases in view came in: walk-in, phone, online, partner hand-off."""
    rows = [(Case.Channel(value).label, n, still_open) for value, n, still_open in stats.channels]
    return {
        "channel_rows": rows,
        "channel_chart": bar_chart([(label, n) for label, n, _open in rows]),
    }


@login_required
def audit(request, reference: str):
    """A case's timeline for audit: every event, time per stage, breaches, the chain check."""
    case = (
        Case.objects.select_related("org", "category", "station")
        .filter(reference=reference)
        .first()
    )
    if case is None or not permissions.supervises_path(request.user, case.org.path):
        raise Http404(_("No such case."))
    now = timezone.now()
    result = selectors.case_audit(case, now=now)
    spans = [
        {
            "span": span,
            "label": _state_label(span.state),
            # A final state takes no time; an open stage runs until now.
            "duration": (
                timesince(span.started_at, span.ended_at or now, depth=2)
                if span.ended_at != span.started_at
                else None
            ),
        }
        for span in result.spans
    ]
    events = [
        {
            "event": event,
            "kind": _kind_label(event.kind),
            "breach": event.seq in result.breach_seqs,
            "from_state": _state_label(event.from_state) if event.from_state else "",
            "to_state": _state_label(event.to_state) if event.to_state else "",
        }
        for event in result.events
    ]
    return render(
        request,
        "casework/supervisor/audit.html",
        {
            "case": case,
            "spans": spans,
            "events": events,
            "chain_break": result.chain_break,
            "event_count": len(result.events),
            "now": now,
            # Who opened this youth's personal data, when and why (helper I: privacy).
            "accesses": privacy_services.access_log_for(case=case, actor=request.user),
        },
    )


def _kind_label(kind: str) -> str:
    try:
        return EventKind(kind).label
    except ValueError:
        return kind


# --- CSV exports ---------------------------------------------------------------------


class _Echo:
    """A file-like object whose write returns the line: csv.writer feeds the stream."""

    def write(self, value):
        return value


def _iso(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def stream_csv(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # so that spreadsheet programs read the file as UTF-8
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([_iso(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


CASE_COLUMNS = [
    "reference",
    "category",
    "urgency",
    "state",
    "org_id",
    "org",
    "submitted_at",
    "stage_due_at",
    "closed_at",
    "escalations",
    "reopens",
    "sla_breached_at_top",
    "outcome",
]
TIMELINE_COLUMNS = [
    "reference",
    "seq",
    "kind",
    "at",
    "actor_id",
    "from_state",
    "to_state",
    "org_id",
]


@login_required
def export_cases(request):
    """The cases in the dashboard's current view, as CSV, streamed; nothing about the youth."""
    scope, _form = dashboard_scope(request)
    stamp = scope.now.strftime("%Y%m%d")
    return stream_csv(f"cases-{stamp}.csv", CASE_COLUMNS, selectors.export_case_rows(scope.cases()))


@login_required
def export_timelines(request):
    """The timelines of the cases in view, as CSV, streamed; no payloads, no free text."""
    scope, _form = dashboard_scope(request)
    stamp = scope.now.strftime("%Y%m%d")
    return stream_csv(
        f"timelines-{stamp}.csv", TIMELINE_COLUMNS, selectors.export_timeline_rows(scope.cases())
    )


urlpatterns = [
    path("supervise/", dashboard, name="supervisor"),
    path("supervise/cases/<str:reference>/audit/", audit, name="supervisor_audit"),
    path("supervise/export/cases.csv", export_cases, name="supervisor_export_cases"),
    path("supervise/export/timelines.csv", export_timelines, name="supervisor_export_timelines"),
]
