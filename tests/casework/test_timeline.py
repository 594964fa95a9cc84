"""The timeline: one event per change, a contiguous hash chain, no personal text, append-only.

The database-level guarantees (the trigger refusing UPDATE, DELETE and
TRUNCATE; tampering found by ``verify_timeline``) are PostgreSQL tests.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from casework import services
from casework.events import EventKind, verify_case
from casework.models import Case, CaseEvent
from casework.states import CaseState
from tests.casework.steps import case_in, kinds, submit

S = CaseState


def _seq(case) -> int:
    return Case.objects.values_list("last_event_seq", flat=True).get(pk=case.pk)


def _events(case) -> list[CaseEvent]:
    return list(CaseEvent.objects.filter(case_id=case.pk).order_by("seq"))


def assert_chain_ok(case):
    case = Case.objects.get(pk=case.pk)
    events = _events(case)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].seq == case.last_event_seq
    assert events[-1].hash == case.last_event_hash
    assert verify_case(case) is None


# --- one event per call -------------------------------------------------------------


def test_submit_appends_submitted_and_routed(tree):
    case = submit(tree)

    assert kinds(case) == ["submitted", "routed"]
    submitted, routed = _events(case)
    assert (submitted.actor_id, submitted.to_state) == (tree.youth.pk, S.SUBMITTED)
    assert routed.actor_id is None
    assert submitted.org_id == routed.org_id == tree.haizhu.pk
    assert case.version == 0
    assert_chain_ok(case)


# (call, expected kind) along every path; each call adds exactly one event.
STEPS = {
    "accept": (lambda t, c: services.case_accept(case=c, actor=t.handler), "accepted"),
    "assign": (
        lambda t, c: services.case_assign(case=c, actor=t.handler, assignee=t.handler),
        "assigned",
    ),
    "comment": (
        lambda t, c: services.case_comment(case=c, actor=t.handler, body="内部备注"),
        "comment",
    ),
    "schedule": (
        lambda t, c: services.case_schedule_verification(
            case=c, actor=t.handler, station=t.station
        ),
        "verification_scheduled",
    ),
    "request_info": (
        lambda t, c: services.case_request_info(case=c, actor=t.verifier, question="几点?"),
        "info_requested",
    ),
    "provide_info": (
        lambda t, c: services.case_provide_info(case=c, actor=t.youth, answer="下午三点"),
        "info_provided",
    ),
    "confirm": (
        lambda t, c: services.case_record_verification(
            case=c, actor=t.verifier, confirmed=True, findings="属实"
        ),
        "verification_confirmed",
    ),
    "refer": (
        lambda t, c: services.case_refer(
            case=c, actor=t.handler, partner=t.partner, instructions="请协助"
        ),
        "referred",
    ),
    "complete": (
        lambda t, c: services.coordination_complete(
            task=c.coordination_tasks.get(), actor=t.partner_staff, result="已办"
        ),
        "referral_done",
    ),
    "escalate": (
        lambda t, c: services.case_escalate(case=c, actor=t.handler, reason="manual", note="难"),
        "escalated",
    ),
    "delegate": (
        lambda t, c: services.case_delegate(
            case=c, actor=t.city_handler, to_org=t.haizhu, reason="回到区里"
        ),
        "delegated",
    ),
    "resolve": (
        lambda t, c: services.case_resolve(case=c, actor=t.handler, outcome="solved", note="好"),
        "resolved",
    ),
    "feedback": (
        lambda t, c: services.case_give_feedback(case=c, actor=t.handler, message="结果"),
        "feedback_given",
    ),
    "dispute": (
        lambda t, c: services.case_dispute(case=c, actor=t.youth, reason="没解决"),
        "disputed",
    ),
    "rate": (
        lambda t, c: services.case_rate(
            case=c, actor=t.youth, timeliness=4, attitude=5, outcome=3, solved="partly"
        ),
        "rated",
    ),
}

PATH = [
    "accept",
    "assign",
    "comment",
    "schedule",
    "request_info",
    "provide_info",
    "confirm",
    "refer",
    "complete",
    "escalate",
    "delegate",
    "resolve",
    "feedback",
    "dispute",
    "resolve",
    "feedback",
    "rate",
]


def test_every_service_call_appends_exactly_one_event(tree):
    case = submit(tree)
    assert _seq(case) == 2

    for name in PATH:
        call, kind = STEPS[name]
        seq_before = _seq(case)
        version_before = Case.objects.get(pk=case.pk).version

        call(tree, Case.objects.get(pk=case.pk))

        fresh = Case.objects.get(pk=case.pk)
        assert fresh.last_event_seq == seq_before + 1, name
        assert fresh.version == version_before + 1, name
        assert CaseEvent.objects.filter(case=case).count() == seq_before + 1, name
        assert kinds(case)[-1] == kind, name

    assert Case.objects.get(pk=case.pk).state == S.CLOSED
    assert_chain_ok(case)


def test_events_record_who_and_the_state_change(tree):
    case = case_in(tree, S.COORDINATING)

    accepted = CaseEvent.objects.get(case=case, kind="accepted")
    confirmed = CaseEvent.objects.get(case=case, kind="verification_confirmed")

    assert (accepted.from_state, accepted.to_state, accepted.actor_id) == (
        S.SUBMITTED,
        S.ACCEPTED,
        tree.handler.pk,
    )
    assert (confirmed.from_state, confirmed.to_state, confirmed.actor_id) == (
        S.VERIFYING,
        S.COORDINATING,
        tree.verifier.pk,
    )


def test_appeal_appends_appealed_and_escalated(tree):
    case = case_in(tree, S.REJECTED)
    before = _seq(case)

    case = services.case_appeal(case=case, actor=tree.youth, statement="我有新证据")

    assert kinds(case)[before:] == ["appealed", "escalated"]
    escalated = _events(case)[-1]
    assert escalated.payload["reason"] == "appeal"
    assert escalated.org_id == tree.city.pk
    assert_chain_ok(case)


def test_second_dispute_appends_disputed_and_escalated(tree):
    case = case_in(tree, S.FEEDBACK_GIVEN)
    case = services.case_dispute(case=case, actor=tree.youth, reason="没解决")
    case = services.case_resolve(case=case, actor=tree.handler, outcome="partly", note="再处理")
    case = services.case_give_feedback(case=case, actor=tree.handler, message="再说明")
    before = _seq(case)

    case = services.case_dispute(case=case, actor=tree.youth, reason="还是没解决")

    assert kinds(case)[before:] == ["disputed", "escalated"]
    assert _events(case)[-1].payload["reason"] == "reopened"
    assert_chain_ok(case)


def test_event_kinds_are_known(tree):
    case = case_in(tree, S.CLOSED)

    assert set(kinds(case)) <= set(EventKind.values)


# --- no personal text in payloads --------------------------------------------------

SECRETS = {
    "title": "标题里的秘密-title-7d1",
    "description": "我叫王小明住在某某小区-desc-93a",
    "question": "请问你的学校是哪所-question-1f2",
    "answer": "我在第十七中学读初二-answer-c4e",
    "findings": "家访看到的情况-findings-88b",
    "instructions": "请联系王小明的班主任-instructions-5aa",
    "result": "班主任已约谈-result-0c9",
    "note": "结果说明-note-7e7",
    "feedback": "反馈给王小明-feedback-d10",
    "dispute": "我还是被欺负-dispute-6b3",
    "comment": "评价留言-comment-2f4",
    "escalation_note": "王小明情况复杂-escalate-3d3",
    "transfer_reason": "王小明户籍在白云-transfer-e71",
    "withdraw_reason": "王小明不想再说-withdraw-2aa",
    "internal_note": "内部备注王小明-internal-941",
    "reject_note": "重复提交王小明-reject-ab0",
    "appeal_statement": "王小明申诉-appeal-55d",
}


def test_payloads_never_hold_the_youths_or_staffs_words(tree):
    x = SECRETS
    case = submit(tree, title=x["title"], description=x["description"])
    case = services.case_accept(case=case, actor=tree.handler)
    case = services.case_comment(case=case, actor=tree.handler, body=x["internal_note"])
    case = services.case_request_info(case=case, actor=tree.handler, question=x["question"])
    case = services.case_provide_info(case=case, actor=tree.youth, answer=x["answer"])
    case = services.case_schedule_verification(case=case, actor=tree.handler, station=tree.station)
    case = services.case_record_verification(
        case=case, actor=tree.verifier, confirmed=True, findings=x["findings"]
    )
    task = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions=x["instructions"]
    )
    services.coordination_complete(task=task, actor=tree.partner_staff, result=x["result"])
    case = services.case_escalate(
        case=case, actor=tree.handler, reason="manual", note=x["escalation_note"]
    )
    case = services.case_delegate(
        case=case, actor=tree.city_handler, to_org=tree.haizhu, reason=x["transfer_reason"]
    )
    case = services.case_resolve(case=case, actor=tree.handler, outcome="solved", note=x["note"])
    case = services.case_give_feedback(case=case, actor=tree.handler, message=x["feedback"])
    case = services.case_dispute(case=case, actor=tree.youth, reason=x["dispute"])
    case = services.case_resolve(case=case, actor=tree.handler, outcome="solved", note=x["note"])
    case = services.case_give_feedback(case=case, actor=tree.handler, message=x["feedback"])
    case = services.case_rate(
        case=case,
        actor=tree.youth,
        timeliness=5,
        attitude=5,
        outcome=5,
        solved="solved",
        comment=x["comment"],
    )
    other = submit(tree, title=x["title"], description=x["description"])
    other = services.case_reject(
        case=other, actor=tree.handler, reason="duplicate", note=x["reject_note"]
    )
    other = services.case_appeal(case=other, actor=tree.youth, statement=x["appeal_statement"])
    third = submit(tree)
    services.case_withdraw(case=third, actor=tree.youth, reason=x["withdraw_reason"])

    stored = json.dumps(
        list(CaseEvent.objects.values_list("payload", flat=True)), ensure_ascii=False
    )
    leaked = [name for name, text in x.items() if text in stored]
    assert leaked == []
    for marker in ("王小明", "-desc-", "-answer-", "-feedback-"):
        assert marker not in stored
    # ... while the words themselves are kept where they belong.
    # (bodies are encrypted at rest, so they are compared after reading, not in SQL)
    bodies = {(m.body, m.internal) for m in case.messages.all()}
    assert (x["answer"], False) in bodies
    assert (x["escalation_note"], True) in bodies


# --- verification in Python (any database) -------------------------------------------


def _tamper(sql, params=()):
    """Edit the timeline behind the application's back (past the trigger on PostgreSQL)."""
    if connection.vendor == "postgresql":
        with _TriggersOff():
            _raw(sql, params)
    else:
        _raw(sql, params)


def _remove_event(pk):
    """Delete one event as a tamperer would, with whatever rows point at it (notifications)."""
    for rel in CaseEvent._meta.get_fields(include_hidden=True):
        if rel.auto_created and not rel.concrete and rel.related_model is not CaseEvent:
            rel.related_model._base_manager.filter(**{rel.field.name: pk}).delete()
    _tamper("DELETE FROM casework_caseevent WHERE id = %s", [pk])


def test_verify_case_names_an_edited_event(tree):
    case = case_in(tree, S.COORDINATING)
    target = _events(case)[2]

    _tamper("UPDATE casework_caseevent SET payload = %s WHERE id = %s", ['{"x": 1}', target.pk])

    broken = verify_case(case)
    assert (broken.case_id, broken.seq, broken.event_id) == (case.pk, target.seq, target.pk)
    assert "hash" in broken.problem


def test_verify_case_names_a_reordered_or_rewritten_actor(tree):
    case = case_in(tree, S.COORDINATING)
    target = CaseEvent.objects.get(case=case, kind="accepted")

    _tamper(
        "UPDATE casework_caseevent SET actor_id = %s WHERE id = %s",
        [tree.province_supervisor.pk, target.pk],
    )

    broken = verify_case(case)
    assert (broken.seq, broken.event_id) == (target.seq, target.pk)


def test_verify_case_finds_a_removed_tail(tree):
    case = case_in(tree, S.ACCEPTED)
    last = _events(case)[-1]

    _remove_event(last.pk)

    broken = verify_case(case)
    assert broken is not None
    assert broken.case_id == case.pk and broken.seq == last.seq
    assert "missing" in broken.problem


def test_verify_case_finds_a_rehashed_forgery_by_the_next_link(tree):
    """Rehashing the edited event itself is not enough: the next event points at the old hash."""
    from casework.events import event_hash

    case = case_in(tree, S.VERIFYING)
    target = CaseEvent.objects.get(case=case, kind="accepted")
    target.payload = {"forged": True}
    new_hash = event_hash(target)

    _tamper(
        "UPDATE casework_caseevent SET payload = %s, hash = %s WHERE id = %s",
        ['{"forged": true}', new_hash, target.pk],
    )

    broken = verify_case(case)
    assert broken.seq == target.seq + 1
    assert "previous hash" in broken.problem


def test_verify_timeline_command_is_quiet_and_zero_on_a_clean_database(tree):
    for state in (S.CLOSED, S.REJECTED, S.AWAITING_YOUTH):
        case_in(tree, state)
    out, err = StringIO(), StringIO()

    call_command("verify_timeline", stdout=out, stderr=err)

    assert "All 3 case timelines verify." in out.getvalue()
    assert err.getvalue() == ""


def test_verify_timeline_command_on_an_empty_database(db):
    out = StringIO()

    call_command("verify_timeline", stdout=out)

    assert "All 0 case timelines verify." in out.getvalue()


def test_verify_timeline_for_one_case(tree):
    case = case_in(tree, S.RESOLVED)
    out = StringIO()

    call_command("verify_timeline", "--case", str(case.pk), stdout=out)

    assert "All 1 case timelines verify." in out.getvalue()


def test_verify_timeline_for_an_unknown_case_fails(db):
    with pytest.raises(CommandError, match="No case with id 424242"):
        call_command("verify_timeline", "--case", "424242", stdout=StringIO())


# --- PostgreSQL: the database refuses edits; tampering is found --------------------------


def _raw(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _refused_by_trigger(sql, params=()):
    import psycopg2.errors
    from django.db import ProgrammingError

    with pytest.raises(ProgrammingError) as raised, transaction.atomic():
        _raw(sql, params)
    assert isinstance(raised.value.__cause__, psycopg2.errors.InsufficientPrivilege)
    assert "append-only" in str(raised.value)


@pytest.mark.postgres
def test_database_refuses_update_of_an_event(tree):
    case = case_in(tree, S.ACCEPTED)
    event = _events(case)[0]

    _refused_by_trigger("UPDATE casework_caseevent SET kind = 'rated' WHERE id = %s", [event.pk])

    assert CaseEvent.objects.get(pk=event.pk).kind == event.kind


@pytest.mark.postgres
def test_database_refuses_update_through_the_orm(tree):
    from django.db import ProgrammingError

    case = case_in(tree, S.ACCEPTED)
    event = _events(case)[0]
    event.payload = {"category": "legal"}

    with pytest.raises(ProgrammingError), transaction.atomic():
        event.save()

    assert verify_case(case) is None


@pytest.mark.postgres
def test_database_refuses_delete_of_an_event(tree):
    case = case_in(tree, S.ACCEPTED)
    last = _events(case)[-1]

    _refused_by_trigger("DELETE FROM casework_caseevent WHERE id = %s", [last.pk])

    assert CaseEvent.objects.filter(case=case).count() == 3


@pytest.mark.postgres
def test_database_refuses_truncate(tree):
    case = case_in(tree, S.ACCEPTED)
    # (PostgreSQL refuses TRUNCATE while deferred FK checks are queued; run them first,
    # so that what refuses the TRUNCATE below is the append-only trigger.)
    _raw("SET CONSTRAINTS ALL IMMEDIATE")

    _refused_by_trigger("TRUNCATE casework_caseevent CASCADE")

    assert CaseEvent.objects.filter(case=case).count() == 3


class _TriggersOff:
    """As the superuser: switch the append-only triggers off for a raw edit, then on again."""

    def __enter__(self):
        # Inside the test's transaction the deferred foreign-key checks of the rows just
        # written are still queued, and PostgreSQL will not ALTER a table with queued
        # trigger events: run them now.
        _raw("SET CONSTRAINTS ALL IMMEDIATE")
        _raw("ALTER TABLE casework_caseevent DISABLE TRIGGER USER")

    def __exit__(self, *exc):
        _raw("ALTER TABLE casework_caseevent ENABLE TRIGGER USER")
        _raw("SET CONSTRAINTS ALL DEFERRED")


def _verify_fails(*args) -> str:
    err = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("verify_timeline", *args, stdout=StringIO(), stderr=err)
    assert raised.value.returncode == 1
    return err.getvalue()


@pytest.mark.postgres
def test_tampered_payload_is_named_by_verify_timeline(tree):
    clean = case_in(tree, S.CLOSED)
    case = case_in(tree, S.COORDINATING)
    target = CaseEvent.objects.get(case=case, kind="accepted")

    with _TriggersOff():
        _raw(
            "UPDATE casework_caseevent SET payload = '{\"forged\": true}'::jsonb WHERE id = %s",
            [target.pk],
        )

    err = _verify_fails()
    assert f"case {case.pk}: event seq {target.seq} (id {target.pk})" in err
    assert f"case {clean.pk}:" not in err
    # The trigger is back on.
    _refused_by_trigger("DELETE FROM casework_caseevent WHERE id = %s", [target.pk])


@pytest.mark.postgres
def test_tampered_kind_is_named_by_verify_timeline_for_that_case(tree):
    case = case_in(tree, S.FEEDBACK_GIVEN)
    target = CaseEvent.objects.get(case=case, kind="resolved")

    with _TriggersOff():
        _raw("UPDATE casework_caseevent SET kind = 'withdrawn' WHERE id = %s", [target.pk])

    err = _verify_fails("--case", str(case.pk))
    assert f"case {case.pk}: event seq {target.seq} (id {target.pk})" in err
    assert "content does not match hash" in err


@pytest.mark.postgres
def test_removed_tail_is_found_by_verify_timeline(tree):
    case = case_in(tree, S.RESOLVED)
    last = _events(case)[-1]

    _remove_event(last.pk)

    err = _verify_fails()
    assert f"case {case.pk}: event seq {last.seq}" in err
    assert "missing" in err


@pytest.mark.postgres
def test_removed_middle_event_is_found_by_verify_timeline(tree):
    case = case_in(tree, S.RESOLVED)
    middle = _events(case)[3]

    _remove_event(middle.pk)

    err = _verify_fails()
    assert f"case {case.pk}: event seq {middle.seq + 1}" in err
