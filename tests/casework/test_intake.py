"""Intake channels: staff-entered cases, claim codes, hand-offs and station-visit ratings."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from casework import services
from casework.errors import InvalidTransition, NotPermitted, ValidationFailed
from casework.models import (
    Case,
    CaseEvent,
    GuardianConsent,
    Handoff,
    Intake,
    IntakeService,
    ScoreState,
    VisitRating,
)
from casework.services import intake
from casework.services.scores import full_sums, org_key, stored_sums
from casework.states import CaseState
from notifications.models import Notification
from notifications.rendering import render
from tests.casework.steps import case_in, kinds
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADULT = date(2004, 5, 1)
CHILD = timezone.localdate() - timedelta(days=365 * 11)


def enter(tree, **kw):
    values = {
        "actor": tree.verifier,
        "desk": None,
        "channel": Case.Channel.WALK_IN,
        "youth_name": "小林",
        "youth_phone": "13800001111",
        "birth_date": ADULT,
        "consent_by": "youth",
        "category": tree.category("study"),
        "region_code": "440105",
        "title": "想咨询助学金",
        "description": "家里困难，想了解助学金怎么申请",
    }
    values.update(kw)
    return services.intake_enter(**values)


def code_of(case) -> str:
    """The code of the latest claim SMS, read the way the sender reads it."""
    row = Notification.objects.filter(case=case, kind="claim_code").order_by("-pk").first()
    return render(row, "en").body.split("code ")[1][: intake.CODE_DIGITS]


# --- staff-entered intake ----------------------------------------------------------------


def test_staff_enter_a_walk_in_case_that_routes_like_any_other(tree):
    case = enter(tree)
    assert case.channel == Case.Channel.WALK_IN
    assert case.org == tree.haizhu  # routed by region and category
    assert case.state == CaseState.SUBMITTED
    youth = case.youth
    assert youth.display_name == "小林" and youth.phone == "13800001111"
    assert not youth.has_usable_password()
    record = Intake.objects.get(case=case)
    assert record.entered_by == tree.verifier and record.desk == tree.station
    assert (record.consent_by, record.consent_method) == ("youth", "in_person")
    submitted = case.events.get(kind="submitted")
    assert submitted.actor == tree.verifier  # who entered it
    assert submitted.payload["channel"] == "walk_in"
    assert kinds(case)[:3] == ["submitted", "routed", "claim_code_sent"]
    # the code goes out by SMS to the number given; only its hash is stored
    sms = Notification.objects.get(case=case, kind="claim_code")
    assert sms.channel == "sms" and sms.recipient == youth
    code = code_of(case)
    assert code.isdigit() and code not in str(sms.context)
    assert code not in record.claim_code_hash and len(record.claim_code_hash) == 64


def test_phone_intake_records_consent_by_phone(tree):
    case = enter(tree, actor=tree.handler, channel=Case.Channel.PHONE)
    assert case.channel == "phone"
    assert Intake.objects.get(case=case).consent_method == "phone"


def test_under_fourteen_needs_the_guardians_consent(tree):
    with pytest.raises(ValidationFailed) as refused:
        enter(tree, birth_date=CHILD)
    assert "consent_by" in refused.value.field_errors
    assert not Case.objects.exists()
    case = enter(
        tree,
        birth_date=CHILD,
        consent_by="guardian",
        guardian_name="林妈妈",
        guardian_relationship="母亲",
    )
    consent = Intake.objects.get(case=case).guardian_consent
    assert consent.youth == case.youth and consent.recorded_by == tree.verifier
    assert consent.method == GuardianConsent.Method.IN_PERSON


def test_missing_fields_are_named(tree):
    with pytest.raises(ValidationFailed) as refused:
        enter(tree, youth_name="", youth_phone="abc", birth_date=None, title="")
    assert {"youth_name", "youth_phone", "birth_date", "title"} <= set(refused.value.field_errors)


def test_only_staff_of_an_organisation_may_enter(tree):
    for outsider in (tree.youth, tree.partner_staff):
        with pytest.raises(NotPermitted):
            enter(tree, actor=outsider)
    with pytest.raises(ValidationFailed) as refused:
        enter(tree, channel=Case.Channel.ONLINE)
    assert "channel" in refused.value.field_errors
    with pytest.raises(ValidationFailed):
        enter(tree, desk=tree.baiyun)  # not the verifier's desk


# --- claiming -----------------------------------------------------------------------------


def test_the_youth_claims_the_case_with_the_code(tree):
    case = enter(
        tree,
        birth_date=CHILD,
        consent_by="guardian",
        guardian_name="林妈妈",
        guardian_relationship="母亲",
    )
    placeholder = case.youth
    youth = UserFactory(username="xiaolin", birth_date=CHILD)
    claimed = services.case_claim(actor=youth, reference=case.reference, code=code_of(case))
    assert claimed.youth == youth
    assert kinds(case)[-1] == "claimed"
    assert case.events.get(kind="claimed").actor == youth
    placeholder.refresh_from_db()
    assert placeholder.phone == "" and not placeholder.is_active
    # the guardian's consent goes with the young person
    assert GuardianConsent.objects.filter(youth=youth).exists()
    with pytest.raises(InvalidTransition, match="already been claimed"):
        services.case_claim(actor=youth, reference=case.reference, code="12345678")


def test_wrong_codes_count_and_lock(tree):
    case = enter(tree)
    youth = UserFactory(username="xiaolin")
    right = code_of(case)
    wrong = "00000000" if right != "00000000" else "11111111"
    with pytest.raises(ValidationFailed, match="4 tries left"):
        services.case_claim(actor=youth, reference=case.reference, code=wrong)
    assert Intake.objects.get(case=case).claim_attempts == 1  # kept though the call failed
    for _ in range(4):
        with pytest.raises(ValidationFailed):
            services.case_claim(actor=youth, reference=case.reference, code=wrong)
    with pytest.raises(ValidationFailed, match="Too many wrong codes"):
        services.case_claim(actor=youth, reference=case.reference, code=right)
    # staff send a new code: the youth can claim again
    services.intake_resend_code(case=case, actor=tree.verifier)
    services.case_claim(actor=youth, reference=case.reference, code=code_of(case))
    assert Case.objects.get(pk=case.pk).youth == youth


def test_an_expired_code_is_refused(tree):
    case = enter(tree)
    Intake.objects.filter(case=case).update(claim_expires_at=timezone.now() - timedelta(1))
    with pytest.raises(ValidationFailed, match="expired"):
        services.case_claim(
            actor=UserFactory(username="late"), reference=case.reference, code=code_of(case)
        )


def test_staff_and_unknown_references_cannot_claim(tree):
    case = enter(tree)
    with pytest.raises(NotPermitted):
        services.case_claim(actor=tree.handler, reference=case.reference, code=code_of(case))
    with pytest.raises(ValidationFailed) as refused:
        services.case_claim(actor=tree.youth, reference="YV-NOTHERE", code="12345678")
    assert "reference" in refused.value.field_errors
    online = case_in(tree, CaseState.SUBMITTED)
    with pytest.raises(ValidationFailed):
        services.case_claim(actor=tree.other_youth, reference=online.reference, code="12345678")


# --- hand-offs ----------------------------------------------------------------------------


@pytest.fixture
def qa_service(db):
    service, raw = intake.intake_service_create(name="青年之声问答")
    return service, raw


HANDOFF = {
    "external_id": "qa-2026-000123",
    "category": "study",
    "region_code": "440105",
    "title": "问答平台转来的问题",
    "description": "网上没能解答，需要线下帮助",
    "birth_date": "2005-03-01",
    "consent_by": "youth",
    "youth_phone": "13900002222",
}


def post_handoff(raw, body=None, **headers):
    client = APIClient()
    if raw is not None:
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {raw}")
    return client.post("/api/intake/handoffs/", body or HANDOFF, format="json", **headers)


def test_a_repeated_handoff_gives_one_case(tree, qa_service):
    _service, raw = qa_service
    first = post_handoff(raw)
    assert first.status_code == 201, first.json()
    again = post_handoff(raw)
    assert again.status_code == 200
    assert again.json()["reference"] == first.json()["reference"]
    assert again.json()["created"] is False
    assert Case.objects.count() == 1 == Handoff.objects.count()
    case = Case.objects.get()
    assert case.channel == Case.Channel.HANDOFF and case.org == tree.haizhu
    assert case.events.get(kind="submitted").actor == qa_service[0].account
    assert Intake.objects.get(case=case).consent_method == "online"


def test_handoff_without_or_with_a_wrong_key_is_401(tree, qa_service):
    service, raw = qa_service
    assert post_handoff(None).status_code == 401
    assert post_handoff("yvh_nothing_here").status_code == 401
    assert post_handoff(raw[:-2] + "xx").status_code == 401
    # a person's API token is not a service key
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=tree.handler).key
    assert post_handoff(None, HTTP_AUTHORIZATION=f"Token {token}").status_code == 401
    intake.intake_service_revoke(name=service.name)
    response = post_handoff(raw)
    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "field_errors"}
    assert not Case.objects.exists()


def test_the_same_external_id_of_another_service_is_another_case(tree, qa_service):
    _other, other_raw = intake.intake_service_create(name="另一个服务")
    assert post_handoff(qa_service[1]).status_code == 201
    assert post_handoff(other_raw).status_code == 201
    assert Case.objects.count() == 2


def test_handoff_input_errors_are_400(tree, qa_service):
    response = post_handoff(qa_service[1], {**HANDOFF, "external_id": "有 空格"})
    assert response.status_code == 400 and "external_id" in response.json()["field_errors"]
    child = {**HANDOFF, "birth_date": CHILD.isoformat()}
    response = post_handoff(qa_service[1], child)
    assert response.status_code == 400 and "consent_by" in response.json()["field_errors"]
    assert not Case.objects.exists() and not Handoff.objects.exists()


def test_intake_services_command(tree, capsys):
    from django.core.management import call_command

    call_command("intake_services", "create", "问答")
    raw = capsys.readouterr().out.strip()
    assert raw.startswith("yvh_") and intake.intake_service_check(raw) is not None
    assert raw not in str(list(IntakeService.objects.values()))
    call_command("intake_services", "list")
    assert "问答" in capsys.readouterr().out
    call_command("intake_services", "revoke", "问答")
    assert intake.intake_service_check(raw) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_duplicate_handoffs_make_one_case(tree, qa_service):
    from tests.casework.test_concurrency import race

    service, _raw = qa_service

    def hand_over():
        return services.handoff_receive(
            service=IntakeService.objects.get(pk=service.pk),
            external_id="qa-same",
            category=tree.category("study"),
            region_code="440105",
            title="同时转来",
            description="同一个问题",
            birth_date=ADULT,
            consent_by="youth",
        )

    results = race(*[hand_over] * 4)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len({case.pk for case, _created in results}) == 1
    assert sorted(created for _case, created in results) == [False, False, False, True]
    assert Case.objects.count() == 1 == Handoff.objects.count()


# --- API: staff intake and claims ---------------------------------------------------------


def api(user):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


INTAKE_BODY = {
    "channel": "phone",
    "youth_name": "小周",
    "youth_phone": "13700003333",
    "birth_date": "2006-01-02",
    "consent_by": "youth",
    "category": "study",
    "region_code": "440105",
    "title": "电话求助",
    "description": "12355 来电，希望得到学习辅导",
}


def test_intake_and_claim_through_the_api(tree):
    assert api(None).post("/api/intake/cases/", INTAKE_BODY, format="json").status_code == 401
    refused = api(tree.youth).post("/api/intake/cases/", INTAKE_BODY, format="json")
    assert refused.status_code == 403
    response = api(tree.handler).post("/api/intake/cases/", INTAKE_BODY, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["channel"] == "phone"
    case = Case.objects.get(reference=response.json()["reference"])
    youth = UserFactory(username="xiaozhou")
    wrong = api(youth).post(
        "/api/claims/", {"reference": case.reference, "code": "00000000"}, format="json"
    )
    if code_of(case) != "00000000":
        assert wrong.status_code == 400 and "code" in wrong.json()["field_errors"]
    claimed = api(youth).post(
        "/api/claims/", {"reference": case.reference, "code": code_of(case)}, format="json"
    )
    assert claimed.status_code == 200, claimed.json()
    assert api(youth).get(f"/api/cases/{case.reference}/").status_code == 200


@override_settings(INTAKE_CLAIM_MAX_ATTEMPTS=2)
def test_the_attempt_limit_is_a_setting(tree):
    case = enter(tree)
    youth = UserFactory(username="xiaolin")
    wrong = "00000000" if code_of(case) != "00000000" else "11111111"
    with pytest.raises(ValidationFailed, match="1 tries left"):
        services.case_claim(actor=youth, reference=case.reference, code=wrong)


# --- rating the station visit --------------------------------------------------------------


def test_the_youth_rates_the_station_visit_once(tree):
    case = case_in(tree, CaseState.COORDINATING)
    rating = services.visit_rate(case=case, actor=tree.youth, stars=4, comment="社工很耐心")
    assert rating.station == tree.station and rating.stars == 4
    event = CaseEvent.objects.filter(case=case).order_by("-seq").first()
    assert event.kind == "visit_rated" and event.payload["stars"] == 4
    assert "社工" not in str(event.payload)
    with pytest.raises(InvalidTransition, match="already rated"):
        services.visit_rate(case=case, actor=tree.youth, stars=5)
    assert VisitRating.objects.count() == 1


def test_only_the_youth_rates_and_only_after_a_station_visit(tree):
    before = case_in(tree, CaseState.VERIFYING)
    with pytest.raises(InvalidTransition, match="no station visit"):
        services.visit_rate(case=before, actor=tree.youth, stars=4)
    case = case_in(tree, CaseState.COORDINATING)
    with pytest.raises(NotPermitted):
        services.visit_rate(case=case, actor=tree.handler, stars=4)
    with pytest.raises(ValidationFailed):
        services.visit_rate(case=case, actor=tree.youth, stars=6)


def test_a_visit_rating_feeds_the_stations_evaluation(tree):
    from casework.selectors_scores import org_scores

    case = case_in(tree, CaseState.COORDINATING)
    assert org_scores(tree.station).ratings == 0
    services.visit_rate(case=case, actor=tree.youth, stars=5)
    good = org_scores(tree.station)
    assert good.ratings > 0
    row = ScoreState.objects.get(key=org_key(tree.station.pk))
    assert row.quality == pytest.approx(row.weight)  # five stars: quality 1
    other = case_in(tree, CaseState.COORDINATING)
    services.visit_rate(case=other, actor=tree.youth, stars=1)
    assert org_scores(tree.station).evaluation < good.evaluation
    # the full recompute agrees with the running sums
    epoch, stored = stored_sums()
    rebuilt = full_sums(epoch)
    category = tree.category("study").pk
    for key in (org_key(tree.station.pk), org_key(tree.station.pk, category)):
        assert rebuilt[key].quality == pytest.approx(stored[key].quality)
        assert rebuilt[key].weight == pytest.approx(stored[key].weight)


def test_rate_visit_through_the_api(tree):
    case = case_in(tree, CaseState.COORDINATING)
    url = f"/api/cases/{case.reference}/rate-visit/"
    body = {"stars": 3, "version": case.version}
    assert api(tree.handler).post(url, body, format="json").status_code == 403
    response = api(tree.youth).post(url, body, format="json")
    assert response.status_code == 200, response.json()
    again = api(tree.youth).post(url, {"stars": 3, "version": case.version + 1}, format="json")
    assert again.status_code == 409


def test_erasure_clears_the_visit_comment(tree):
    case = case_in(tree, CaseState.COORDINATING)
    services.visit_rate(case=case, actor=tree.youth, stars=4, comment="社工姓王，很耐心")
    services.case_withdraw(case=case, actor=tree.youth)
    services.erase_personal_data(youth=tree.youth, actor=tree.youth)
    rating = VisitRating.objects.get(case=case)
    assert rating.comment == "" and rating.stars == 4
