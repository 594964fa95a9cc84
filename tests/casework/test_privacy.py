"""Personal data of minors: encryption at rest, consent, access log, export, erasure, retention."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation

from casework import crypto, services
from casework.errors import InvalidTransition, NotPermitted, ValidationFailed
from casework.models import (
    AccessLog,
    Case,
    CaseEvent,
    CaseMessage,
    GuardianConsent,
    PrivacyRequest,
    Rating,
    User,
)
from casework.services import privacy
from casework.states import CaseState
from tests.casework.steps import case_in, submit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NAME, PHONE, EMAIL = "陈小雨测试", "13912345678", "xiaoyu.secret@example.org"
TITLE, DESCRIPTION = "独特标题-Q7Z", "独特描述-被欺负-K9X"


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def years_ago(years: int) -> date:
    """A birth date that makes the person exactly ``years`` old today."""
    return date(timezone.localdate().year - years, 1, 1)


def with_profile(user: User, **fields) -> User:
    for name, value in fields.items():
        setattr(user, name, value)
    user.save()
    return user


# --- encryption at rest --------------------------------------------------------------


def test_personal_fields_are_stored_encrypted_and_read_back_in_clear(tree):
    # given a youth with contact details and a case in her own words
    youth = with_profile(tree.youth, display_name=NAME, phone=PHONE, email=EMAIL)
    case = submit(tree, title=TITLE, description=DESCRIPTION)
    # then the columns hold Fernet tokens, not the words
    for column, value in (("display_name", NAME), ("phone", PHONE), ("email", EMAIL)):
        stored = raw("casework_user", column, youth.pk)
        assert value not in stored and crypto.looks_encrypted(stored)
    for column, value in (("title", TITLE), ("description", DESCRIPTION)):
        stored = raw("casework_case", column, case.pk)
        assert value not in stored and crypto.looks_encrypted(stored)
    # and the ORM reads them back as written
    fresh = User.objects.get(pk=youth.pk)
    assert (fresh.display_name, fresh.phone, fresh.email) == (NAME, PHONE, EMAIL)
    assert Case.objects.values_list("title", "description").get(pk=case.pk) == (TITLE, DESCRIPTION)


def test_empty_values_stay_empty_so_has_a_phone_is_answerable(tree):
    assert raw("casework_user", "phone", tree.youth.pk) == ""


def test_filtering_on_an_encrypted_field_is_refused_not_silently_empty(tree):
    with pytest.raises(FieldError, match="encrypted"):
        list(User.objects.filter(email=EMAIL))
    with pytest.raises(FieldError, match="encrypted"):
        list(Case.objects.filter(title__icontains="x"))
    assert User.objects.filter(email__isnull=False).exists()


def test_legacy_plaintext_is_read_and_rewritten_encrypted(tree):
    # given a row written before the column was encrypted (plain text in the column)
    case = submit(tree)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE casework_case SET description = %s WHERE id = %s", ["旧的明文", case.pk]
        )
    assert Case.objects.get(pk=case.pk).description == "旧的明文"
    # when the rows are re-encrypted (what migration 0007 and rotate_keys do)
    done = crypto.reencrypt_model(Case, ["description"])
    # then it is a token now, with the same meaning
    assert done == 1
    assert crypto.looks_encrypted(raw("casework_case", "description", case.pk))
    assert Case.objects.get(pk=case.pk).description == "旧的明文"


def test_a_token_no_key_opens_is_an_error_not_plaintext(tree, settings):
    case = submit(tree, description=DESCRIPTION)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError):
        Case.objects.get(pk=case.pk)


def test_rotate_keys_reencrypts_in_batches_with_progress(tree, settings):
    # given data under the old key
    old = settings.FIELD_ENCRYPTION_KEYS[0]
    with_profile(tree.youth, phone=PHONE)
    cases = [submit(tree, description=f"{DESCRIPTION}-{i}") for i in range(3)]
    before = raw("casework_case", "description", cases[0].pk)
    # when a new key goes first and the command runs
    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_keys", batch_size=2, stdout=out, stderr=err)
    # then it reported every table with its rows, and drew progress bars
    assert "casework.Case: 3 rows" in out.getvalue()
    assert "casework.User:" in out.getvalue()
    assert "casework.Case" in err.getvalue() and "3/3" in err.getvalue()
    assert DESCRIPTION not in out.getvalue() + err.getvalue()
    # and with the old key gone everything still reads
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert raw("casework_case", "description", cases[0].pk) != before
    assert [Case.objects.get(pk=c.pk).description for c in cases] == [
        f"{DESCRIPTION}-{i}" for i in range(3)
    ]
    assert User.objects.get(pk=tree.youth.pk).phone == PHONE


def test_rotate_keys_prints_a_new_key():
    out = io.StringIO()
    call_command("rotate_keys", new_key=True, stdout=out)
    Fernet(out.getvalue().strip().encode())  # a valid key


def test_no_key_is_a_clear_configuration_error(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(Exception, match="FIELD_ENCRYPTION_KEYS"):
        crypto.encrypt("x")


# --- minors and guardian consent ------------------------------------------------------


def test_minor_flag_is_derived_from_the_birth_date(tree):
    today = date(2026, 6, 1)
    youth = with_profile(tree.youth, birth_date=date(2010, 6, 2))
    assert privacy.age_of(youth, today) == 15
    assert privacy.is_minor(youth, today) is True
    youth.birth_date = date(2008, 6, 1)
    assert privacy.is_minor(youth, today) is False
    youth.birth_date = None
    assert privacy.is_minor(youth, today) is None


def test_under_14_cannot_submit_without_a_recorded_guardian_consent(tree):
    # given a 12-year-old
    child = with_profile(tree.youth, birth_date=years_ago(12))
    # when she asks for help with no consent on record, then it is refused, saying why
    with translation.override("en"), pytest.raises(NotPermitted, match="consent"):
        submit(tree, youth=child)
    assert not Case.objects.filter(youth=child).exists()
    # when her mother's consent is recorded (who, how, when)
    consent = services.record_guardian_consent(
        youth=child, guardian_name="王女士", relationship="母亲", method="phone", actor=tree.handler
    )
    # then she can submit, and the consent names its recorder
    assert submit(tree, youth=child).state == CaseState.SUBMITTED
    assert (consent.recorded_by, consent.method) == (tree.handler, "phone")
    assert "王女士" not in raw("casework_guardianconsent", "guardian_name", consent.pk)


def test_a_revoked_consent_no_longer_counts(tree):
    child = with_profile(tree.youth, birth_date=years_ago(13))
    consent = services.record_guardian_consent(
        youth=child, guardian_name="王女士", relationship="母亲", method="written", actor=child
    )
    privacy.revoke_guardian_consent(consent=consent, actor=tree.handler)
    with pytest.raises(NotPermitted):
        submit(tree, youth=child)


def test_fourteen_and_older_need_no_consent(tree):
    youth = with_profile(tree.youth, birth_date=years_ago(15))
    assert submit(tree, youth=youth).state == CaseState.SUBMITTED


def test_consent_needs_who_and_how(tree):
    with pytest.raises(ValidationFailed) as caught:
        services.record_guardian_consent(
            youth=tree.youth, guardian_name=" ", relationship="", method="fax", actor=tree.youth
        )
    assert set(caught.value.field_errors) == {"guardian_name", "relationship", "method"}


def test_a_stranger_cannot_record_consent_for_someone_else(tree):
    with pytest.raises(NotPermitted):
        services.record_guardian_consent(
            youth=tree.youth,
            guardian_name="x",
            relationship="y",
            method="phone",
            actor=tree.other_youth,
        )


# --- access logging -------------------------------------------------------------------


def test_staff_opening_a_case_page_is_logged_with_the_task_they_hold(tree, client):
    case = submit(tree)
    client.force_login(tree.handler)
    assert client.get(reverse("casework:case_detail", args=[case.reference])).status_code == 200
    entry = AccessLog.objects.get()
    assert (entry.actor, entry.case, entry.org) == (tree.handler, case, tree.haizhu)
    assert entry.purpose.startswith("task:") and entry.task is not None
    assert entry.task.case_id == case.pk


def test_the_staff_case_page_logs_the_access_too(tree, client):
    case = submit(tree)
    client.force_login(tree.handler)
    assert client.get(reverse("casework:staff_case", args=[case.reference])).status_code == 200
    entry = AccessLog.objects.get()
    assert (entry.actor, entry.case, entry.fields) == (tree.handler, case, ["case"])


def test_the_api_case_detail_logs_the_access_too(tree):
    from rest_framework.test import APIClient

    case = submit(tree)
    api = APIClient()
    api.force_authenticate(tree.handler)
    assert api.get(reverse("api:case", args=[case.reference])).status_code == 200
    api.force_authenticate(tree.youth)
    assert api.get(reverse("api:case", args=[case.reference])).status_code == 200
    assert [e.actor for e in AccessLog.objects.all()] == [tree.handler]


def test_the_task_page_and_the_admin_log_the_access_too(tree, client):
    from workflows.models import CaseTask

    case = submit(tree)
    task = CaseTask.objects.get(case=case, org=tree.haizhu, status__in=["NEW", "ASSIGNED"])
    client.force_login(tree.handler)
    assert client.get(reverse("workflows:task", args=[task.pk])).status_code == 200
    entry = AccessLog.objects.get(actor=tree.handler)
    assert (entry.task, entry.purpose) == (task, "task:intake")
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(admin)
    url = reverse("admin:casework_case_change", args=[case.pk])
    assert client.get(url).status_code == 200
    entry = AccessLog.objects.get(actor=admin)
    assert entry.purpose == "administration"


def test_the_youth_reading_her_own_case_is_not_an_access_event(tree, client):
    case = submit(tree)
    client.force_login(tree.youth)
    assert client.get(reverse("casework:case_detail", args=[case.reference])).status_code == 200
    assert not AccessLog.objects.exists()


def test_a_supervisor_looking_in_is_logged_as_supervision(tree):
    case = submit(tree)
    entry = services.record_personal_data_access(actor=tree.city_supervisor, case=case)
    assert entry.purpose == "supervision" and entry.org == tree.city


def test_supervisors_review_the_log_others_may_not(tree):
    case = submit(tree)
    services.record_personal_data_access(actor=tree.handler, case=case)
    assert [e.actor for e in privacy.access_log_for(case=case, actor=tree.city_supervisor)] == [
        tree.handler
    ]
    with pytest.raises(NotPermitted):
        privacy.access_log_for(case=case, actor=tree.handler)


def test_the_supervisors_audit_page_lists_who_opened_the_case(tree, client):
    case = submit(tree)
    services.record_personal_data_access(actor=tree.handler, case=case)
    client.force_login(tree.city_supervisor)
    page = client.get(reverse("casework:supervisor_audit", args=[case.reference]))
    assert page.status_code == 200
    assert [e.actor for e in page.context["accesses"]] == [tree.handler]
    assert str(tree.handler) in page.content.decode()


def test_a_partner_body_sees_only_what_its_task_needs(tree):
    case = case_in(tree, CaseState.COORDINATING, title=TITLE, description=DESCRIPTION)
    task = services.case_refer(
        case=case, actor=tree.handler, partner=tree.partner, instructions="请联系学校"
    )
    view = privacy.partner_view(task)
    shown = json.dumps(view.__dict__, default=str, ensure_ascii=False)
    assert "请联系学校" in shown
    for secret in (TITLE, DESCRIPTION, tree.youth.display_name, tree.youth.username):
        assert secret not in shown


# --- export -----------------------------------------------------------------------------


def test_the_youth_exports_her_data_as_json(tree):
    youth = with_profile(tree.youth, phone=PHONE, email=EMAIL)
    case = case_in(tree, CaseState.CLOSED, title=TITLE, description=DESCRIPTION)
    data = json.loads(json.dumps(services.export_personal_data(youth=youth, actor=youth)))
    assert data["profile"]["phone"] == PHONE and data["profile"]["email"] == EMAIL
    [exported] = data["cases"]
    assert (exported["reference"], exported["title"]) == (case.reference, TITLE)
    assert exported["rating"]["timeliness"] == 5
    # staff-internal notes are not the youth's data to take away
    internal = set(case.messages.filter(internal=True).values_list("pk", flat=True))
    assert len(exported["messages"]) == case.messages.count() - len(internal)
    assert PrivacyRequest.objects.get().kind == PrivacyRequest.Kind.EXPORT


def test_nobody_else_exports_her_data(tree):
    with pytest.raises(NotPermitted):
        services.export_personal_data(youth=tree.youth, actor=tree.handler)


# --- erasure ------------------------------------------------------------------------------


def test_erasure_is_refused_while_a_case_is_open_with_the_reason(tree):
    case = case_in(tree, CaseState.ACCEPTED, description=DESCRIPTION)
    with translation.override("en"), pytest.raises(InvalidTransition) as caught:
        services.erase_personal_data(youth=tree.youth, actor=tree.youth)
    assert case.reference in str(caught.value.message)
    assert "open" in str(caught.value.message)
    # nothing was erased, and the refusal is on record
    assert Case.objects.get(pk=case.pk).description == DESCRIPTION
    assert PrivacyRequest.objects.get().status == PrivacyRequest.Status.REFUSED


def test_erasure_keeps_the_timeline_valid_and_the_numbers_unchanged(tree):
    # given a youth with a closed, rated case and a withdrawn one
    youth = with_profile(tree.youth, display_name=NAME, phone=PHONE, email=EMAIL)
    closed = case_in(tree, CaseState.CLOSED, title=TITLE, description=DESCRIPTION)
    withdrawn = submit(tree)
    services.case_withdraw(case=withdrawn, actor=youth, reason="不需要了")
    events_before = list(CaseEvent.objects.order_by("pk").values_list("pk", "hash", "payload"))
    stars_before = list(Rating.objects.values_list("timeliness", "attitude", "outcome", "solved"))
    counts_before = (Case.objects.count(), Case.objects.filter(state=CaseState.CLOSED).count())
    # when she asks for erasure
    result = services.erase_personal_data(youth=youth, actor=youth)
    # then her words and contact details are gone
    assert result.cases == 2 and result.users == 1
    for case in Case.objects.filter(youth=youth):
        assert (case.title, case.description) == (privacy.ERASED, privacy.ERASED)
        assert case.personal_data_erased_at is not None
    assert set(CaseMessage.objects.filter(case__youth=youth).values_list("body", flat=True)) <= {
        privacy.ERASED
    }
    assert Rating.objects.get(case=closed).comment == ""
    erased = User.objects.get(pk=youth.pk)
    assert (erased.display_name, erased.phone, erased.email, erased.birth_date) == (
        "",
        "",
        "",
        None,
    )
    assert erased.username == f"erased-{youth.pk}" and not erased.is_active
    assert not erased.has_usable_password() and erased.erased_at is not None
    # and the timeline, the counts and the stars are exactly as before
    assert list(CaseEvent.objects.order_by("pk").values_list("pk", "hash", "payload")) == (
        events_before
    )
    assert stars_before == list(
        Rating.objects.values_list("timeliness", "attitude", "outcome", "solved")
    )
    assert counts_before == (
        Case.objects.count(),
        Case.objects.filter(state=CaseState.CLOSED).count(),
    )
    out = io.StringIO()
    call_command("verify_timeline", stdout=out)
    assert "case timelines verify" in out.getvalue()
    # and a second request has nothing left to do
    with pytest.raises(InvalidTransition):
        services.erase_personal_data(youth=erased, actor=erased)


def test_only_the_youth_or_a_platform_admin_asks_for_erasure(tree):
    with pytest.raises(NotPermitted):
        services.erase_personal_data(youth=tree.youth, actor=tree.handler)
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    assert services.erase_personal_data(youth=tree.youth, actor=admin).users == 1


# --- retention ---------------------------------------------------------------------------


def test_retention_erases_cases_closed_past_the_period_in_batches(tree, settings):
    settings.PRIVACY_RETENTION = timedelta(days=30)
    old = [case_in(tree, CaseState.CLOSED, description=f"{DESCRIPTION}{i}") for i in range(3)]
    recent = case_in(tree, CaseState.CLOSED, description="最近关闭")
    still_open = case_in(tree, CaseState.ACCEPTED, description="还在处理")
    long_ago = timezone.now() - timedelta(days=31)
    Case.objects.filter(pk__in=[c.pk for c in old]).update(closed_at=long_ago)
    # when the job runs with batches of two
    result = services.retention_sweep(batch_size=2)
    # then the three old ones are erased, the recent and the open one are not
    assert result.cases == 3
    assert {Case.objects.get(pk=c.pk).description for c in old} == {privacy.ERASED}
    assert Case.objects.get(pk=recent.pk).description == "最近关闭"
    assert Case.objects.get(pk=still_open.pk).description == "还在处理"
    # the youth still has a case in handling, so her profile stays
    assert User.objects.get(pk=tree.youth.pk).erased_at is None
    # and running again finds nothing new
    assert services.retention_sweep(batch_size=2).cases == 0
    out = io.StringIO()
    call_command("verify_timeline", stdout=out)
    assert "case timelines verify" in out.getvalue()


def test_retention_anonymises_a_youth_with_nothing_left_and_no_recent_sign_in(tree, settings):
    settings.PRIVACY_RETENTION = timedelta(days=30)
    with_profile(tree.youth, phone=PHONE)
    case = case_in(tree, CaseState.CLOSED)
    long_ago = timezone.now() - timedelta(days=40)
    Case.objects.filter(pk=case.pk).update(closed_at=long_ago)
    User.objects.filter(pk=tree.youth.pk).update(last_login=long_ago, date_joined=long_ago)
    result = services.retention_sweep()
    assert (result.cases, result.users) == (1, 1)
    assert User.objects.get(pk=tree.youth.pk).phone == ""


def test_the_retention_beat_task_runs_the_sweep(tree):
    from casework.tasks import privacy_retention_task

    assert privacy_retention_task.apply().get() == {
        "cases": 0,
        "users": 0,
        "messages": 0,
        "files": 0,
    }


def test_guardian_consent_is_anonymised_with_the_youth(tree):
    child = with_profile(tree.youth, birth_date=years_ago(12))
    services.record_guardian_consent(
        youth=child, guardian_name="王女士", relationship="母亲", method="phone", actor=child
    )
    services.erase_personal_data(youth=child, actor=child)
    assert GuardianConsent.objects.get().guardian_name == privacy.ERASED


# --- the youth's own pages ------------------------------------------------------------------


def test_the_youth_downloads_her_data_from_her_page(tree, client):
    youth = with_profile(tree.youth, phone=PHONE)
    case = submit(tree, title=TITLE)
    client.force_login(youth)
    page = client.get(reverse("casework:my_data"))
    assert page.status_code == 200 and PHONE in page.content.decode()
    download = client.get(reverse("casework:my_data_export"))
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    data = json.loads(download.content)
    assert data["cases"][0]["reference"] == case.reference and data["profile"]["phone"] == PHONE


def test_erasing_from_the_page_is_refused_with_the_reason_while_a_case_is_open(tree, client):
    case = submit(tree, description=DESCRIPTION)
    client.force_login(tree.youth)
    response = client.post(reverse("casework:my_data_erase"), {"confirm": "on"})
    assert response.status_code == 409
    assert case.reference in response.content.decode()
    assert Case.objects.get(pk=case.pk).description == DESCRIPTION
    # withdrawing first, then asking again, erases and signs out
    services.case_withdraw(case=case, actor=tree.youth)
    response = client.post(reverse("casework:my_data_erase"), {"confirm": "on"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert Case.objects.get(pk=case.pk).description == privacy.ERASED


def test_erasing_needs_the_confirmation_box(tree, client):
    client.force_login(tree.youth)
    assert client.post(reverse("casework:my_data_erase"), {}).status_code == 400
    assert User.objects.get(pk=tree.youth.pk).erased_at is None


# --- a known age, encrypted birth dates, finding people ------------------------------


def test_a_youth_with_no_birth_date_is_asked_for_it_before_submitting(tree):
    youth = with_profile(tree.youth, birth_date=None)
    # when she submits with no birth date on record, she is told why it is needed
    with pytest.raises(ValidationFailed) as refused:
        submit(tree, youth=youth)
    assert "birth_date" in refused.value.field_errors
    assert not Case.objects.filter(youth=youth).exists()
    # and once she says she is 12, the consent rule applies as usual
    youth = privacy.declare_birth_date(user=youth, born=years_ago(12))
    with pytest.raises(NotPermitted):
        submit(tree, youth=youth)


def test_the_request_form_asks_a_youth_with_no_birth_date_then_the_consent(tree, client):
    youth = with_profile(tree.youth, birth_date=None)
    client.force_login(youth)
    page = client.get(reverse("casework:youth_new"))
    assert page.status_code == 302 and page.url == reverse("casework:youth_birth_date")
    # a date in the future is refused, and what was typed is kept
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    answer = client.post(reverse("casework:youth_birth_date"), {"birth_date": future})
    assert answer.status_code == 400 and future in answer.content.decode()
    # a 12-year-old goes on to the guardian-consent step
    answer = client.post(
        reverse("casework:youth_birth_date"), {"birth_date": years_ago(12).isoformat()}
    )
    assert answer.status_code == 302
    assert client.get(reverse("casework:youth_new")).url == reverse("casework:youth_consent")
    youth.refresh_from_db()
    assert youth.birth_date == years_ago(12)


def test_the_api_takes_the_birth_date_with_the_first_request(tree):
    from rest_framework.test import APIClient

    youth = with_profile(tree.youth, birth_date=None)
    api = APIClient()
    api.force_authenticate(youth)
    request = {
        "category": "study",
        "region_code": "440105",
        "title": "作业太多",
        "description": "每天写到半夜",
    }
    refused = api.post("/api/cases/", request, format="json")
    assert refused.status_code == 400 and "birth_date" in refused.json()["field_errors"]
    done = api.post(
        "/api/cases/", {**request, "birth_date": years_ago(16).isoformat()}, format="json"
    )
    assert done.status_code == 201
    # a different date afterwards is refused, not silently taken
    again = api.post(
        "/api/cases/", {**request, "birth_date": years_ago(10).isoformat()}, format="json"
    )
    assert again.status_code == 400 and "birth_date" in again.json()["field_errors"]
    youth.refresh_from_db()
    assert youth.birth_date == years_ago(16)


def test_staff_and_integration_accounts_need_no_birth_date(tree):
    staff = with_profile(tree.handler, birth_date=None)
    assert not privacy.is_youth_account(staff)
    assert privacy.is_youth_account(tree.youth)


def test_the_birth_date_is_stored_encrypted_and_read_back_as_a_date(tree):
    youth = with_profile(tree.youth, birth_date=date(2012, 7, 19))
    stored = raw("casework_user", "birth_date", youth.pk)
    assert "2012" not in stored and crypto.looks_encrypted(stored)
    youth.refresh_from_db()
    assert youth.birth_date == date(2012, 7, 19)
    assert privacy.is_minor(youth) is True


def test_people_are_found_by_exact_name_email_or_phone_though_encrypted(tree):
    youth = with_profile(tree.youth, display_name="陈 小雨", email="Xiaoyu@Example.org")
    youth.phone = "139 1234 5678"
    youth.save(update_fields=["phone"])
    for term in ("陈小雨", "xiaoyu@example.org", "13912345678"):
        assert list(privacy.find_people(term)) == [youth], term
    assert not privacy.find_people("陈小").exists()
    assert not privacy.find_people("  ").exists()
    stored = raw("casework_user", "email_digest", youth.pk)
    assert "xiaoyu" not in stored.lower() and len(stored) == 64


def test_the_admin_finds_a_person_by_exact_email(tree, client):
    with_profile(tree.youth, email="find.me@example.org")
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    page = client.get(reverse("admin:casework_user_changelist"), {"q": "Find.Me@example.org"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert list(page.context["cl"].result_list) == [tree.youth]


def test_erasure_clears_the_search_digests(tree):
    youth = with_profile(tree.youth, email="gone@example.org")
    privacy.erase_personal_data(youth=youth, actor=youth)
    youth.refresh_from_db()
    assert youth.email_digest == youth.name_digest == youth.phone_digest == ""
    assert not privacy.find_people("gone@example.org").exists()


def test_rotate_keys_recomputes_the_search_digests(tree, settings):
    with_profile(tree.youth, email="rotate.me@example.org")
    settings.SEARCH_DIGEST_KEY = "another-digest-key"
    assert not privacy.find_people("rotate.me@example.org").exists()
    call_command("rotate_keys", "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
    assert list(privacy.find_people("rotate.me@example.org")) == [tree.youth]
