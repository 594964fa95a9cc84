"""The API's evidence, complaint, report and supervision endpoints do what the pages do."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from casework.models import CaseEvent, Evidence
from casework.services.dashboard_rollup import refresh_dashboard_rollup
from casework.states import CaseState
from tests.casework.steps import case_in

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def upload(user, case, name, content, **extra):
    return api(user).post(
        f"/api/cases/{case.reference}/evidence/",
        {"file": SimpleUploadedFile(name, content), **extra},
        format="multipart",
    )


def test_evidence_upload_checks_the_file_like_the_page(tree, settings):
    case = case_in(tree, CaseState.COORDINATING)
    v = {"version": case.version}
    # the name says PDF but the bytes do not; an empty file; one over the limit
    settings.CASEWORK_EVIDENCE_MAX_BYTES = 1024
    for name, content in [("a.pdf", b"MZ\x90\x00" * 8), ("a.pdf", b""), ("a.pdf", PDF * 100)]:
        response = upload(tree.handler, case, name, content, **v)
        assert response.status_code == 400, name
        assert response.json()["code"] == "invalid"
        assert list(response.json()["field_errors"]) == ["file"]
    assert not Evidence.objects.exists()
    # JSON is not a file upload; no version is a 428
    json_post = api(tree.handler).post(
        f"/api/cases/{case.reference}/evidence/", {"version": case.version}, format="json"
    )
    assert json_post.status_code == 415
    assert upload(tree.handler, case, "a.pdf", PDF).status_code == 428
    # a good one: stored, on the timeline by hash, and the version moves on
    created = upload(tree.handler, case, "letter.pdf", PDF, **v)
    assert created.status_code == 201
    body = created.json()
    assert body["content_type"] == "application/pdf" and body["size"] == len(PDF)
    event = CaseEvent.objects.filter(case=case, kind="evidence_added").get()
    assert event.payload["sha256"] == body["sha256"]
    stale = upload(tree.handler, case, "letter.pdf", PDF, **v)
    assert stale.status_code == 409


def test_complaint_answer_reaches_the_youth(tree):
    case = case_in(tree, CaseState.COORDINATING)
    url = f"/api/cases/{case.reference}/complaints/"
    assert api(tree.youth).post(url, {"body": " "}, format="json").status_code == 400
    complaint = api(tree.youth).post(url, {"body": "三天没人回复"}, format="json").json()
    assert complaint["status"] == "open" and complaint["org"]["id"] == tree.haizhu.pk
    queue = api(tree.city_supervisor).get("/api/complaints/?status=open").json()["results"]
    assert [c["id"] for c in queue] == [complaint["id"]]
    answer = {"answer": "已督促海珠区团委今日回复"}
    done = api(tree.city_supervisor).post(
        f"/api/complaints/{complaint['id']}/answer/", answer, format="json"
    )
    assert done.status_code == 200
    again = api(tree.city_supervisor).post(
        f"/api/complaints/{complaint['id']}/answer/", answer, format="json"
    )
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"
    seen = api(tree.youth).get(url).json()
    assert seen[0]["answer"] == answer["answer"]
    assert not api(tree.city_supervisor).get("/api/complaints/?status=open").json()["results"]


def test_reports_hide_a_case_until_the_review(tree):
    from tests.conftest import member

    case = case_in(tree, CaseState.COORDINATING)
    reporters = [member(tree.baiyun, "handler", f"r{i}") for i in range(3)]
    for reporter in reporters:
        response = api(reporter).post(
            f"/api/cases/{case.reference}/report/", {"kind": "fake"}, format="json"
        )
        assert response.status_code == 201
        assert set(response.json()) == {"id", "kind", "created_at", "reviewed"}
    twice = api(reporters[0]).post(
        f"/api/cases/{case.reference}/report/", {"kind": "abusive"}, format="json"
    )
    assert twice.status_code == 400
    case.refresh_from_db()
    assert case.hidden_from_public
    listed = api(tree.handler).get(f"/api/cases/{case.reference}/reports/").json()
    assert [r["kind"] for r in listed] == ["fake"] * 3
    assert "reporter" not in listed[0]
    review = api(tree.city_supervisor).post(
        f"/api/cases/{case.reference}/review/", {"decision": "keep_hidden"}, format="json"
    )
    assert review.status_code == 200 and review.json()["hidden_from_public"] is True
    none_left = api(tree.city_supervisor).post(
        f"/api/cases/{case.reference}/review/", {"decision": "restore"}, format="json"
    )
    assert none_left.status_code == 200  # the case is still hidden: it may be restored
    assert none_left.json()["hidden_from_public"] is False


def test_dashboard_and_exports_match_the_pages(tree):
    case_in(tree, CaseState.COORDINATING)
    case_in(tree, CaseState.SUBMITTED)
    refresh_dashboard_rollup()  # the figures are as of the rollup's last refresh
    figures = api(tree.city_supervisor).get("/api/supervisor/dashboard/?weeks=4").json()
    assert figures["weeks"] == 4 and len(figures["week_starts"]) == len(
        figures["submitted_per_week"]
    )
    assert figures["open_total"] == 2
    assert {r["state"]: r["open"] for r in figures["open_by_state"] if r["open"]} == {
        "coordinating": 1,
        "submitted": 1,
    }
    page = Client()
    page.force_login(tree.city_supervisor)
    for name in ("cases", "timelines"):
        from_page = b"".join(page.get(f"/supervise/export/{name}.csv").streaming_content)
        response = api(tree.city_supervisor).get(f"/api/supervisor/export/{name}.csv")
        assert b"".join(response.streaming_content) == from_page
        assert response["Content-Disposition"].startswith("attachment;")
