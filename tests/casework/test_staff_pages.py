"""The workbench case page: who sees it, which actions it offers, and each action's form."""

import hashlib
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from casework import services
from casework.events import EventKind
from casework.models import Case, CaseEvent, CoordinationTask, Evidence, User
from casework.services.evidence import evidence_add, sniff_content_type
from casework.states import CaseState
from casework.views.staff import CONFLICT_MESSAGE, available_actions, sla_badge
from tests.casework.steps import DESCRIPTION, case_in, kinds, snapshot, submit

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"0" * 64


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def page(case) -> str:
    return reverse("casework:staff_case", args=[case.reference])


def act(case, action) -> str:
    return reverse("casework:staff_action", args=[case.reference, action])


def fresh(case) -> Case:
    return Case.objects.get(pk=case.pk)


def names(case, user) -> list[str]:
    case = Case.objects.select_related("org").get(pk=case.pk)
    return [a.name for a in available_actions(case, User.objects.get(pk=user.pk))]


def post(client, user, case, action, **fields):
    client.force_login(user)
    data = {f"{action}-version": fresh(case).version}
    data.update({f"{action}-{key}": value for key, value in fields.items()})
    return client.post(act(case, action), data)


# --- who sees the page ----------------------------------------------------------------


def test_staff_of_the_case_see_the_page_and_nobody_else_learns_it_exists(client, tree):
    case = submit(tree)
    for insider in (tree.handler, tree.city_supervisor, tree.province_supervisor):
        client.force_login(insider)
        response = client.get(page(case))
        assert response.status_code == 200, insider
        assert DESCRIPTION in response.content.decode()
    for outsider in (
        tree.youth,  # reads the case in the youth portal, not here
        tree.other_youth,
        tree.baiyun_handler,
        tree.branch_handler,
        tree.partner_staff,
        tree.verifier,  # not yet sent to the station
    ):
        client.force_login(outsider)
        assert client.get(page(case)).status_code == 404, outsider
    client.logout()
    assert client.get(page(case)).status_code == 302


def test_unknown_reference_is_a_404(client, tree):
    client.force_login(tree.handler)
    assert client.get(reverse("casework:staff_case", args=["YV-NOPE"])).status_code == 404


# --- only the actions the state machine allows this person now ----------------------------


def test_the_page_offers_what_the_state_machine_allows_each_person(client, tree):
    case = submit(tree)
    handler_actions = names(case, tree.handler)
    assert {"accept", "reject", "escalate", "transfer", "delegate", "assign"} <= set(
        handler_actions
    )
    assert not {"record", "resolve", "give_feedback", "refer", "reassign", "pull_up"} & set(
        handler_actions
    )
    supervisor_actions = names(case, tree.city_supervisor)
    assert {"accept", "reassign", "pull_up"} <= set(supervisor_actions)

    verifying = case_in(tree, CaseState.VERIFYING)
    assert set(names(verifying, tree.verifier)) == {"record", "request_info", "reject", "evidence"}
    assert "schedule" not in names(verifying, tree.handler)

    coordinating = case_in(tree, CaseState.COORDINATING)
    assert {"resolve", "refer", "request_info"} <= set(names(coordinating, tree.handler))
    services.case_refer(
        case=coordinating, actor=tree.handler, partner=tree.partner, instructions="请协助"
    )
    # a required referral is open: the FSM condition hides "resolve"
    assert "resolve" not in names(coordinating, tree.handler)

    closed = case_in(tree, CaseState.CLOSED)
    assert names(closed, tree.handler) == []

    client.force_login(tree.handler)
    body = client.get(page(case)).content.decode()
    assert act(case, "accept") in body and act(case, "resolve") not in body


def test_accept_through_its_own_form(client, tree):
    case = submit(tree)
    response = post(client, tree.handler, case, "accept")
    assert response.status_code == 302 and response["Location"] == page(case)
    assert fresh(case).state == CaseState.ACCEPTED
    assert kinds(case)[-1] == EventKind.ACCEPTED


def test_a_form_error_shows_on_the_form_and_changes_nothing(client, tree):
    case = submit(tree)
    before = snapshot(case)
    response = post(client, tree.handler, case, "reject", reason="")
    assert response.status_code == 400
    assert 'id="action-reject" open' in response.content.decode()
    response = post(client, tree.handler, case, "reject", reason="not-a-reason")
    assert response.status_code == 400
    assert snapshot(case) == before


def test_a_stale_version_is_a_clear_conflict_and_the_form_is_kept(client, tree):
    case = submit(tree)
    seen = case.version
    services.case_comment(case=case, actor=tree.city_supervisor, body="先看一下")
    before = snapshot(case)
    client.force_login(tree.handler)
    response = client.post(
        act(case, "reject"),
        {"reject-version": seen, "reject-reason": "duplicate", "reject-note": "重复"},
    )
    assert response.status_code == 409
    body = response.content.decode()
    assert response.context["alert"] == CONFLICT_MESSAGE
    assert str(CONFLICT_MESSAGE) in body
    # the re-shown form carries the current version and the typed note
    assert f'value="{fresh(case).version}"' in body and "重复" in body
    assert snapshot(case) == before


def test_malformed_input_never_raises(client, tree):
    case = case_in(tree, CaseState.COORDINATING)
    client.force_login(tree.handler)
    bad = [
        ("refer", {"refer-version": "abc", "refer-partner": "1", "refer-instructions": "x"}),
        (
            "refer",
            {"refer-version": case.version, "refer-partner": "999999", "refer-instructions": "x"},
        ),
        (
            "refer",
            {
                "refer-version": case.version,
                "refer-partner": tree.partner.pk,
                "refer-instructions": "x",
                "refer-due_at": "not a date",
            },
        ),
        (
            "refer",
            {
                "refer-version": case.version,
                "refer-partner": tree.partner.pk,
                "refer-instructions": "x",
                "refer-due_at": "2001-01-01 10:00",  # the service: must be in the future
            },
        ),
        ("resolve", {"resolve-version": "-1", "resolve-outcome": "solved", "resolve-note": "x"}),
        ("resolve", {"resolve-version": case.version, "resolve-outcome": "nope"}),
        ("transfer", {"transfer-version": case.version, "transfer-to_org": "x" * 50}),
        ("escalate", {"escalate-version": case.version, "escalate-reason": "sla_breach"}),
        ("assign", {"assign-version": case.version, "assign-assignee": tree.youth.pk}),
    ]
    before = snapshot(case)
    for action, data in bad:
        response = client.post(act(case, action), data)
        assert response.status_code == 400, (action, data)
    assert snapshot(case) == before


def test_an_action_not_open_now_or_unknown_is_refused(client, tree):
    case = submit(tree)
    before = snapshot(case)
    response = post(client, tree.handler, case, "resolve", outcome="solved", note="x")
    assert response.status_code == 409
    assert post(client, tree.handler, case, "explode").status_code == 404
    assert client.get(act(case, "accept")).status_code == 405
    # someone without a role on the case learns nothing
    assert post(client, tree.baiyun_handler, case, "accept").status_code == 404
    assert post(client, tree.youth, case, "accept").status_code == 404
    assert snapshot(case) == before


# --- routing: escalate, transfer, delegate, assign; reassign and pull up ---------------------


def test_escalate_with_a_reason(client, tree):
    case = submit(tree)
    response = post(client, tree.handler, case, "escalate", reason="manual", note="")
    assert response.status_code == 400  # a reason in words is required
    response = post(
        client, tree.handler, case, "escalate", reason="beyond_capacity", note="超出权限"
    )
    # the handler no longer holds the case: back to the inbox
    assert response.status_code == 302 and response["Location"] == reverse("workflows:inbox")
    case = fresh(case)
    assert case.org == tree.city and case.escalation_count == 1
    event = CaseEvent.objects.filter(case=case).order_by("-seq").first()
    assert event.kind == EventKind.ESCALATED and event.payload["reason"] == "beyond_capacity"
    assert "超出权限" not in str(event.payload)  # the words are an internal message


def test_transfer_only_to_a_sibling_and_delegate_only_down(client, tree):
    case = submit(tree)
    response = post(client, tree.handler, case, "transfer", to_org=tree.province.pk, reason="x")
    assert response.status_code == 400
    response = post(client, tree.handler, case, "transfer", to_org=tree.baiyun.pk, reason="")
    assert response.status_code == 400
    response = post(client, tree.handler, case, "transfer", to_org=tree.baiyun.pk, reason="属地")
    assert response.status_code == 302 and fresh(case).org == tree.baiyun

    other = submit(tree)
    response = post(client, tree.handler, other, "delegate", to_org=tree.baiyun.pk, reason="x")
    assert response.status_code == 400
    response = post(
        client, tree.handler, other, "delegate", to_org=tree.haizhu_branch.pk, reason="就近"
    )
    assert response.status_code == 302 and fresh(other).org == tree.haizhu_branch


def test_assign_a_handler(client, tree):
    case = submit(tree)
    response = post(client, tree.handler, case, "assign", assignee=tree.baiyun_handler.pk)
    assert response.status_code == 400
    response = post(client, tree.handler, case, "assign", assignee=tree.handler.pk)
    assert response.status_code == 302 and fresh(case).assignee == tree.handler


def test_supervisors_reassign_and_pull_up(client, tree):
    case = submit(tree)
    # a handler is not offered either action, and posting it is refused
    assert (
        post(client, tree.handler, case, "reassign", to_org=tree.baiyun.pk, reason="x").status_code
        == 409
    )
    response = post(
        client, tree.city_supervisor, case, "reassign", to_org=tree.other_city.pk, reason="x"
    )
    assert response.status_code == 400  # not in the supervisor's subtree
    response = post(
        client, tree.city_supervisor, case, "reassign", to_org=tree.baiyun.pk, reason="平衡工作量"
    )
    assert response.status_code == 302 and fresh(case).org == tree.baiyun
    assert kinds(case)[-1] == EventKind.REASSIGNED

    response = post(client, tree.province_supervisor, case, "pull_up", reason="")
    assert response.status_code == 400
    response = post(client, tree.province_supervisor, case, "pull_up", reason="督办")
    assert response.status_code == 302 and fresh(case).org == tree.province


# --- the main line through the page -------------------------------------------------------


def test_every_step_through_the_case_page(client, tree):
    case = submit(tree)
    assert post(client, tree.handler, case, "accept").status_code == 302
    assert post(client, tree.handler, case, "schedule", station=tree.station.pk).status_code == 302
    response = post(client, tree.verifier, case, "record", confirmed="yes", findings="属实")
    assert response.status_code == 302
    assert (
        post(
            client,
            tree.handler,
            case,
            "refer",
            partner=tree.partner.pk,
            instructions="请协助",
            required="on",
        ).status_code
        == 302
    )
    task = CoordinationTask.objects.get(case=case)
    client.force_login(tree.handler)
    response = client.post(
        reverse("casework:coordination_action", args=[task.pk, "waive"]),
        {f"waive-{task.pk}-version": fresh(case).version, f"waive-{task.pk}-reason": "已不需要"},
    )
    assert response.status_code == 302
    assert (
        post(client, tree.handler, case, "resolve", outcome="solved", note="已解决").status_code
        == 302
    )
    assert post(client, tree.handler, case, "give_feedback", message="已解决").status_code == 302
    assert fresh(case).state == CaseState.FEEDBACK_GIVEN


# --- coordination tasks for partner bodies ---------------------------------------------------


def test_partners_see_only_their_task_and_complete_it(client, tree):
    case = case_in(tree, CaseState.COORDINATING)
    task = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="请联系学校了解情况"
    )
    client.force_login(tree.partner_staff)
    body = client.get(reverse("casework:coordination_list")).content.decode()
    assert "请联系学校了解情况" in body and case.reference in body
    assert DESCRIPTION not in body and case.title not in body and tree.youth.username not in body
    assert client.get(page(case)).status_code == 404

    url = reverse("casework:coordination_action", args=[task.pk, "complete"])
    prefix = f"complete-{task.pk}"
    # no result: refused with a message on the list, nothing changes
    response = client.post(url, {f"{prefix}-version": fresh(case).version, f"{prefix}-result": ""})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == CoordinationTask.Status.OPEN
    # a stale version: refused
    response = client.post(url, {f"{prefix}-version": 0, f"{prefix}-result": "已完成"})
    task.refresh_from_db()
    assert task.status == CoordinationTask.Status.OPEN
    # a partner may not waive
    response = client.post(
        reverse("casework:coordination_action", args=[task.pk, "waive"]),
        {f"waive-{task.pk}-version": fresh(case).version, f"waive-{task.pk}-reason": "x"},
    )
    assert response.status_code == 403
    # done
    response = client.post(
        url, {f"{prefix}-version": fresh(case).version, f"{prefix}-result": "已与学校沟通"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("casework:coordination_list")
    task.refresh_from_db()
    assert task.status == CoordinationTask.Status.DONE

    # another partner body's staff see nothing and may do nothing
    client.force_login(tree.baiyun_handler)
    assert client.get(reverse("casework:coordination_list")).context["rows"] == []
    assert client.post(url, {}).status_code == 404


# --- evidence ---------------------------------------------------------------------------------


def upload(name, content, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_sniffing_reads_the_bytes_not_the_name():
    assert sniff_content_type(PNG) == "image/png"
    assert sniff_content_type(JPEG) == "image/jpeg"
    assert sniff_content_type(PDF) == "application/pdf"
    assert sniff_content_type(b"GIF89a") is None
    assert sniff_content_type(b"") is None


def test_evidence_upload_and_download(client, tree, media):
    case = case_in(tree, CaseState.VERIFYING)
    client.force_login(tree.verifier)
    response = client.post(
        act(case, "evidence"),
        {"evidence-version": fresh(case).version, "evidence-file": upload("现场照片.PNG", PNG)},
    )
    assert response.status_code == 302
    evidence = Evidence.objects.get(case=case)
    assert evidence.content_type == "image/png" and evidence.size == len(PNG)
    assert evidence.sha256 == hashlib.sha256(PNG).hexdigest()
    assert "现场照片" not in evidence.file.name  # the uploader's file name is not kept
    assert (media / evidence.file.name).exists()
    event = CaseEvent.objects.filter(case=case).order_by("-seq").first()
    assert event.kind == EventKind.EVIDENCE_ADDED
    assert event.payload == {
        "evidence": evidence.pk,
        "sha256": evidence.sha256,
        "content_type": "image/png",
    }

    url = reverse("casework:evidence_file", args=[evidence.pk])
    for insider in (tree.verifier, tree.handler, tree.city_supervisor):
        client.force_login(insider)
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert b"".join(response.streaming_content) == PNG
    for outsider in (tree.youth, tree.partner_staff, tree.baiyun_handler, tree.other_youth):
        client.force_login(outsider)
        assert client.get(url).status_code == 404
    assert client.get(reverse("casework:evidence_file", args=[999999])).status_code == 404


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("letter.pdf", b"plain text pretending to be a pdf"),
        ("photo.png", JPEG),  # a real JPEG under a PNG name
        ("script.html", b"<html><script>alert(1)</script>"),
        ("photo.gif", b"GIF89a" + b"\x00" * 20),
        ("noextension", PNG),
        ("empty.png", b""),
    ],
)
def test_evidence_of_the_wrong_type_is_refused(client, tree, name, content):
    case = case_in(tree, CaseState.VERIFYING)
    before = snapshot(case)
    client.force_login(tree.verifier)
    response = client.post(
        act(case, "evidence"),
        {"evidence-version": case.version, "evidence-file": upload(name, content)},
    )
    assert response.status_code == 400
    assert not Evidence.objects.exists()
    assert snapshot(case) == before


def test_evidence_too_large_is_refused(client, tree, settings):
    settings.CASEWORK_EVIDENCE_MAX_BYTES = 1024
    case = case_in(tree, CaseState.VERIFYING)
    client.force_login(tree.verifier)
    response = client.post(
        act(case, "evidence"),
        {"evidence-version": case.version, "evidence-file": upload("big.pdf", PDF + b"0" * 2000)},
    )
    assert response.status_code == 400
    form = dict((a.name, f) for a, f in response.context["actions"])["evidence"]
    assert list(form.errors) == ["file"]
    assert not Evidence.objects.exists()
    # exactly at the limit is fine
    response = client.post(
        act(case, "evidence"),
        {
            "evidence-version": case.version,
            "evidence-file": upload("ok.pdf", PDF.ljust(1024, b"0")),
        },
    )
    assert response.status_code == 302


def test_evidence_service_checks_the_actor_and_the_state(tree):
    from casework.errors import InvalidTransition, NotPermitted

    case = case_in(tree, CaseState.VERIFYING)
    with pytest.raises(NotPermitted):
        evidence_add(case=case, actor=tree.partner_staff, file=upload("a.jpg", JPEG))
    closed = case_in(tree, CaseState.CLOSED)
    with pytest.raises(InvalidTransition):
        evidence_add(case=closed, actor=tree.handler, file=upload("a.jpg", JPEG))
    assert not Evidence.objects.exists()
    evidence = evidence_add(case=case, actor=tree.handler, file=upload("a.jpeg", JPEG))
    assert evidence.content_type == "image/jpeg"
    assert io.BytesIO(evidence.file.read()).getvalue() == JPEG


# --- SLA badges ---------------------------------------------------------------------------------


def test_sla_badge_says_in_words_what_the_colour_says():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 5, 4, 10, tzinfo=UTC)
    assert sla_badge(None, now) is None
    overdue = sla_badge(now - timedelta(hours=3), now)
    assert overdue.level == "overdue" and "3" in overdue.text and overdue.css == "badge--bad"
    soon = sla_badge(now + timedelta(hours=2), now)
    assert soon.level == "soon" and "2" in soon.text
    later = sla_badge(now + timedelta(days=3), now)
    assert later.level == "ok" and "3" in later.text


@pytest.mark.parametrize(
    "value", ["99999999999999999999", "-1", "", "\x00", "x" * 6000, "2026-13-45 99:99", "１２"]
)
def test_no_action_fails_on_odd_input(client, tree, value):
    from casework.views.staff import ACTIONS

    case = case_in(tree, CaseState.COORDINATING)
    task = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="请协助"
    )
    case = Case.objects.get(pk=case.pk)
    client.force_login(tree.city_supervisor)
    for action in ACTIONS:
        form = action.form_class(case=case, user=tree.city_supervisor)
        data = {f"{action.name}-{name}": value for name in form.fields}
        data[f"{action.name}-version"] = Case.objects.get(pk=case.pk).version
        response = client.post(act(case, action.name), data)
        assert response.status_code in (302, 400, 409), (action.name, response.status_code)
    for name in ("complete", "waive"):
        prefix = f"{name}-{task.pk}"
        response = client.post(
            reverse("casework:coordination_action", args=[task.pk, name]),
            {f"{prefix}-version": value, f"{prefix}-result": value, f"{prefix}-reason": value},
        )
        assert response.status_code in (302, 400, 409)
    huge = reverse("casework:coordination_action", args=[99999999999999999999, "complete"])
    assert client.post(huge, {}).status_code == 404
    assert (
        client.get(reverse("casework:evidence_file", args=[99999999999999999999])).status_code
        == 404
    )


def test_the_timeline_lists_every_event_in_order_with_names_escaped(client, tree):
    case = case_in(tree, CaseState.COORDINATING)
    tree.handler.display_name = '<b onmouseover="x">林</b>'
    tree.handler.save()
    case.org.name = "海珠区 & <团委>"
    case.org.save()
    services.case_refer(
        case=fresh(case), actor=tree.handler, partner=tree.partner, instructions="请协助"
    )
    client.force_login(tree.handler)
    html = client.get(page(case)).content.decode()
    start = html.index('<ol class="timeline">')
    timeline = html[start : html.index("</ol>", start)]
    items = timeline.count("<li><time datetime=")
    assert items == CaseEvent.objects.filter(case=case).count() >= 5
    stamps = re.findall(r'<time datetime="([^"]+)">', timeline)
    assert stamps == sorted(stamps) and len(stamps) == items
    assert "&lt;b onmouseover=&quot;x&quot;&gt;林&lt;/b&gt;" in timeline
    assert "海珠区 &amp; &lt;团委&gt;" in timeline
    assert "<b onmouseover" not in html and "<团委>" not in html
