"""Every transition of the case state machine (ARCHITECTURE section 3), allowed and refused.

Each transition is checked for the roles that may make it, for the wrong
roles, for members of the wrong organisation (a sibling district, a child
organisation, a handler of the parent), for supervisors above (allowed as an
override) and of another subtree (refused), and from every state it does not
start from. A refused call raises the specific domain error and leaves the
case, its version and its timeline exactly as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django_fsm import TransitionNotAllowed

from casework import services
from casework.errors import (
    CaseConflict,
    CaseworkError,
    InvalidTransition,
    NotPermitted,
    ValidationFailed,
)
from casework.models import Case, CaseEvent
from casework.states import CaseState
from tests.casework.steps import case_in, cast, kinds, snapshot

S = CaseState


@pytest.fixture
def people(tree):
    return cast(tree)


# --- the calls: (tree, case, actor, **overrides) -> case ------------------------


def _accept(tree, case, actor, **kw):
    return services.case_accept(case=case, actor=actor, **kw)


def _reject(tree, case, actor, **kw):
    return services.case_reject(case=case, actor=actor, reason=kw.pop("reason", "duplicate"), **kw)


def _appeal(tree, case, actor, **kw):
    return services.case_appeal(case=case, actor=actor, statement="我不同意", **kw)


def _schedule(tree, case, actor, **kw):
    return services.case_schedule_verification(
        case=case, actor=actor, station=kw.pop("station", tree.station), **kw
    )


def _confirm(tree, case, actor, **kw):
    return services.case_record_verification(
        case=case, actor=actor, confirmed=True, findings=kw.pop("findings", "属实"), **kw
    )


def _disconfirm(tree, case, actor, **kw):
    return services.case_record_verification(
        case=case, actor=actor, confirmed=False, findings=kw.pop("findings", "不属实"), **kw
    )


def _request_info(tree, case, actor, **kw):
    return services.case_request_info(
        case=case, actor=actor, question=kw.pop("question", "请补充材料"), **kw
    )


def _provide_info(tree, case, actor, **kw):
    return services.case_provide_info(
        case=case, actor=actor, answer=kw.pop("answer", "材料如下"), **kw
    )


def _resolve(tree, case, actor, **kw):
    return services.case_resolve(
        case=case,
        actor=actor,
        outcome=kw.pop("outcome", Case.Outcome.SOLVED),
        note=kw.pop("note", "已处理"),
        **kw,
    )


def _give_feedback(tree, case, actor, **kw):
    return services.case_give_feedback(
        case=case, actor=actor, message=kw.pop("message", "已解决"), **kw
    )


def _rate(tree, case, actor, **kw):
    stars = {"timeliness": 5, "attitude": 4, "outcome": 4, "solved": "solved", **kw}
    return services.case_rate(case=case, actor=actor, **stars)


def _dispute(tree, case, actor, **kw):
    return services.case_dispute(case=case, actor=actor, reason=kw.pop("reason", "没解决"), **kw)


def _auto_close(tree, case, actor, **kw):
    # The system's own service has no actor argument; a person calling it is refused
    # by the transition's permission, which ``check_transition`` applies to the actor.
    if actor is None:
        return services.case_auto_close(case=case)
    from django.db import transaction

    from casework.locks import lock_case
    from casework.services._core import apply_transition

    with transaction.atomic():
        locked = lock_case(case)
        apply_transition(locked, "auto_close", actor=actor, kind="auto_closed")
    return locked


def _withdraw(tree, case, actor, **kw):
    return services.case_withdraw(case=case, actor=actor, reason="不需要了", **kw)


HANDLER_ALLOWED = ["handler", "handler2", "city_supervisor", "province_supervisor"]
# Staff who must not act as the case's handler: wrong role, wrong organisation, wrong subtree.
NOT_HANDLERS = [
    "youth",
    "other_youth",
    "verifier",
    "org_verifier",
    "partner",
    "sibling_handler",
    "child_handler",
    "parent_handler",
    "province_handler",
    "sibling_supervisor",
    "other_city_supervisor",
    "child_supervisor",
    "system",
]
YOUTH_REFUSED = [
    "other_youth",
    "handler",
    "verifier",
    "partner",
    "city_supervisor",
    "province_supervisor",
    "system",
]


@dataclass(frozen=True)
class T:
    name: str
    call: object
    source: str
    target: str
    allowed: list
    refused: list
    events: int = 1
    # The states the transition may start from; every other state is a wrong state.
    sources: tuple = field(default=())


TRANSITIONS = [
    T("accept", _accept, S.SUBMITTED, S.ACCEPTED, HANDLER_ALLOWED, NOT_HANDLERS),
    T(
        "reject",
        _reject,
        S.SUBMITTED,
        S.REJECTED,
        HANDLER_ALLOWED,
        NOT_HANDLERS,
        sources=(S.SUBMITTED, S.ACCEPTED, S.VERIFYING),
    ),
    T(
        "appeal",
        _appeal,
        S.REJECTED,
        S.SUBMITTED,
        ["youth"],
        YOUTH_REFUSED,
        # appealed + escalated to the parent organisation
        events=2,
    ),
    T(
        "schedule_verification",
        _schedule,
        S.ACCEPTED,
        S.VERIFYING,
        HANDLER_ALLOWED,
        NOT_HANDLERS,
    ),
    T(
        "confirm",
        _confirm,
        S.VERIFYING,
        S.COORDINATING,
        ["verifier", "org_verifier", "city_supervisor", "province_supervisor"],
        [
            "youth",
            "handler",
            "partner",
            "other_verifier",
            "sibling_handler",
            "child_handler",
            "sibling_supervisor",
            "child_supervisor",
            "system",
        ],
    ),
    T(
        "disconfirm",
        _disconfirm,
        S.VERIFYING,
        S.REJECTED,
        ["verifier", "org_verifier", "city_supervisor"],
        [
            "youth",
            "handler",
            "partner",
            "other_verifier",
            "sibling_handler",
            "sibling_supervisor",
            "system",
        ],
        sources=(S.VERIFYING,),
    ),
    T(
        "request_info",
        _request_info,
        S.VERIFYING,
        S.AWAITING_YOUTH,
        # The verifier on site may ask the youth too.
        [*HANDLER_ALLOWED, "verifier", "org_verifier"],
        [p for p in NOT_HANDLERS if p not in ("verifier", "org_verifier")] + ["other_verifier"],
        sources=(S.ACCEPTED, S.VERIFYING, S.COORDINATING),
    ),
    T("provide_info", _provide_info, S.AWAITING_YOUTH, S.COORDINATING, ["youth"], YOUTH_REFUSED),
    T("resolve", _resolve, S.COORDINATING, S.RESOLVED, HANDLER_ALLOWED, NOT_HANDLERS),
    T(
        "give_feedback",
        _give_feedback,
        S.RESOLVED,
        S.FEEDBACK_GIVEN,
        HANDLER_ALLOWED,
        NOT_HANDLERS,
    ),
    T("rate", _rate, S.FEEDBACK_GIVEN, S.CLOSED, ["youth"], YOUTH_REFUSED),
    T("dispute", _dispute, S.FEEDBACK_GIVEN, S.COORDINATING, ["youth"], YOUTH_REFUSED),
    T(
        "auto_close",
        _auto_close,
        S.FEEDBACK_GIVEN,
        S.CLOSED,
        ["system"],
        ["youth", "handler", "city_supervisor", "province_supervisor"],
    ),
    T(
        "withdraw",
        _withdraw,
        S.SUBMITTED,
        S.WITHDRAWN,
        ["youth"],
        YOUTH_REFUSED,
        sources=tuple(s for s in CaseState if s not in (S.CLOSED, S.REJECTED, S.WITHDRAWN)),
    ),
]
BY_NAME = {t.name: t for t in TRANSITIONS}


def _sources(t: T) -> tuple:
    return t.sources or (t.source,)


def _cases(attr):
    return [pytest.param(t.name, who, id=f"{t.name}-{who}") for t in TRANSITIONS for who in attr(t)]


def _wrong_states():
    return [
        pytest.param(t.name, state, id=f"{t.name}-from-{state}")
        for t in TRANSITIONS
        for state in CaseState
        if state not in _sources(t)
    ]


def test_the_table_covers_every_transition_of_the_model():
    state_field = Case._meta.get_field("state")
    model_transitions = {t.name for t in state_field.get_all_transitions(Case)}
    # "disconfirm" is the verifier's route into "reject"; every model transition has a row.
    assert model_transitions == {t.name for t in TRANSITIONS} - {"disconfirm"}


@pytest.mark.parametrize(("name", "who"), _cases(lambda t: t.allowed))
def test_allowed_actor_makes_the_transition(tree, people, name, who):
    t = BY_NAME[name]
    case = case_in(tree, t.source)
    before = snapshot(case)

    result = t.call(tree, case, people[who])

    after = snapshot(case)
    assert result.state == after.state == t.target
    assert after.version == before.version + t.events
    assert after.last_event_seq == before.last_event_seq + t.events
    new_events = CaseEvent.objects.filter(case=case, seq__gt=before.last_event_seq)
    assert new_events.count() == t.events
    first = new_events.order_by("seq").first()
    assert first.actor_id == (people[who].pk if people[who] else None)
    assert first.from_state == t.source


@pytest.mark.parametrize(("name", "who"), _cases(lambda t: t.refused))
def test_wrong_person_is_not_permitted_and_nothing_changes(tree, people, name, who):
    t = BY_NAME[name]
    case = case_in(tree, t.source)
    before = snapshot(case)

    with pytest.raises(NotPermitted) as raised:
        t.call(tree, case, people[who])

    assert raised.value.code == "forbidden"
    assert snapshot(case) == before


@pytest.mark.parametrize(("name", "state"), _wrong_states())
def test_wrong_state_is_an_invalid_transition_and_nothing_changes(tree, people, name, state):
    t = BY_NAME[name]
    case = case_in(tree, state)
    before = snapshot(case)

    with pytest.raises(InvalidTransition) as raised:
        t.call(tree, case, people[t.allowed[0]])

    assert not isinstance(raised.value, TransitionNotAllowed)
    assert raised.value.code == "invalid_state"
    assert str(raised.value.message)
    assert snapshot(case) == before


@pytest.mark.parametrize("state", BY_NAME["withdraw"].sources)
def test_withdraw_from_every_open_state(tree, state):
    case = case_in(tree, state)

    case = services.case_withdraw(case=case, actor=tree.youth)

    assert case.state == S.WITHDRAWN
    assert case.closed_at is not None
    assert kinds(case)[-1] == "withdrawn"


@pytest.mark.parametrize("state", [S.SUBMITTED, S.ACCEPTED, S.VERIFYING])
def test_reject_from_every_source_state(tree, state):
    case = case_in(tree, state)

    case = services.case_reject(case=case, actor=tree.handler, reason="abuse")

    assert (case.state, case.reject_reason) == (S.REJECTED, "abuse")


# --- missing or bad input ------------------------------------------------------------

MISSING_INPUT = [
    ("reject", S.SUBMITTED, "handler", {"reason": ""}),
    ("reject", S.SUBMITTED, "handler", {"reason": "because"}),
    ("confirm", S.VERIFYING, "verifier", {"findings": "   "}),
    ("disconfirm", S.VERIFYING, "verifier", {"findings": ""}),
    ("request_info", S.COORDINATING, "handler", {"question": ""}),
    ("provide_info", S.AWAITING_YOUTH, "youth", {"answer": " "}),
    ("resolve", S.COORDINATING, "handler", {"note": ""}),
    ("resolve", S.COORDINATING, "handler", {"outcome": "maybe"}),
    ("give_feedback", S.RESOLVED, "handler", {"message": ""}),
    ("rate", S.FEEDBACK_GIVEN, "youth", {"timeliness": 6}),
    ("rate", S.FEEDBACK_GIVEN, "youth", {"attitude": "x"}),
    ("rate", S.FEEDBACK_GIVEN, "youth", {"solved": "yes"}),
    ("dispute", S.FEEDBACK_GIVEN, "youth", {"reason": ""}),
    ("schedule_verification", S.ACCEPTED, "handler", {"station": "partner"}),
    ("schedule_verification", S.ACCEPTED, "handler", {"station": "haizhu"}),
]


@pytest.mark.parametrize(
    ("name", "state", "who", "bad"),
    [pytest.param(*row, id=f"{row[0]}-{next(iter(row[3]))}") for row in MISSING_INPUT],
)
def test_missing_or_bad_input_is_a_validation_error(tree, people, name, state, who, bad):
    case = case_in(tree, state)
    before = snapshot(case)
    bad = {k: getattr(tree, v) if k == "station" else v for k, v in bad.items()}

    with pytest.raises(ValidationFailed) as raised:
        BY_NAME[name].call(tree, case, people[who], **bad)

    assert raised.value.code == "invalid"
    assert raised.value.field_errors or raised.value.message
    assert snapshot(case) == before


def test_reject_without_reason_names_the_field(tree):
    case = case_in(tree, S.SUBMITTED)

    with pytest.raises(ValidationFailed) as raised:
        services.case_reject(case=case, actor=tree.handler, reason="")

    assert "reason" in raised.value.field_errors


@pytest.mark.parametrize(
    "bad",
    [{"title": ""}, {"description": "  "}, {"urgency": "asap"}, {"region": "guangzhou"}],
    ids=lambda b: next(iter(b)),
)
def test_submit_with_missing_input_creates_nothing(tree, bad):
    from tests.casework.steps import submit

    with pytest.raises(ValidationFailed) as raised:
        submit(tree, **bad)

    field_name = "region_code" if "region" in bad else next(iter(bad))
    assert field_name in raised.value.field_errors
    assert not Case.objects.exists()


def test_submit_for_a_region_nobody_serves_is_a_validation_error(tree):
    from tests.casework.steps import submit

    with pytest.raises(ValidationFailed) as raised:
        submit(tree, region="110105")

    assert "region_code" in raised.value.field_errors
    assert not Case.objects.exists()


def test_anonymous_cannot_submit(tree):
    from django.contrib.auth.models import AnonymousUser

    from tests.casework.steps import submit

    with pytest.raises(NotPermitted):
        submit(tree, youth=AnonymousUser())


def test_stale_expected_version_is_a_conflict_and_nothing_changes(tree):
    case = case_in(tree, S.SUBMITTED)
    before = snapshot(case)

    with pytest.raises(CaseConflict) as raised:
        services.case_accept(case=case, actor=tree.handler, expected_version=case.version + 1)

    assert raised.value.code == "conflict"
    assert snapshot(case) == before


def test_current_expected_version_is_accepted(tree):
    case = case_in(tree, S.SUBMITTED)

    case = services.case_accept(case=case, actor=tree.handler, expected_version=case.version)

    assert case.state == S.ACCEPTED


def test_unknown_case_is_not_found(tree):
    from casework.errors import NotFound

    with pytest.raises(NotFound):
        services.case_accept(case=987654, actor=tree.handler)


def test_appeal_only_once(tree):
    case = case_in(tree, S.REJECTED)
    case = services.case_appeal(case=case, actor=tree.youth)
    case = services.case_reject(case=case, actor=tree.city_handler, reason="out_of_scope")
    before = snapshot(case)

    with pytest.raises(InvalidTransition) as raised:
        services.case_appeal(case=case, actor=tree.youth)

    assert "once" in str(raised.value.message)
    assert snapshot(case) == before


def test_appeal_after_the_window_is_refused(tree, settings):
    from freezegun import freeze_time

    case = case_in(tree, S.REJECTED)
    with freeze_time(case.closed_at + settings.CASEWORK_APPEAL_WINDOW + _minute()):
        before = snapshot(case)
        with pytest.raises(InvalidTransition):
            services.case_appeal(case=case, actor=tree.youth)
        assert snapshot(case) == before


def test_wrong_person_appealing_after_the_window_is_not_permitted(tree, settings):
    from freezegun import freeze_time

    case = case_in(tree, S.REJECTED)
    late = freeze_time(case.closed_at + settings.CASEWORK_APPEAL_WINDOW + _minute())
    with late, pytest.raises(NotPermitted):
        services.case_appeal(case=case, actor=tree.other_youth)


def _minute():
    from datetime import timedelta

    return timedelta(minutes=1)


def test_every_refusal_is_a_casework_error_never_a_bare_fsm_error(tree, people):
    """Call every transition from every state as every person; only domain errors come out."""
    # Hundreds of open cases: keep Haizhu from filling up and routing them elsewhere.
    tree.haizhu.capacity = 10_000
    tree.haizhu.save(update_fields=["capacity"])
    refusals = 0
    for t in TRANSITIONS:
        for state in (S.SUBMITTED, S.COORDINATING, S.CLOSED):
            for who in ("youth", "handler", "verifier", "city_supervisor", "system"):
                case = case_in(tree, state)
                try:
                    t.call(tree, case, people[who])
                except CaseworkError:
                    refusals += 1
    assert refusals > 0


# --- routing events: who holds the case ----------------------------------------------


def _escalate(tree, case, actor, **kw):
    return services.case_escalate(case=case, actor=actor, reason=kw.pop("reason", "manual"), **kw)


def _transfer(tree, case, actor, **kw):
    return services.case_transfer(
        case=case, actor=actor, to_org=kw.pop("to_org", tree.baiyun), reason="辖区不符", **kw
    )


def _delegate(tree, case, actor, **kw):
    return services.case_delegate(
        case=case, actor=actor, to_org=kw.pop("to_org", tree.haizhu_branch), reason="就近", **kw
    )


def _reassign(tree, case, actor, **kw):
    return services.case_reassign(
        case=case, actor=actor, to_org=kw.pop("to_org", tree.baiyun), reason="平衡工作量", **kw
    )


def _pull_up(tree, case, actor, **kw):
    return services.case_pull_up(case=case, actor=actor, reason="督办", **kw)


def _assign(tree, case, actor, people=None, **kw):
    return services.case_assign(case=case, actor=actor, assignee=kw.pop("assignee"), **kw)


@dataclass(frozen=True)
class R:
    name: str
    call: object
    kind: str
    allowed: list
    refused: list
    # where the case goes when ``allowed`` makes the move (an attribute of the tree)
    to: str


ROUTING = [
    R(
        "escalate",
        _escalate,
        "escalated",
        ["handler", "city_supervisor", "province_supervisor", "system"],
        [
            "youth",
            "verifier",
            "sibling_handler",
            "child_handler",
            "parent_handler",
            "sibling_supervisor",
            "partner",
        ],
        "city",
    ),
    R(
        "transfer",
        _transfer,
        "transferred",
        ["handler", "city_supervisor"],
        ["youth", "verifier", "sibling_handler", "child_handler", "sibling_supervisor", "partner"],
        "baiyun",
    ),
    R(
        "delegate",
        _delegate,
        "delegated",
        ["handler", "city_supervisor", "province_supervisor"],
        ["youth", "verifier", "sibling_handler", "child_handler", "other_city_supervisor"],
        "haizhu_branch",
    ),
    R(
        "reassign",
        _reassign,
        "reassigned",
        ["city_supervisor", "province_supervisor"],
        [
            "youth",
            "handler",
            "parent_handler",
            "verifier",
            "sibling_supervisor",
            "other_city_supervisor",
            "child_supervisor",
        ],
        "baiyun",
    ),
    R(
        "pull_up",
        _pull_up,
        "escalated",
        ["city_supervisor"],
        ["youth", "handler", "parent_handler", "sibling_supervisor", "child_supervisor"],
        "city",
    ),
]
ROUTING_BY_NAME = {r.name: r for r in ROUTING}


@pytest.mark.parametrize(
    ("name", "who"),
    [pytest.param(r.name, w, id=f"{r.name}-{w}") for r in ROUTING for w in r.allowed],
)
def test_routing_event_moves_the_holder_not_the_state(tree, people, name, who):
    r = ROUTING_BY_NAME[name]
    case = case_in(tree, S.ACCEPTED)
    assert case.assignee_id is not None
    before = snapshot(case)

    case = r.call(tree, case, people[who])

    after = snapshot(case)
    assert after.state == before.state == S.ACCEPTED
    assert after.org_id == getattr(tree, r.to).pk
    assert after.assignee_id is None
    assert after.version == before.version + 1
    assert after.last_event_seq == before.last_event_seq + 1
    event = CaseEvent.objects.get(case=case, seq=after.last_event_seq)
    assert event.kind == r.kind
    assert event.payload["from_org"] == tree.haizhu.pk
    assert event.payload["to_org"] == getattr(tree, r.to).pk
    assert event.org_id == getattr(tree, r.to).pk


def test_pull_up_by_the_province_supervisor_goes_to_the_province(tree, people):
    case = case_in(tree, S.SUBMITTED)

    case = services.case_pull_up(case=case, actor=people["province_supervisor"], reason="督办")

    assert case.org_id == tree.province.pk


@pytest.mark.parametrize(
    ("name", "who"),
    [pytest.param(r.name, w, id=f"{r.name}-{w}") for r in ROUTING for w in r.refused],
)
def test_routing_event_by_the_wrong_person_is_refused(tree, people, name, who):
    case = case_in(tree, S.ACCEPTED)
    before = snapshot(case)

    with pytest.raises(NotPermitted):
        ROUTING_BY_NAME[name].call(tree, case, people[who])

    assert snapshot(case) == before


@pytest.mark.parametrize("name", list(ROUTING_BY_NAME))
@pytest.mark.parametrize("state", [S.CLOSED, S.REJECTED, S.WITHDRAWN])
def test_routing_a_finished_case_is_an_invalid_transition(tree, people, name, state):
    case = case_in(tree, state)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        ROUTING_BY_NAME[name].call(tree, case, people[ROUTING_BY_NAME[name].allowed[0]])

    assert snapshot(case) == before


def test_escalation_is_refused_at_the_top(tree, people):
    case = case_in(tree, S.SUBMITTED)
    case = services.case_escalate(case=case, actor=tree.handler, reason="beyond_capacity")
    case = services.case_escalate(case=case, actor=tree.city_handler, reason="beyond_capacity")
    assert case.org_id == tree.province.pk
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        services.case_escalate(case=case, actor=tree.province_handler, reason="manual")

    assert snapshot(case) == before
    assert case.escalation_count == 2


def test_escalation_needs_a_known_reason(tree):
    case = case_in(tree, S.SUBMITTED)

    with pytest.raises(ValidationFailed):
        services.case_escalate(case=case, actor=tree.handler, reason="bored")


@pytest.mark.parametrize(
    ("name", "to_org"),
    [
        ("transfer", "haizhu"),  # to itself
        ("transfer", "city"),  # up is escalation
        ("transfer", "haizhu_branch"),  # down is delegation
        ("transfer", "other_city"),  # another level
        ("transfer", "partner"),  # not a holding organisation
        ("delegate", "baiyun"),  # sideways
        ("delegate", "city"),  # up
        ("delegate", "haizhu"),  # itself
        ("delegate", "partner"),  # a partner body takes tasks, not cases
        ("reassign", "other_city"),  # outside the city supervisor's subtree
        ("reassign", "haizhu"),  # where it already is
        ("reassign", "partner"),
    ],
)
def test_routing_to_the_wrong_organisation_is_a_validation_error(tree, people, name, to_org):
    who = "city_supervisor" if name == "reassign" else "handler"
    case = case_in(tree, S.ACCEPTED)
    before = snapshot(case)

    with pytest.raises(ValidationFailed) as raised:
        ROUTING_BY_NAME[name].call(tree, case, people[who], to_org=getattr(tree, to_org))

    assert "org" in raised.value.field_errors
    assert snapshot(case) == before


def test_transfer_to_an_inactive_sibling_is_refused(tree):
    tree.baiyun.is_active = False
    tree.baiyun.save()
    case = case_in(tree, S.SUBMITTED)

    with pytest.raises(ValidationFailed):
        services.case_transfer(case=case, actor=tree.handler, to_org=tree.baiyun, reason="x")


def test_transfer_without_a_reason_is_refused(tree):
    case = case_in(tree, S.SUBMITTED)

    with pytest.raises(ValidationFailed):
        services.case_transfer(case=case, actor=tree.handler, to_org=tree.baiyun, reason=" ")


def test_pull_up_by_a_supervisor_of_the_holding_org_itself_is_refused(tree, people):
    # Nothing above to pull to within their own authority: the case is already theirs.
    case = case_in(tree, S.SUBMITTED)
    case = services.case_pull_up(case=case, actor=people["city_supervisor"], reason="督办")
    before = snapshot(case)

    with pytest.raises(NotPermitted):
        services.case_pull_up(case=case, actor=people["city_supervisor"], reason="again")

    assert snapshot(case) == before


def test_assign_to_a_handler_of_the_holding_org(tree, people):
    case = case_in(tree, S.SUBMITTED)
    before = snapshot(case)

    case = services.case_assign(case=case, actor=tree.handler, assignee=people["handler2"])

    assert case.assignee_id == people["handler2"].pk
    event = CaseEvent.objects.get(case=case, seq=before.last_event_seq + 1)
    assert event.kind == "assigned"
    assert event.payload == {"from_user": None, "to_user": people["handler2"].pk}


@pytest.mark.parametrize(
    "assignee", ["sibling_handler", "child_handler", "verifier", "city_supervisor", "youth"]
)
def test_assign_to_someone_not_handling_for_the_org_is_refused(tree, people, assignee):
    case = case_in(tree, S.SUBMITTED)
    before = snapshot(case)

    with pytest.raises(ValidationFailed) as raised:
        services.case_assign(case=case, actor=tree.handler, assignee=people[assignee])

    assert "assignee" in raised.value.field_errors
    assert snapshot(case) == before


@pytest.mark.parametrize("who", ["youth", "sibling_handler", "verifier", "sibling_supervisor"])
def test_assign_by_the_wrong_person_is_refused(tree, people, who):
    case = case_in(tree, S.SUBMITTED)

    with pytest.raises(NotPermitted):
        services.case_assign(case=case, actor=people[who], assignee=people["handler2"])


def test_supervisor_above_may_assign(tree, people):
    case = case_in(tree, S.SUBMITTED)

    case = services.case_assign(
        case=case, actor=people["province_supervisor"], assignee=tree.handler
    )

    assert case.assignee_id == tree.handler.pk


# --- coordination: refer, complete, waive; resolve waits for required tasks -------------


def _refer(tree, case, actor=None, **kw):
    return services.case_refer(
        case=case,
        actor=actor or tree.handler,
        partner=kw.pop("partner", tree.partner),
        instructions=kw.pop("instructions", "请学校配合调查"),
        **kw,
    )


def test_refer_complete_then_resolve(tree):
    case = case_in(tree, S.COORDINATING)
    task = _refer(tree, case)

    with pytest.raises(InvalidTransition) as raised:
        services.case_resolve(case=case, actor=tree.handler, outcome="solved", note="好了")
    assert "coordination" in str(raised.value.message)

    services.coordination_complete(task=task, actor=tree.partner_staff, result="已约谈")
    case = services.case_resolve(case=case, actor=tree.handler, outcome="solved", note="好了")

    assert case.state == S.RESOLVED
    assert kinds(case)[-3:] == ["referred", "referral_done", "resolved"]


def test_refer_waive_then_resolve(tree):
    case = case_in(tree, S.COORDINATING)
    task = _refer(tree, case)

    services.coordination_waive(task=task, actor=tree.handler, reason="学校已主动处理")
    case = services.case_resolve(case=case, actor=tree.handler, outcome="partly", note="部分")

    assert case.state == S.RESOLVED
    assert kinds(case)[-3:] == ["referred", "referral_waived", "resolved"]


def test_an_optional_task_does_not_hold_up_resolving(tree):
    case = case_in(tree, S.COORDINATING)
    _refer(tree, case, required=False)

    case = services.case_resolve(case=case, actor=tree.handler, outcome="solved", note="好了")

    assert case.state == S.RESOLVED


def test_resolve_refused_while_a_required_task_is_open_changes_nothing(tree):
    case = case_in(tree, S.COORDINATING)
    _refer(tree, case)
    _refer(tree, case, required=False)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        services.case_resolve(case=case, actor=tree.handler, outcome="solved", note="好了")

    assert snapshot(case) == before


def test_wrong_person_resolving_with_open_tasks_is_not_permitted(tree, people):
    case = case_in(tree, S.COORDINATING)
    _refer(tree, case)

    with pytest.raises(NotPermitted):
        services.case_resolve(
            case=case, actor=people["sibling_handler"], outcome="solved", note="x"
        )


@pytest.mark.parametrize("state", [S.SUBMITTED, S.ACCEPTED, S.VERIFYING, S.RESOLVED, S.CLOSED])
def test_refer_outside_coordinating_is_an_invalid_transition(tree, state):
    case = case_in(tree, state)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        _refer(tree, case)

    assert snapshot(case) == before


@pytest.mark.parametrize(
    "who",
    ["youth", "verifier", "partner", "sibling_handler", "child_handler", "sibling_supervisor"],
)
def test_refer_by_the_wrong_person_is_not_permitted(tree, people, who):
    case = case_in(tree, S.COORDINATING)
    before = snapshot(case)

    with pytest.raises(NotPermitted):
        _refer(tree, case, actor=people[who])

    assert snapshot(case) == before


@pytest.mark.parametrize(
    "bad",
    [{"instructions": ""}, {"partner": "haizhu"}, {"partner": None}, {"due_at": "past"}],
    ids=["instructions", "league-partner", "no-partner", "past-deadline"],
)
def test_refer_with_bad_input_is_a_validation_error(tree, bad):
    from datetime import timedelta

    from django.utils import timezone

    case = case_in(tree, S.COORDINATING)
    if bad.get("partner"):
        bad["partner"] = getattr(tree, bad["partner"])
    if "due_at" in bad:
        bad["due_at"] = timezone.now() - timedelta(hours=1)
    before = snapshot(case)

    with pytest.raises(ValidationFailed):
        _refer(tree, case, **bad)

    assert snapshot(case) == before


@pytest.mark.parametrize(
    "who", ["youth", "verifier", "sibling_handler", "other_verifier", "sibling_supervisor"]
)
def test_completing_a_task_by_the_wrong_person_is_not_permitted(tree, people, who):
    case = case_in(tree, S.COORDINATING)
    task = _refer(tree, case)
    before = snapshot(case)

    with pytest.raises(NotPermitted):
        services.coordination_complete(task=task, actor=people[who], result="完成")

    assert snapshot(case) == before


@pytest.mark.parametrize("who", ["handler", "city_supervisor"])
def test_handler_or_supervisor_may_record_a_task_done(tree, people, who):
    case = case_in(tree, S.COORDINATING)
    task = _refer(tree, case)

    task = services.coordination_complete(task=task, actor=people[who], result="电话确认已办")

    assert task.status == "done"


@pytest.mark.parametrize("who", ["partner", "youth", "sibling_handler"])
def test_waiving_by_anyone_but_the_handler_is_not_permitted(tree, people, who):
    case = case_in(tree, S.COORDINATING)
    task = _refer(tree, case)
    before = snapshot(case)

    with pytest.raises(NotPermitted):
        services.coordination_waive(task=task, actor=people[who], reason="不需要")

    assert snapshot(case) == before


@pytest.mark.parametrize("first", ["complete", "waive"])
@pytest.mark.parametrize("second", ["complete", "waive"])
def test_a_finished_task_cannot_be_finished_again(tree, first, second):
    case = case_in(tree, S.COORDINATING)
    task = _refer(tree, case)
    finish = {
        "complete": lambda: services.coordination_complete(
            task=task, actor=tree.partner_staff, result="完成"
        ),
        "waive": lambda: services.coordination_waive(task=task, actor=tree.handler, reason="不要"),
    }
    finish[first]()
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        finish[second]()

    assert snapshot(case) == before


def test_finishing_a_task_without_words_is_a_validation_error(tree):
    case = case_in(tree, S.COORDINATING)
    task = _refer(tree, case)

    with pytest.raises(ValidationFailed):
        services.coordination_complete(task=task, actor=tree.partner_staff, result="")
    with pytest.raises(ValidationFailed):
        services.coordination_waive(task=task, actor=tree.handler, reason="")


def test_task_of_a_withdrawn_case_cannot_be_completed(tree):
    case = case_in(tree, S.COORDINATING)
    task = _refer(tree, case)
    services.case_withdraw(case=case, actor=tree.youth)
    before = snapshot(case)

    with pytest.raises(InvalidTransition):
        services.coordination_complete(task=task, actor=tree.partner_staff, result="完成")

    assert snapshot(case) == before
