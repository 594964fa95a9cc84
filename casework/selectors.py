"""Reads that serve pages and the API, each with a fixed number of queries."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Substr, TruncWeek
from django.utils import timezone

from . import permissions
from .models import Case, CoordinationTask
from .states import OPEN_STATES


def cases_visible_to(user) -> QuerySet[Case]:
    """The one scoping rule for listing cases: what this person may see.

    A youth sees their own cases; handlers and verifiers those held by (or sent
    for verification to) their organisations; supervisors the whole subtree;
    partners the cases that gave their body a coordination task.
    """
    if user is None or not user.is_authenticated:
        return Case.objects.none()
    if user.is_superuser:
        query = Q()
    else:
        query = Q(youth=user)
        for role in permissions.roles_of(user):
            if role.role == permissions.SUPERVISOR:
                query |= Q(org__path__startswith=role.org_path)
            elif role.role in (permissions.HANDLER, permissions.VERIFIER):
                query |= Q(org_id=role.org_id) | Q(station_id=role.org_id)
            elif role.role == permissions.PARTNER:
                query |= Q(
                    pk__in=CoordinationTask.objects.filter(partner_id=role.org_id).values("case_id")
                )
    return (
        Case.objects.filter(query)
        .select_related("org", "category", "assignee")
        .order_by("-submitted_at")
    )


# --- supervisor console: dashboard, audit, export (helper H2) ---------------------------
#
# Every read below is a fixed number of queries whatever the subtree's size:
# aggregates are grouped in the database, never counted row by row in Python.


def supervised_paths(user) -> list[str]:
    """The paths of the organisations the user supervises (subtree roots), shortest first."""
    paths = {r.org_path for r in permissions.roles_of(user) if r.role == permissions.SUPERVISOR}
    # A root inside another supervised root adds nothing.
    return sorted(p for p in paths if not any(p != q and p.startswith(q) for q in paths))


def subtree_cases(root_path: str, *, category_id: int | None = None) -> QuerySet[Case]:
    """Every case held in the subtree at ``root_path`` (optionally of one category)."""
    cases = Case.objects.filter(org__path__startswith=root_path)
    if category_id:
        cases = cases.filter(category_id=category_id)
    return cases


def cases_in_view(root_path: str, *, since, category_id: int | None = None) -> QuerySet[Case]:
    """The dashboard's cases: submitted in the period, or still open (however old)."""
    return subtree_cases(root_path, category_id=category_id).filter(
        Q(submitted_at__gte=since) | Q(state__in=[s.value for s in OPEN_STATES])
    )


def channel_counts(
    root_path: str, *, since, category_id: int | None = None
) -> list[tuple[str, int, int]]:
    """(channel, cases, still open) of the dashboard's cases, in the channels' order: one query."""
    open_values = [s.value for s in OPEN_STATES]
    rows = {
        row["channel"]: (row["n"], row["open"])
        for row in cases_in_view(root_path, since=since, category_id=category_id)
        .values("channel")
        .annotate(n=Count("pk"), open=Count("pk", filter=Q(state__in=open_values)))
        .order_by()
    }
    return [(channel, *rows.get(channel, (0, 0))) for channel in Case.Channel.values]


def _sla_breach_events() -> Q:
    # A missed deadline is an escalation by the sweep, or the critical alert at the top.
    return Q(kind="sla_breach") | Q(kind="escalated", payload__reason="sla_breach")


FINISHED_STATES = ("resolved", "feedback_given", "closed")


@dataclass
class BranchStats:
    path: str
    total: int
    open: int
    overdue: int
    finished: int
    on_time: int
    reopened: int
    org: object = None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.finished if self.finished else None

    @property
    def reopen_rate(self) -> float | None:
        return self.reopened / self.finished if self.finished else None


@dataclass
class Dashboard:
    open_by_state: list[tuple[str, int, int]]  # (state, open, overdue)
    open_total: int
    overdue_total: int
    escalations_total: int
    escalations_sla: int
    branches: list[BranchStats]
    weeks: list  # week start dates, oldest first
    submitted_per_week: list[int]
    closed_per_week: list[int]
    escalations_per_week: list[int]
    overdue_cases: list[Case] = field(default_factory=list)
    channels: list[tuple[str, int, int]] = field(default_factory=list)  # (channel, n, open)
    as_of: datetime | None = None  # the rollup's refresh; None: never refreshed
    since: datetime | None = None


def _week_key(value) -> date:
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.date()
    return value


def week_starts(since: datetime, now: datetime) -> list[date]:
    """The Mondays of the weeks from ``since`` to ``now`` in the current time zone (pure)."""
    first = timezone.localtime(since).date()
    first -= timedelta(days=first.weekday())
    last = timezone.localtime(now).date()
    weeks = []
    while first <= last:
        weeks.append(first)
        first += timedelta(days=7)
    return weeks


def _per_week(rows, weeks: list[date]) -> list[int]:
    counts = {_week_key(week): n for week, n in rows if week is not None}
    return [counts.get(week, 0) for week in weeks]


def dashboard(
    root,
    *,
    now: datetime,
    weeks: int | None = None,
    since: datetime | None = None,
    category_id: int | None = None,
    overdue_limit=20,
) -> Dashboard:
    """The supervisor dashboard of the subtree at ``root``, from the rollup: six queries.

    The counts are as of the rollup's last refresh (``Dashboard.as_of``; every minute,
    ``casework.services.dashboard_rollup``) and read only the rows of the root and of
    its children, whatever the number of cases below. The period starts on the
    Monday ``weeks`` weeks before the refresh (given ``since`` instead, as the API
    does, the whole weeks from ``since`` to ``now``). The overdue cases listed are
    live: the first ``overdue_limit`` by deadline, from the open-deadline index.
    """
    from .models import DashboardOpenStats, DashboardRollup, DashboardWeekStats, Organisation
    from .services.dashboard_rollup import period_start

    if weeks is None:
        weeks = max(1, (now - since).days // 7) if since else 12
    run = DashboardRollup.objects.filter(pk=1).first()
    as_of = run.as_of if run else now
    since = period_start(as_of, weeks)
    open_values = [s.value for s in OPEN_STATES]
    orgs = {
        org.pk: org
        for org in Organisation.objects.filter(
            Q(pk=root.pk) | Q(path__startswith=root.path, depth=root.depth + 1)
        )
    }
    if category_id:
        rows = Q(category_id=category_id, org_id__in=list(orgs))
    else:
        # All categories: the summed row of an organisation with children; a leaf has
        # only its per-category rows (the rollup does not repeat their sum).
        leaves = [pk for pk, org in orgs.items() if not org.numchild]
        parents = [pk for pk, org in orgs.items() if org.numchild]
        rows = Q(category__isnull=True, org_id__in=parents) | Q(
            category__isnull=False, org_id__in=leaves
        )
    open_rows = DashboardOpenStats.objects.filter(rows)
    week_rows = DashboardWeekStats.objects.filter(rows, week__gte=since.date())
    # Per child organisation (its subtree) and the root's own cases (the remainder).
    zero = {"total": 0, "open": 0, "overdue": 0, "finished": 0, "on_time": 0, "reopened": 0}
    per_org = {pk: dict(zero) for pk in orgs}
    by_state: dict[str, list[int]] = {}
    open_by_channel: dict[str, int] = {}
    for org_id, state, channel, n, late, on_time, reopened in (
        open_rows.values_list("org_id", "state", "channel")
        .annotate(Sum("cases"), Sum("overdue"), Sum("on_time"), Sum("reopened"))
        .order_by()
    ):
        counts = per_org[org_id]
        counts["total"] += n
        counts["open"] += n
        counts["overdue"] += late
        if state in FINISHED_STATES:
            counts["finished"] += n
            counts["on_time"] += on_time
            counts["reopened"] += reopened
        if org_id == root.pk:
            pair = by_state.setdefault(state, [0, 0])
            pair[0] += n
            pair[1] += late
            open_by_channel[channel] = open_by_channel.get(channel, 0) + n
    open_by_state = [(s, *by_state.get(s, (0, 0))) for s in open_values]
    for org_id, done, fin, on_time, reopened in (
        week_rows.values_list("org_id")
        .annotate(Sum("done"), Sum("finished"), Sum("on_time"), Sum("reopened"))
        .order_by()
    ):
        counts = per_org[org_id]
        counts["total"] += done
        counts["finished"] += fin
        counts["on_time"] += on_time
        counts["reopened"] += reopened
    own = per_org.pop(root.pk)
    for counts in per_org.values():
        for key in own:
            own[key] -= counts[key]
    branches = [
        BranchStats(path=root.path, org=root, **own),
        *(
            BranchStats(path=orgs[pk].path, org=orgs[pk], **counts)
            for pk, counts in per_org.items()
        ),
    ]
    branches = sorted((b for b in branches if b.total), key=lambda b: b.path)

    # The root's weekly trends and its cases in view by channel.
    weeks_list = week_starts(since, as_of)
    series: dict[date, list[int]] = {}
    done_by_channel: dict[str, int] = {}
    for week, channel, *sums in (
        week_rows.filter(org_id=root.pk)
        .values_list("week", "channel")
        .annotate(
            Sum("submitted"), Sum("closed"), Sum("escalated"), Sum("escalated_sla"), Sum("done")
        )
        .order_by()
    ):
        totals = series.setdefault(_week_key(week), [0, 0, 0, 0])
        for i in range(4):
            totals[i] += sums[i]
        done_by_channel[channel] = done_by_channel.get(channel, 0) + sums[4]
    per_week = [series.get(week, (0, 0, 0, 0)) for week in weeks_list]
    channels = [
        (
            channel,
            done_by_channel.get(channel, 0) + open_by_channel.get(channel, 0),
            open_by_channel.get(channel, 0),
        )
        for channel in Case.Channel.values
    ]

    scope = subtree_cases(root.path, category_id=category_id)
    overdue_cases = list(
        scope.filter(state__in=open_values, stage_due_at__lt=now)
        .select_related("org", "category")
        .only("reference", "state", "stage_due_at", "org__name", "org__level", "category__name")
        .order_by("stage_due_at")[:overdue_limit]
    )
    return Dashboard(
        open_by_state=open_by_state,
        open_total=sum(n for _, n, _ in open_by_state),
        overdue_total=sum(o for _, _, o in open_by_state),
        escalations_total=sum(w[2] for w in per_week),
        escalations_sla=sum(w[3] for w in per_week),
        branches=branches,
        weeks=weeks_list,
        submitted_per_week=[w[0] for w in per_week],
        closed_per_week=[w[1] for w in per_week],
        escalations_per_week=[w[2] for w in per_week],
        overdue_cases=overdue_cases,
        channels=channels,
        as_of=run.as_of if run else None,
        since=since,
    )


def live_dashboard(
    root, *, since: datetime, now: datetime, category_id: int | None = None, overdue_limit=20
) -> Dashboard:
    """The dashboard's figures counted from the cases and events themselves, now.

    The page reads the rollup (``dashboard``); this is the reference the tests compare
    it with, and it aggregates the whole subtree (seconds at a million cases).
    """
    from .models import CaseEvent, Organisation

    open_values = [s.value for s in OPEN_STATES]
    scope = subtree_cases(root.path, category_id=category_id)
    by_state = {
        row["state"]: (row["n"], row["overdue"])
        for row in scope.filter(state__in=open_values)
        .values("state")
        .annotate(n=Count("pk"), overdue=Count("pk", filter=Q(stage_due_at__lt=now)))
        .order_by()
    }
    open_by_state = [(s, *by_state.get(s, (0, 0))) for s in open_values]

    events = CaseEvent.objects.filter(
        kind="escalated", at__gte=since, org__path__startswith=root.path
    )
    if category_id:
        events = events.filter(case__category_id=category_id)
    escalation_rows = list(
        events.annotate(week=TruncWeek("at"))
        .values("week")
        .annotate(n=Count("pk"), sla=Count("pk", filter=Q(payload__reason="sla_breach")))
        .order_by("week")
    )

    # Per child organisation: group by the first step of the path below the root.
    branch_len = len(root.path) + root.steplen
    breached = Exists(CaseEvent.objects.filter(case_id=OuterRef("pk")).filter(_sla_breach_events()))
    finished = Q(state__in=FINISHED_STATES)
    branch_rows = (
        cases_in_view(root.path, since=since, category_id=category_id)
        .annotate(branch=Substr("org__path", 1, branch_len), breached=breached)
        .values("branch")
        .annotate(
            total=Count("pk"),
            open=Count("pk", filter=Q(state__in=open_values)),
            overdue=Count("pk", filter=Q(state__in=open_values, stage_due_at__lt=now)),
            finished=Count("pk", filter=finished),
            on_time=Count("pk", filter=finished & Q(breached=False)),
            reopened=Count("pk", filter=finished & Q(reopen_count__gt=0)),
        )
        .order_by("branch")
    )
    branches = [BranchStats(path=row.pop("branch"), **row) for row in branch_rows]
    orgs = {
        org.path: org
        for org in Organisation.objects.filter(
            Q(pk=root.pk) | Q(path__startswith=root.path, depth=root.depth + 1)
        )
    }
    for branch in branches:
        branch.org = orgs.get(branch.path)

    weeks = week_starts(since, now)
    submitted = (
        scope.filter(submitted_at__gte=since)
        .annotate(week=TruncWeek("submitted_at"))
        .values_list("week")
        .annotate(n=Count("pk"))
        .order_by("week")
    )
    closed = (
        scope.filter(closed_at__gte=since)
        .annotate(week=TruncWeek("closed_at"))
        .values_list("week")
        .annotate(n=Count("pk"))
        .order_by("week")
    )
    overdue_cases = list(
        scope.filter(state__in=open_values, stage_due_at__lt=now)
        .select_related("org", "category")
        .order_by("stage_due_at")[:overdue_limit]
    )
    return Dashboard(
        open_by_state=open_by_state,
        open_total=sum(n for _, n, _ in open_by_state),
        overdue_total=sum(o for _, _, o in open_by_state),
        escalations_total=sum(r["n"] for r in escalation_rows),
        escalations_sla=sum(r["sla"] for r in escalation_rows),
        branches=branches,
        weeks=weeks,
        submitted_per_week=_per_week(submitted, weeks),
        closed_per_week=_per_week(closed, weeks),
        escalations_per_week=_per_week([(r["week"], r["n"]) for r in escalation_rows], weeks),
        overdue_cases=overdue_cases,
        channels=channel_counts(root.path, since=since, category_id=category_id),
        as_of=now,
        since=since,
    )


@dataclass
class StageSpan:
    state: str
    started_at: datetime
    ended_at: datetime | None  # None: the case is still in this stage
    start_seq: int
    breached: bool = False
    breach_seqs: list[int] = field(default_factory=list)
    overdue_now: bool = False

    def duration(self, now: datetime) -> timedelta:
        return (self.ended_at or now) - self.started_at


@dataclass
class Audit:
    events: list
    spans: list[StageSpan]
    breach_seqs: set[int]
    chain_break: object  # casework.events.ChainBreak or None


def is_sla_breach(event) -> bool:
    return event.kind == "sla_breach" or (
        event.kind == "escalated" and (event.payload or {}).get("reason") == "sla_breach"
    )


def stage_spans(events, *, case_open: bool, stage_due_at, now: datetime) -> list[StageSpan]:
    """The time spent in each state, from consecutive state-changing events (pure)."""
    spans: list[StageSpan] = []
    for event in events:
        current = spans[-1] if spans else None
        if event.to_state and (current is None or event.to_state != current.state):
            if current is not None:
                current.ended_at = event.at
            spans.append(StageSpan(event.to_state, event.at, None, event.seq))
        elif current is not None and is_sla_breach(event):
            current.breached = True
            current.breach_seqs.append(event.seq)
    if spans:
        last = spans[-1]
        if not case_open:
            last.ended_at = last.started_at  # a final state takes no time
        elif stage_due_at is not None and stage_due_at < now:
            last.overdue_now = last.breached = True
    return spans


def case_audit(case: Case, *, now: datetime) -> Audit:
    """A case's whole timeline for the audit view, its stage times and its chain check.

    One query: the events (with actor and organisation) are read once and both
    shown and verified against the case's recorded chain head.
    """
    from .events import verify_timeline

    events = list(case.events.select_related("actor", "org").order_by("seq"))
    spans = stage_spans(events, case_open=case.is_open, stage_due_at=case.stage_due_at, now=now)
    return Audit(
        events=events,
        spans=spans,
        breach_seqs={e.seq for e in events if is_sla_breach(e)},
        chain_break=verify_timeline(
            events, case_id=case.pk, head_seq=case.last_event_seq, head_hash=case.last_event_hash
        ),
    )


def export_case_rows(cases: QuerySet[Case]):
    """Rows of the cases CSV: no title, description or anything about the youth."""
    return (
        cases.order_by("pk")
        .values_list(
            "reference",
            "category__code",
            "urgency",
            "state",
            "org_id",
            "org__name",
            "submitted_at",
            "stage_due_at",
            "closed_at",
            "escalation_count",
            "reopen_count",
            "sla_breached",
            "outcome",
        )
        .iterator(chunk_size=1000)
    )


def export_timeline_rows(cases: QuerySet[Case]):
    """Rows of the timelines CSV: kind, time, actor id, states and organisation; no payloads."""
    from .models import CaseEvent

    return (
        CaseEvent.objects.filter(case__in=cases.values("pk"))
        .order_by("case_id", "seq")
        .values_list(
            "case__reference", "seq", "kind", "at", "actor_id", "from_state", "to_state", "org_id"
        )
        .iterator(chunk_size=2000)
    )


# --- the workbench case page (casework.views.staff) -----------------------------------

# The page names its people (the handler, message authors, verifiers, uploaders): their
# password hash, contact details, birth date and search digests are not read (each
# encrypted value would be decrypted for nothing), and the youth's row is not read at all.
PERSON_UNREAD = (
    "password",
    "email",
    "phone",
    "birth_date",
    "name_digest",
    "email_digest",
    "phone_digest",
)
STAFF_CASE_RELATED = ("org", "category", "assignee", "station")


def _unread(*people: str) -> tuple[str, ...]:
    return tuple(f"{who}__{name}" for who in people for name in PERSON_UNREAD)


def staff_case_queryset() -> QuerySet[Case]:
    """A case as the workbench page reads it: with its organisation, category, handler and
    station (the youth's row is not read: the page shows the case, not the person)."""
    return Case.objects.select_related(*STAFF_CASE_RELATED).defer(*_unread("assignee"))


@dataclass(frozen=True)
class HeldTask:
    """The open task a staff member holds on a case (``casework.services.privacy``'s
    ``open_task``): read with the case, for the access log the page writes."""

    pk: int
    org_id: int
    flow_task: object  # the viewflow node


def staff_case(reference: str, user) -> Case | None:
    """The case of the workbench page, or None. Whether the person may see it is the
    view's question (``casework.views.staff.staff_may_view``).

    On PostgreSQL one prepared statement also reads the person's memberships (cached on
    the user, as ``permissions.roles_of`` would), the open task they hold on the case,
    set on the case as ``viewer_task`` (a ``HeldTask`` or None) for the access log, and
    their unread in-app messages, ``viewer_unread`` (the page header's count,
    ``notifications.selectors.unread_count``). Elsewhere the ORM reads the case alone
    (neither is set).
    """
    if not (user.is_authenticated and compiled_reads(_connection_for(Case))):
        return staff_case_queryset().filter(reference=reference).first()
    return _StaffCaseRead.get().run(reference, user)


def compiled_reads(connection) -> bool:
    """Whether the case page reads through its compiled statements (PostgreSQL: their
    SQL is PostgreSQL's) or through the ORM (any other database; the tests compare both)."""
    return connection.vendor == "postgresql"


def _connection_for(model):
    from django.db import connections, router

    return connections[router.db_for_read(model)]


class _StaffCaseRead:
    """``staff_case``'s statement, compiled once per process (``casework.prepared.ModelRead``):
    Django's compilation of the five-table SELECT and PostgreSQL's planning of it cost
    more than running it."""

    @staticmethod
    @functools.cache
    def get() -> _StaffCaseRead:
        return _StaffCaseRead()

    def __init__(self):
        from notifications.models import InboxItem
        from workflows.models import OPEN_TASK_STATUSES, CaseTask

        from .models import Membership, Organisation
        from .prepared import ModelRead

        case = f'"{Case._meta.db_table}"'
        membership = f'"{Membership._meta.db_table}"'
        organisation = f'"{Organisation._meta.db_table}"'
        task = f'"{CaseTask._meta.db_table}"'
        statuses = ", ".join(f"'{status}'" for status in OPEN_TASK_STATUSES)
        inbox = f'"{InboxItem._meta.db_table}"'
        # Parameters: the user's id (memberships, task, unread count), the reference.
        roles = (
            "(SELECT json_agg(json_build_array(m.organisation_id, mo.path, m.role) "
            f"ORDER BY m.id) FROM {membership} m JOIN {organisation} mo "
            "ON mo.id = m.organisation_id WHERE m.user_id = %s)"
        )
        # privacy._purpose_for's task: the newest open task of the case at one of the
        # person's organisations where they are not (only) a supervisor.
        held = (
            f"(SELECT json_build_array(t.id, t.org_id, t.flow_task) FROM {task} t "
            f"WHERE t.case_id = {case}.id AND t.status IN ({statuses}) "
            f"AND t.org_id IN (SELECT m.organisation_id FROM {membership} m "
            f"WHERE m.user_id = %s AND m.role <> '{permissions.SUPERVISOR}') "
            "ORDER BY t.created DESC LIMIT 1)"
        )
        unread = f"(SELECT count(*) FROM {inbox} i WHERE i.user_id = %s AND i.read_at IS NULL)"
        queryset = staff_case_queryset().filter(pk=ModelRead.PROBE).order_by()
        self.read = ModelRead(
            queryset,
            where=f"WHERE {case}.reference = %s LIMIT 1",
            extra=f"{roles}, {held}, {unread}",
        )
        self.flow_task = CaseTask._meta.get_field("flow_task")

    def run(self, reference: str, user) -> Case | None:
        connection = _connection_for(Case)
        found = self.read.run(connection, [user.pk, user.pk, user.pk, reference])
        if found is None:
            return None
        case, (roles, held, unread) = found
        case.viewer_unread = unread
        permissions.remember_roles(
            user, tuple(permissions.Role(org, path, role) for org, path, role in roles or ())
        )
        case.viewer_task = None
        if held is not None:
            pk, org_id, ref = held
            node = self.flow_task.from_db_value(ref, None, connection)
            case.viewer_task = HeldTask(pk, org_id, node)
        return case


def _staff_case_lists() -> dict[str, QuerySet]:
    """The case page's lists of one case, by name, before their filter on the case."""
    from .models import Appointment, CaseMessage, Evidence, Verification

    return {
        "coordination": CoordinationTask.objects.select_related("partner").order_by(
            "created_at", "pk"
        ),
        "messages": CaseMessage.objects.select_related("author")
        .defer(*_unread("author"))
        .order_by("created_at"),
        "verifications": Verification.objects.select_related("verifier", "station").defer(
            *_unread("verifier")
        ),
        "visits": Appointment.objects.select_related("slot", "station").order_by("pk"),
        "evidence": Evidence.objects.select_related("uploaded_by").defer(*_unread("uploaded_by")),
    }


STAFF_CASE_LISTS = ("coordination", "messages", "verifications", "visits", "evidence")


def staff_case_list(case: Case, name: str) -> list:
    """One of the case page's lists (``STAFF_CASE_LISTS``): on PostgreSQL a statement
    compiled once per process and prepared once per connection, else the ORM's."""
    connection = _connection_for(Case)
    if not compiled_reads(connection):
        return list(_staff_case_lists()[name].filter(case_id=case.pk))
    return [obj for obj, _extra in _compiled_list(name).run_all(connection, [case.pk])]


@functools.cache
def _compiled_list(name: str):
    from .prepared import ModelRead

    return ModelRead(_staff_case_lists()[name].filter(case_id=ModelRead.PROBE))


def staff_case_timeline(case: Case) -> list[tuple]:
    """The case page's timeline, one prepared statement: per event (seq, at, kind,
    from_state, to_state, actor_id, actor's name, organisation's name), in order.

    The actor's name is their display name, else their username; each person's name is
    decrypted once, however many events they made.
    """
    from .models import CaseEvent, Organisation, User
    from .prepared import Statement

    if not _TIMELINE:
        event = CaseEvent._meta.db_table
        user = User._meta.db_table
        organisation = Organisation._meta.db_table
        _TIMELINE.append(
            Statement(
                "SELECT e.seq, e.at, e.kind, e.from_state, e.to_state, e.actor_id, "
                f'u.username, u.display_name, o.name FROM "{event}" e '
                f'LEFT JOIN "{user}" u ON u.id = e.actor_id '
                f'LEFT JOIN "{organisation}" o ON o.id = e.org_id '
                "WHERE e.case_id = %s ORDER BY e.seq"
            )
        )
    connection = _connection_for(CaseEvent)
    with connection.cursor() as cursor:
        _TIMELINE[0].run(cursor, [case.pk])
        rows = cursor.fetchall()
    display_name = User._meta.get_field("display_name")
    names: dict[int, str] = {}
    timeline = []
    for seq, at, kind, from_state, to_state, actor_id, username, encrypted, org_name in rows:
        name = None
        if actor_id is not None:
            name = names.get(actor_id)
            if name is None:
                name = names[actor_id] = (
                    display_name.from_db_value(encrypted, None, connection) or username
                )
        if isinstance(at, str):  # SQLite: the text it stores, in UTC
            at = connection.ops.convert_datetimefield_value(at, None, connection)
        timeline.append((seq, at, kind, from_state, to_state, actor_id, name, org_name))
    return timeline


_TIMELINE: list = []
