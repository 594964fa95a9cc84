"""The workbench case page's reads (casework.selectors.staff_case and its lists).

On PostgreSQL the page reads through statements compiled once per process; the ORM
reads the same rows elsewhere. The page must show the same thing either way, log the
same access, and read as many statements for a long case as for a short one.
"""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from casework import selectors, services
from casework.models import AccessLog, Case
from casework.services.evidence import evidence_add
from casework.states import CaseState
from tests.casework.stations_steps import book, station_profile, visiting_case
from tests.casework.steps import case_in

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def page(case) -> str:
    return reverse("casework:staff_case", args=[case.reference])


def without_tokens(html: str) -> str:
    return re.sub(r'value="[A-Za-z0-9]{64}"', "", html)


def rich_case(tree) -> Case:
    """A case with something in every list of the page: a visit, a verification, evidence,
    a question and its answer, an internal note and two coordination tasks (one open)."""
    station_profile(tree.station)
    case = visiting_case(tree)
    book(tree, case)
    evidence_add(
        case=case.pk, actor=tree.verifier, file=SimpleUploadedFile("a.png", PNG, "image/png")
    )
    services.case_record_verification(
        case=case.pk, actor=tree.verifier, confirmed=True, findings="情况属实\n第二行 <b>"
    )
    services.case_request_info(case=case.pk, actor=tree.handler, question="什么时候方便？")
    services.case_provide_info(case=case.pk, actor=tree.youth, answer="周末 & 晚上")
    services.case_comment(case=case.pk, actor=tree.handler, body="内部备注")
    done = services.case_refer(
        case=case.pk, actor=tree.handler, partner=tree.partner, instructions="请协助 <i>"
    )
    services.coordination_complete(task=done.pk, actor=tree.partner_staff, result="已完成")
    services.case_refer(
        case=case.pk, actor=tree.handler, partner=tree.partner, instructions="再协助"
    )
    tree.handler.display_name = "刘 <老师>"
    tree.handler.save()
    return Case.objects.get(pk=case.pk)


def render(client, user, case, *, compiled: bool, monkeypatch) -> tuple[str, AccessLog]:
    monkeypatch.setattr(selectors, "compiled_reads", lambda connection: compiled)
    client.force_login(user)
    response = client.get(page(case))
    assert response.status_code == 200
    entry = AccessLog.objects.filter(actor=user).latest("pk")
    return without_tokens(response.content.decode()), entry


@pytest.mark.parametrize("who", ["handler", "verifier", "city_supervisor"])
def test_the_page_and_its_access_log_are_the_same_through_the_compiled_reads_and_the_orm(
    client, tree, monkeypatch, who
):
    case = rich_case(tree)
    user = getattr(tree, who)
    compiled_html, compiled_log = render(client, user, case, compiled=True, monkeypatch=monkeypatch)
    orm_html, orm_log = render(client, user, case, compiled=False, monkeypatch=monkeypatch)
    assert compiled_html == orm_html
    for text in ("情况属实<br>第二行 &lt;b&gt;", "周末 &amp; 晚上", "内部备注", "请协助 &lt;i&gt;"):
        assert text in compiled_html
    assert "刘 &lt;老师&gt;" in compiled_html and "<老师>" not in compiled_html
    assert compiled_html.count("/work/evidence/") == 1
    fields = ("actor_id", "case_id", "org_id", "purpose", "task_id", "fields")
    assert [getattr(compiled_log, f) for f in fields] == [getattr(orm_log, f) for f in fields]


def test_the_access_log_names_the_task_held_or_the_role(client, tree):
    case = case_in(tree, CaseState.COORDINATING)
    expected = {
        tree.handler: ("task:coordination", tree.haizhu),
        tree.city_supervisor: ("supervision", tree.city),
        tree.province_handler: None,  # may not see the page: nothing is logged
    }
    for user, want in expected.items():
        client.force_login(user)
        response = client.get(page(case))
        entries = AccessLog.objects.filter(actor=user)
        if want is None:
            assert response.status_code == 404 and not entries.exists()
            continue
        entry = entries.get()
        assert (entry.purpose, entry.org) == want, user
        assert (entry.task is not None) == entry.purpose.startswith("task:")
        if entry.task is not None:
            assert entry.task.case_id == case.pk and entry.task.org_id == tree.haizhu.pk


def test_the_compiled_case_read_gives_what_the_orm_reads(tree):
    case = rich_case(tree)
    user = type(tree.handler).objects.get(pk=tree.handler.pk)
    compiled = selectors.staff_case(case.reference, user)
    plain = selectors.staff_case_queryset().get(pk=case.pk)
    for name in ("org", "category", "assignee", "station"):
        assert getattr(compiled, name) == getattr(plain, name)
    columns = [f.attname for f in Case._meta.concrete_fields]
    assert [getattr(compiled, c) for c in columns] == [getattr(plain, c) for c in columns]
    assert str(compiled.assignee) == "刘 <老师>"
    assert {(r.org_id, r.role) for r in user._casework_roles} == {(tree.haizhu.pk, "handler")}
    assert compiled.viewer_task.org_id == tree.haizhu.pk
    assert compiled.viewer_task.flow_task.name == "coordination"
    for name in selectors.STAFF_CASE_LISTS:
        rows = selectors.staff_case_list(compiled, name)
        expected = list(selectors._staff_case_lists()[name].filter(case_id=case.pk))
        assert rows == expected and rows, name
        assert [r.__dict__.keys() for r in rows] == [r.__dict__.keys() for r in expected]
    assert selectors.staff_case("YV-NOPE", user) is None


def test_the_page_reads_no_more_for_a_long_case_than_for_a_short_one(client, tree):
    short = case_in(tree, CaseState.COORDINATING)
    long = rich_case(tree)
    for n in range(40):
        services.case_comment(case=long.pk, actor=tree.handler, body=f"备注 {n}")
    client.force_login(tree.handler)
    counts = []
    for case in (short, long, short):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page(case)).status_code == 200
        counts.append(len(captured.captured_queries))
    # session, user, the case (memberships, task held, unread count), the access log, five
    # lists, the timeline, the partner bodies, the handlers and the sibling organisations
    # of the forms
    assert counts == [14, 14, 14]


def test_the_header_counts_the_unread_messages_read_with_the_case(client, tree, monkeypatch):
    from notifications.models import InboxItem

    case = case_in(tree, CaseState.COORDINATING)
    for n, read in enumerate((None, None, timezone.now())):
        InboxItem.objects.create(
            user=tree.handler, key=f"k{n}", kind="x", subject="s", body="b", read_at=read
        )
    InboxItem.objects.create(
        user=tree.city_supervisor, key="other", kind="x", subject="s", body="b"
    )
    badges = []
    for compiled in (True, False):
        html, _entry = render(
            client, tree.handler, case, compiled=compiled, monkeypatch=monkeypatch
        )
        badges.append(re.findall(r'<span class="badge badge--count"[^>]*>(\d+)</span>', html))
    assert badges == [["2"], ["2"]]


def test_the_prepared_access_log_insert_writes_what_the_orm_writes(tree):
    from django.db.models.signals import post_save

    from casework.services import privacy

    case = case_in(tree, CaseState.COORDINATING)
    entries = [privacy.record_personal_data_access(actor=tree.handler, case=case)]

    def listener(**kwargs):
        pass

    post_save.connect(listener, sender=AccessLog)  # a listener: the ORM's save writes
    try:
        entries.append(privacy.record_personal_data_access(actor=tree.handler, case=case))
    finally:
        post_save.disconnect(listener, sender=AccessLog)
    fields = ("actor_id", "case_id", "org_id", "purpose", "task_id", "fields")
    stored = [AccessLog.objects.get(pk=entry.pk) for entry in entries]
    assert [[getattr(e, f) for f in fields] for e in stored] == [
        [getattr(e, f) for f in fields] for e in entries
    ]
    assert stored[0].fields == stored[1].fields == ["youth", "case_text"]
    assert stored[0].purpose == stored[1].purpose == "task:coordination"
    assert stored[0].at == entries[0].at and stored[1].at == entries[1].at
    assert not entries[0]._state.adding and entries[0].pk != entries[1].pk
