"""The authorization matrix: every API endpoint against every kind of caller.

Callers: the owner youth, another youth, a handler of the assigned organisation,
a handler of a sibling organisation, a supervisor above, a member of a child
organisation, a partner with a task on the case, a partner without one, and an
anonymous caller. Only the allowed cells succeed; a caller who may not see the
case gets 404, one who sees it but may not act 403, an anonymous caller 401.

The expectations are written out here by hand (not derived from the code under
test), and list and detail are checked to agree for every caller.
"""

from __future__ import annotations

import pytest
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from casework import permissions, services
from casework.models import Case, CoordinationTask, Organisation, User
from casework.selectors import cases_visible_to
from casework.services.dashboard_rollup import refresh_dashboard_rollup
from casework.states import CaseState
from tests.casework.steps import advance, case_in, snapshot, submit
from tests.conftest import member
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db

ROLES = (
    "owner",
    "other_youth",
    "handler",
    "sibling_handler",
    "supervisor",
    "child_member",
    "partner_with_task",
    "partner_without_task",
    "anonymous",
)
# Who sees a case held by Haizhu that gave the education bureau a task.
SEES_CASE_WITH_TASK = {"owner", "handler", "supervisor", "partner_with_task"}
SEES_CASE_WITHOUT_TASK = {"owner", "handler", "supervisor"}
# How much: the view each of them gets.
ACCESS = {
    "owner": permissions.ACCESS_YOUTH,
    "handler": permissions.ACCESS_STAFF,
    "supervisor": permissions.ACCESS_STAFF,
    "partner_with_task": permissions.ACCESS_PARTNER,
}


@pytest.fixture
def people(tree) -> dict[str, User | None]:
    other_partner = OrganisationFactory(
        parent=tree.baiyun,
        name="白云区人社局",
        level=4,
        region_code="440111",
        kind=Organisation.Kind.PARTNER,
        routes_by_region=False,
        categories=[],
    )
    return {
        "owner": tree.youth,
        "other_youth": tree.other_youth,
        "handler": tree.handler,
        "sibling_handler": tree.baiyun_handler,
        "supervisor": tree.city_supervisor,
        "child_member": tree.branch_handler,
        "partner_with_task": tree.partner_staff,
        "partner_without_task": member(other_partner, "partner", "labour_staff"),
        "anonymous": None,
    }


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def with_task(tree, case: Case) -> Case:
    """Give the education bureau (tree.partner) an optional task on a coordinating case."""
    services.case_refer(
        case=case,
        actor=tree.handler,
        partner=tree.partner,
        instructions="请协调学校",
        required=False,
    )
    return Case.objects.get(pk=case.pk)


def case_with_task(tree, state: str) -> Case:
    """A case in ``state`` whose coordination gave tree.partner a task (coordinating or later)."""
    case = with_task(tree, case_in(tree, CaseState.COORDINATING))
    if state == CaseState.AWAITING_YOUTH:
        return services.case_request_info(case=case, actor=tree.handler, question="请补充材料")
    if state == CaseState.WITHDRAWN:
        return services.case_withdraw(case=case, actor=tree.youth)
    return advance(tree, case, state)


# --- reads ----------------------------------------------------------------------------


def test_scoping_and_object_checks_agree_for_every_caller(tree, people):
    # given cases in every state, some with partner tasks, one of another youth elsewhere
    cases = [case_in(tree, state) for state in CaseState.values]
    cases += [case_with_task(tree, s) for s in (CaseState.COORDINATING, CaseState.CLOSED)]
    cases.append(submit(tree, youth=tree.other_youth, region="440111"))
    superuser = User.objects.create_superuser("root", password="x-root-1234")
    callers = {**people, "superuser": superuser, "verifier": tree.verifier}
    for name, user in callers.items():
        # when the list scope and the per-object check are asked about every case
        listed = set(cases_visible_to(user).values_list("pk", flat=True))
        checked = {c.pk for c in Case.objects.all() if permissions.may_view_case(c, user)}
        # then they agree
        assert listed == checked, name
    assert len(set(cases_visible_to(superuser))) == len(cases)


def test_case_reads(tree, people):
    case = case_with_task(tree, CaseState.COORDINATING)
    for role, user in people.items():
        client = client_for(user)
        listed = client.get("/api/cases/")
        detail = client.get(f"/api/cases/{case.reference}/")
        events = client.get(f"/api/cases/{case.reference}/events/")
        messages = client.get(f"/api/cases/{case.reference}/messages/")
        tasks = client.get("/api/tasks/")
        if user is None:
            assert {r.status_code for r in (listed, detail, events, messages, tasks)} == {401}
            continue
        in_list = case.reference in [c["reference"] for c in listed.json()["results"]]
        sees = role in SEES_CASE_WITH_TASK
        # list and detail agree, and only the allowed callers see the case
        assert in_list is sees, role
        assert detail.status_code == (200 if sees else 404), role
        if sees:
            listed_body = next(
                c for c in listed.json()["results"] if c["reference"] == case.reference
            )
            assert listed_body == detail.json(), role
            assert detail["ETag"] == f'"{case.version}"'
        # the timeline and messages: staff and the youth; a partner sees only its task
        expected = {"owner": 200, "handler": 200, "supervisor": 200, "partner_with_task": 403}
        assert events.status_code == expected.get(role, 404), role
        assert messages.status_code == expected.get(role, 404), role
        # coordination tasks: the partner body's own and the handling side's
        task_cases = {t["case"] for t in tasks.json()["results"]}
        assert (case.reference in task_cases) is (
            role in {"handler", "supervisor", "partner_with_task"}
        )


def test_each_caller_gets_only_their_view_of_the_case(tree, people):
    case = case_with_task(tree, CaseState.COORDINATING)
    services.case_comment(case=case, actor=tree.handler, body="内部备注：家长电话")
    services.case_comment(case=case, actor=tree.youth, body="我补充一点")
    bodies = {
        role: client_for(people[role]).get(f"/api/cases/{case.reference}/").json()
        for role in ACCESS
    }
    assert "youth" in bodies["handler"] and "assignee" in bodies["supervisor"]
    assert "description" in bodies["owner"] and "youth" not in bodies["owner"]
    assert "assignee" not in bodies["owner"]
    # a partner: the reference, the category and its own task, nothing of the youth
    assert set(bodies["partner_with_task"]) == {
        "reference",
        "state",
        "stage",
        "version",
        "category",
        "tasks",
    }
    assert [t["instructions"] for t in bodies["partner_with_task"]["tasks"]] == ["请协调学校"]
    # internal notes only for staff
    staff_notes = client_for(tree.handler).get(f"/api/cases/{case.reference}/messages/").json()
    youth_notes = client_for(tree.youth).get(f"/api/cases/{case.reference}/messages/").json()
    assert "内部备注：家长电话" in [m["body"] for m in staff_notes]
    assert "内部备注：家长电话" not in [m["body"] for m in youth_notes]
    assert "我补充一点" in [m["body"] for m in youth_notes]


def test_public_progress_is_open_to_everyone(tree, people):
    case = case_in(tree, CaseState.CLOSED)
    for role, user in people.items():
        response = client_for(user).get(f"/api/public/cases/{case.public_token}/")
        assert response.status_code == 200, role
        assert response.json()["reference"] == case.reference
        assert "description" not in response.json()


# --- actions --------------------------------------------------------------------------


ACTIONS = [
    # (endpoint, state, body, allowed callers, case with a partner task)
    ("accept", CaseState.SUBMITTED, {}, {"handler", "supervisor"}, False),
    ("reject", CaseState.SUBMITTED, {"reason": "duplicate"}, {"handler", "supervisor"}, False),
    ("appeal", CaseState.REJECTED, {"statement": "请复核"}, {"owner"}, False),
    ("schedule-verification", CaseState.ACCEPTED, {}, {"handler", "supervisor"}, False),
    (
        "record-verification",
        CaseState.VERIFYING,
        {"confirmed": True, "findings": "属实"},
        {"supervisor"},
        False,
    ),
    (
        "request-info",
        CaseState.COORDINATING,
        {"question": "请补充"},
        {"handler", "supervisor"},
        True,
    ),
    ("provide-info", CaseState.AWAITING_YOUTH, {"answer": "补充如下"}, {"owner"}, True),
    (
        "resolve",
        CaseState.COORDINATING,
        {"outcome": "solved", "note": "已解决"},
        {"handler", "supervisor"},
        True,
    ),
    ("give-feedback", CaseState.RESOLVED, {"message": "已解决"}, {"handler", "supervisor"}, True),
    (
        "rate",
        CaseState.FEEDBACK_GIVEN,
        {"timeliness": 5, "attitude": 5, "outcome": 5, "solved": "solved"},
        {"owner"},
        True,
    ),
    ("dispute", CaseState.FEEDBACK_GIVEN, {"reason": "没有解决"}, {"owner"}, True),
    ("withdraw", CaseState.COORDINATING, {}, {"owner"}, True),
    ("escalate", CaseState.COORDINATING, {"reason": "manual"}, {"handler", "supervisor"}, True),
    ("transfer", CaseState.COORDINATING, "to:baiyun", {"handler", "supervisor"}, True),
    ("delegate", CaseState.COORDINATING, "to:haizhu_branch", {"handler", "supervisor"}, True),
    ("reassign", CaseState.COORDINATING, "to:baiyun", {"supervisor"}, True),
    ("pull-up", CaseState.COORDINATING, {"reason": "督办"}, {"supervisor"}, True),
    ("assign", CaseState.COORDINATING, "assign", {"handler", "supervisor"}, True),
    # after the station's visit (case_in verifies at tree.station): only the youth rates it
    ("rate-visit", CaseState.COORDINATING, {"stars": 4}, {"owner"}, True),
    ("comment", CaseState.COORDINATING, {"body": "备注"}, {"owner", "handler", "supervisor"}, True),
    ("refer", CaseState.COORDINATING, "refer", {"handler", "supervisor"}, True),
]


def _body(tree, spec) -> dict:
    if spec == "assign":
        return {"to_user": member(tree.haizhu, "handler", "haizhu_handler2").pk}
    if spec == "refer":
        return {"partner": tree.partner.pk, "instructions": "请协助"}
    if isinstance(spec, str) and spec.startswith("to:"):
        return {"to_org": getattr(tree, spec[3:]).pk, "reason": "更合适"}
    return dict(spec)


def _fresh(tree, state, task):
    return case_with_task(tree, state) if task else case_in(tree, state)


def _post(user, case, endpoint, body):
    return client_for(user).post(
        f"/api/cases/{case.reference}/{endpoint}/",
        body,
        format="json",
        HTTP_IF_MATCH=f'"{case.version}"',
    )


@pytest.mark.parametrize(
    ("endpoint", "state", "spec", "allowed", "task"), ACTIONS, ids=[a[0] for a in ACTIONS]
)
def test_case_action_matrix(tree, people, endpoint, state, spec, allowed, task):
    body = _body(tree, spec)
    sees = SEES_CASE_WITH_TASK if task else SEES_CASE_WITHOUT_TASK
    # refused cells first, all on one case that must not change
    case = _fresh(tree, state, task)
    before = snapshot(case)
    for role, user in people.items():
        if role in allowed:
            continue
        response = _post(user, case, endpoint, body)
        expected = 401 if user is None else 403 if role in sees else 404
        assert response.status_code == expected, (role, response.json())
        assert set(response.json()) == {"code", "message", "field_errors"}
        assert snapshot(case) == before, role
    # allowed cells, each on a fresh case
    for role in sorted(allowed):
        case = _fresh(tree, state, task)
        response = _post(people[role], case, endpoint, body)
        assert response.status_code in (200, 201), (role, response.json())
        assert Case.objects.get(pk=case.pk).version > case.version, role


@pytest.mark.parametrize("endpoint", ["complete", "waive"])
def test_coordination_task_matrix(tree, people, endpoint):
    allowed = {"complete": {"handler", "supervisor", "partner_with_task"}}.get(
        endpoint, {"handler", "supervisor"}
    )
    body = {"result": "已与学校沟通"} if endpoint == "complete" else {"reason": "不再需要"}

    def fresh():
        case = case_with_task(tree, CaseState.COORDINATING)
        return case, CoordinationTask.objects.get(case=case)

    case, task = fresh()
    before = snapshot(case)
    for role, user in people.items():
        if role in allowed:
            continue
        response = client_for(user).post(
            f"/api/tasks/{task.pk}/{endpoint}/", {**body, "version": case.version}, format="json"
        )
        sees_task = role in {"handler", "supervisor", "partner_with_task"}
        expected = 401 if user is None else 403 if sees_task else 404
        assert response.status_code == expected, (role, response.json())
        assert snapshot(case) == before, role
    for role in sorted(allowed):
        case, task = fresh()
        response = client_for(people[role]).post(
            f"/api/tasks/{task.pk}/{endpoint}/", {**body, "version": case.version}, format="json"
        )
        assert response.status_code == 200, (role, response.json())


def test_submit_is_for_signed_in_people_only(tree, people):
    body = {"category": "study", "region_code": "440105", "title": "求助", "description": "内容"}
    assert client_for(None).post("/api/cases/", body, format="json").status_code == 401
    response = client_for(tree.youth).post("/api/cases/", body, format="json")
    assert response.status_code == 201
    assert Case.objects.get(reference=response.json()["reference"]).youth == tree.youth


@pytest.mark.parametrize(
    "field", ["state", "org", "organisation", "assignee", "version", "owner", "youth"]
)
def test_fields_a_caller_may_not_set_are_refused(tree, field):
    client = client_for(tree.youth)
    body = {"category": "study", "region_code": "440105", "title": "求助", "description": "内容"}
    response = client.post("/api/cases/", {**body, field: 1}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["field_errors"]
    assert not Case.objects.exists()


@pytest.mark.parametrize("field", ["state", "org", "assignee", "owner", "youth"])
def test_actions_refuse_fields_a_caller_may_not_set(tree, field):
    case = case_in(tree, CaseState.SUBMITTED)
    before = snapshot(case)
    response = _post(tree.handler, case, "accept", {field: "closed"})
    assert response.status_code == 400
    assert field in response.json()["field_errors"]
    assert snapshot(case) == before


@pytest.mark.postgres
def test_matrix_runs_on_postgresql(tree, people):
    """The same agreement on PostgreSQL (CI): path prefixes and subqueries behave alike."""
    test_scoping_and_object_checks_agree_for_every_caller(tree, people)
    test_case_reads(tree, people)


# --- evidence, complaints, reports, supervision ------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _refused(role, user, sees) -> int:
    """The status of a refused cell: 401 anonymous, 403 sees the case, 404 otherwise."""
    return 401 if user is None else 403 if role in sees else 404


def _upload(user, case):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client_for(user).post(
        f"/api/cases/{case.reference}/evidence/",
        {"file": SimpleUploadedFile("scan.png", PNG, "image/png"), "version": case.version},
        format="multipart",
    )


def test_evidence_matrix(tree, people, settings, tmp_path):
    from casework.models import Evidence

    settings.MEDIA_ROOT = tmp_path / "media"
    allowed = {"handler", "supervisor"}
    case = case_with_task(tree, CaseState.COORDINATING)
    before = snapshot(case)
    for role, user in people.items():
        listing = client_for(user).get(f"/api/cases/{case.reference}/evidence/")
        # the list is for the staff of the case, exactly those who may upload
        assert listing.status_code == (
            200 if role in allowed else _refused(role, user, SEES_CASE_WITH_TASK)
        ), role
        if role in allowed:
            continue
        response = _upload(user, case)
        assert response.status_code == _refused(role, user, SEES_CASE_WITH_TASK), role
        assert set(response.json()) == {"code", "message", "field_errors"}
        assert snapshot(case) == before and not Evidence.objects.exists(), role
    for role in sorted(allowed):
        case = Case.objects.get(pk=case.pk)
        response = _upload(people[role], case)
        assert response.status_code == 201, (role, response.json())
        evidence_id = response.json()["id"]
        listed = client_for(people[role]).get(f"/api/cases/{case.reference}/evidence/").json()
        assert evidence_id in [e["id"] for e in listed]
        file = client_for(people[role]).get(
            f"/api/cases/{case.reference}/evidence/{evidence_id}/file/"
        )
        assert file.status_code == 200 and file["Content-Type"] == "image/png"
        assert b"".join(file.streaming_content) == PNG
    # the file of a case someone may not see: the same 404 as for a missing one
    other = client_for(people["sibling_handler"]).get(
        f"/api/cases/{case.reference}/evidence/{evidence_id}/file/"
    )
    assert other.status_code == 404


def test_complaint_matrix(tree, people):
    from casework.models import Complaint

    case = case_with_task(tree, CaseState.COORDINATING)
    url = f"/api/cases/{case.reference}/complaints/"
    for role, user in people.items():
        reading = client_for(user).get(url)
        readers = {"owner", "handler", "supervisor"}
        assert reading.status_code == (
            200 if role in readers else _refused(role, user, SEES_CASE_WITH_TASK)
        ), role
        if role == "owner":
            continue
        response = client_for(user).post(url, {"body": "处理太慢"}, format="json")
        assert response.status_code == _refused(role, user, SEES_CASE_WITH_TASK), role
    assert not Complaint.objects.exists()
    created = client_for(tree.youth).post(url, {"body": "处理太慢"}, format="json")
    assert created.status_code == 201
    complaint_id = created.json()["id"]

    # answering: only a supervisor above; the list and the answer endpoint agree
    answerable = {"supervisor"}
    sees_complaint = {"owner", "supervisor"}
    for role, user in people.items():
        listed = client_for(user).get("/api/complaints/")
        if user is None:
            assert listed.status_code == 401
        else:
            ids = [c["id"] for c in listed.json()["results"]]
            assert (complaint_id in ids) is (role in sees_complaint), role
        if role in answerable:
            continue
        response = client_for(user).post(
            f"/api/complaints/{complaint_id}/answer/", {"answer": "已督办"}, format="json"
        )
        assert response.status_code == _refused(role, user, sees_complaint), role
        assert Complaint.objects.get(pk=complaint_id).status == Complaint.Status.OPEN
    answered = client_for(people["supervisor"]).post(
        f"/api/complaints/{complaint_id}/answer/", {"answer": "已督办"}, format="json"
    )
    assert answered.status_code == 200
    assert answered.json()["status"] == "answered"


@pytest.mark.parametrize("public", [True, False], ids=["public", "private"])
def test_report_matrix(tree, people, settings, public):
    from casework.models import Report

    settings.CASEWORK_REPORTS_TO_HIDE = 100  # every reporter here, none hides it midway
    case = case_with_task(tree, CaseState.COORDINATING)
    Case.objects.filter(pk=case.pk).update(is_public=public)
    # anyone signed in may report a public case; a private one only those who see it;
    # never the youth who asked for help (they complain instead)
    signed_in = {role for role, user in people.items() if user is not None}
    allowed = (signed_in if public else SEES_CASE_WITH_TASK) - {"owner"}
    for role, user in people.items():
        response = client_for(user).post(
            f"/api/cases/{case.reference}/report/", {"kind": "fake"}, format="json"
        )
        if role in allowed:
            assert response.status_code == 201, (role, response.json())
        else:
            sees = signed_in if public else SEES_CASE_WITH_TASK
            assert response.status_code == _refused(role, user, sees), role
    assert Report.objects.filter(case=case).count() == len(allowed)


def test_review_matrix(tree, people):
    case = case_with_task(tree, CaseState.COORDINATING)
    for username in ("r1", "r2", "r3"):
        services.report_submit(
            case=case, actor=member(tree.baiyun, "handler", username), kind="fake"
        )
    assert Case.objects.get(pk=case.pk).hidden_from_public
    reports = f"/api/cases/{case.reference}/reports/"
    for role, user in people.items():
        listing = client_for(user).get(reports)
        staff = {"handler", "supervisor"}
        assert listing.status_code == (
            200 if role in staff else _refused(role, user, SEES_CASE_WITH_TASK)
        ), role
        if role == "supervisor":
            continue
        response = client_for(user).post(
            f"/api/cases/{case.reference}/review/", {"decision": "restore"}, format="json"
        )
        assert response.status_code == _refused(role, user, SEES_CASE_WITH_TASK), role
        assert Case.objects.get(pk=case.pk).hidden_from_public, role
    decided = client_for(people["supervisor"]).post(
        f"/api/cases/{case.reference}/review/",
        {"decision": "restore", "note": "核实无误"},
        format="json",
    )
    assert decided.status_code == 200, decided.json()
    assert decided.json()["reports"] == 3 and decided.json()["hidden_from_public"] is False
    assert not Case.objects.get(pk=case.pk).hidden_from_public


@pytest.mark.parametrize(
    "path",
    ["supervisor/dashboard/", "supervisor/export/cases.csv", "supervisor/export/timelines.csv"],
)
def test_supervision_matrix(tree, people, path):
    case = case_with_task(tree, CaseState.COORDINATING)
    rollup = refresh_dashboard_rollup()  # the dashboard's counts are as of the last rebuild
    for role, user in people.items():
        response = client_for(user).get(f"/api/{path}")
        if role == "supervisor":
            assert response.status_code == 200
            if path.endswith("/"):
                figures = response.json()
                assert figures["org"]["id"] == tree.city.pk and figures["open_total"] == 1
                assert parse_datetime(figures["as_of"]) == rollup.as_of
            else:
                assert response["Content-Type"].startswith("text/csv")
                assert case.reference in b"".join(response.streaming_content).decode()
        else:
            assert response.status_code == (401 if user is None else 403), role
            assert set(response.json()) == {"code", "message", "field_errors"}


# --- intake endpoints ---------------------------------------------------------------------

INTAKE = {
    "channel": "phone",
    "youth_name": "小周",
    "youth_phone": "13700003333",
    "birth_date": "2006-01-02",
    "consent_by": "youth",
    "category": "study",
    "region_code": "440105",
    "title": "电话求助",
    "description": "12355 来电",
}


def test_intake_matrix(tree, people, settings):
    """Staff of league committees and stations enter cases; youth and partner bodies do not;
    anonymous callers and people's tokens never reach the hand-off endpoint."""
    from django.core.cache import caches

    settings.API_THROTTLE_RATES = {scope: "1000/minute" for scope in settings.API_THROTTLE_RATES}
    caches["throttle"].clear()
    allowed = {"handler", "sibling_handler", "supervisor", "child_member"}
    for role, user in people.items():
        response = client_for(user).post("/api/intake/cases/", INTAKE, format="json")
        expected = 401 if user is None else 201 if role in allowed else 403
        assert response.status_code == expected, (role, response.json())
        handoff = client_for(user).post(
            "/api/intake/handoffs/", {"external_id": "x-1"}, format="json"
        )
        # a person, signed in or not, is not a hand-off service
        assert handoff.status_code in (401, 403), role
        claim = client_for(user).post(
            "/api/claims/", {"reference": "YV-NOTHERE", "code": "12345678"}, format="json"
        )
        assert claim.status_code == (
            401 if user is None else 403 if role in allowed or role.startswith("partner") else 400
        ), role
    assert Case.objects.filter(channel="phone").count() == len(allowed)
