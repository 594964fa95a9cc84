"""Drive a case through the services to any state, and snapshot it for "nothing changed" checks.

Shared by the casework tests; every step is a real service call, so the
timeline, the version and the SLA clock are what production would produce.
"""

from __future__ import annotations

from dataclasses import dataclass

from casework import services
from casework.models import Case, CaseEvent, CaseMessage, CoordinationTask
from casework.states import CaseState

DESCRIPTION = "我在学校被同学欺负了，不敢告诉老师"


def submit(tree, *, youth=None, category="study", region="440105", **kw) -> Case:
    return services.case_submit(
        youth=youth or tree.youth,
        category=tree.category(category),
        region_code=region,
        title=kw.pop("title", "学习上遇到困难"),
        description=kw.pop("description", DESCRIPTION),
        **kw,
    )


def _accepted(tree, case):
    return services.case_accept(case=case, actor=tree.handler)


def _verifying(tree, case):
    return services.case_schedule_verification(case=case, actor=tree.handler, station=tree.station)


def _coordinating(tree, case):
    return services.case_record_verification(
        case=case, actor=tree.verifier, confirmed=True, findings="情况属实"
    )


def _resolved(tree, case):
    return services.case_resolve(
        case=case, actor=tree.handler, outcome=Case.Outcome.SOLVED, note="已协调学校处理"
    )


def _feedback_given(tree, case):
    return services.case_give_feedback(case=case, actor=tree.handler, message="问题已解决")


def _closed(tree, case):
    return services.case_rate(
        case=case, actor=tree.youth, timeliness=5, attitude=5, outcome=4, solved="solved"
    )


# The main line, in order; side states are reached from a point on it.
MAIN_LINE = [
    (CaseState.ACCEPTED, _accepted),
    (CaseState.VERIFYING, _verifying),
    (CaseState.COORDINATING, _coordinating),
    (CaseState.RESOLVED, _resolved),
    (CaseState.FEEDBACK_GIVEN, _feedback_given),
    (CaseState.CLOSED, _closed),
]


def advance(tree, case: Case, target: str) -> Case:
    """Move a case along the main line, from where it is, until it is in ``target``."""
    order = [CaseState.SUBMITTED] + [state for state, _ in MAIN_LINE]
    for state, step in MAIN_LINE[order.index(case.state) :]:
        if case.state == target:
            break
        case = step(tree, case)
        assert case.state == state
    assert case.state == target, f"could not reach {target}, stuck at {case.state}"
    return case


def case_in(tree, state: str, **submit_kw) -> Case:
    """A fresh case of ``tree.youth`` held by Haizhu, in ``state``."""
    case = submit(tree, **submit_kw)
    if state == CaseState.SUBMITTED:
        return case
    if state == CaseState.REJECTED:
        return services.case_reject(case=case, actor=tree.handler, reason="out_of_scope")
    if state == CaseState.WITHDRAWN:
        return services.case_withdraw(case=case, actor=tree.youth)
    if state == CaseState.AWAITING_YOUTH:
        case = advance(tree, case, CaseState.COORDINATING)
        return services.case_request_info(case=case, actor=tree.handler, question="请补充材料")
    return advance(tree, case, state)


@dataclass(frozen=True)
class Snapshot:
    state: str
    version: int
    org_id: int
    assignee_id: int | None
    station_id: int | None
    resume_state: str
    stage_due_at: object
    last_event_seq: int
    last_event_hash: str
    events: tuple
    messages: int
    tasks: tuple


def snapshot(case: Case | int) -> Snapshot:
    """Everything a refused call must leave as it was, read fresh from the database."""
    pk = case.pk if isinstance(case, Case) else case
    fresh = Case.objects.get(pk=pk)
    return Snapshot(
        state=fresh.state,
        version=fresh.version,
        org_id=fresh.org_id,
        assignee_id=fresh.assignee_id,
        station_id=fresh.station_id,
        resume_state=fresh.resume_state,
        stage_due_at=fresh.stage_due_at,
        last_event_seq=fresh.last_event_seq,
        last_event_hash=fresh.last_event_hash,
        events=tuple(CaseEvent.objects.filter(case_id=pk).values_list("seq", "kind", "hash")),
        messages=CaseMessage.objects.filter(case_id=pk).count(),
        tasks=tuple(CoordinationTask.objects.filter(case_id=pk).values_list("pk", "status")),
    )


def kinds(case: Case | int) -> list[str]:
    pk = case.pk if isinstance(case, Case) else case
    return list(CaseEvent.objects.filter(case_id=pk).order_by("seq").values_list("kind", flat=True))


def cast(tree) -> dict:
    """Everyone the permission tables name, by a short name; "system" is the None actor.

    Adds to the ``tree`` fixture the people it lacks: supervisors of sibling
    subtrees, a verifier of the holding organisation, a verifier of a station
    elsewhere, a second Haizhu handler.
    """
    from casework.models import Organisation
    from tests.conftest import member
    from tests.factories import OrganisationFactory

    other_station = OrganisationFactory(
        parent=tree.baiyun,
        name="白云青年之家",
        level=4,
        region_code="440111",
        kind=Organisation.Kind.STATION,
        routes_by_region=False,
    )
    return {
        "system": None,
        "youth": tree.youth,
        "other_youth": tree.other_youth,
        "handler": tree.handler,
        "handler2": member(tree.haizhu, "handler", "haizhu_handler2"),
        "sibling_handler": tree.baiyun_handler,
        "child_handler": tree.branch_handler,
        "parent_handler": tree.city_handler,
        "province_handler": tree.province_handler,
        "verifier": tree.verifier,
        "org_verifier": member(tree.haizhu, "verifier", "haizhu_verifier"),
        "other_verifier": member(other_station, "verifier", "baiyun_station_verifier"),
        "partner": tree.partner_staff,
        "city_supervisor": tree.city_supervisor,
        "province_supervisor": tree.province_supervisor,
        "sibling_supervisor": member(tree.baiyun, "supervisor", "baiyun_supervisor"),
        "other_city_supervisor": member(tree.other_city, "supervisor", "shenzhen_supervisor"),
        "child_supervisor": member(tree.haizhu_branch, "supervisor", "branch_supervisor"),
    }
