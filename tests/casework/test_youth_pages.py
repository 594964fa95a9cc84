"""The youth portal through the test client: sign-up, the request form, the case page and
every action form, with their errors, stale versions, strangers and odd input."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from casework import services
from casework.models import Case, CaseMessage, User
from casework.services.privacy import age_on
from casework.states import CaseState
from casework.youth_timeline import plain_timeline, sentence

from .steps import case_in, submit

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


def request_data(tree, **overrides):
    data = {
        "category": str(tree.category("study").pk),
        "province": "440000",
        "city": "440100",
        "district": "440105",
        "title": "数学跟不上",
        "description": "初二数学成绩下滑，想找辅导资源",
        "urgency": "normal",
        "org_q": "",
        "requested_org": "",
        "is_public": "1",
    }
    data.update(overrides)
    return data


def action_url(case, action):
    return reverse("casework:youth_action", args=[case.reference, action])


# --- sign-up and log-in --------------------------------------------------------------


def test_register_creates_a_youth_and_signs_them_in(client, tree):
    # given the sign-up form filled in
    data = {
        "username": "xiaoming2008",
        "display_name": "小明",
        "birth_date": "2008-05-01",
        "region_code": "440105",
        "password1": "a-long-Passw0rd!",
        "password2": "a-long-Passw0rd!",
    }
    # when it is sent
    response = client.post(reverse("casework:register"), data)
    # then the user exists with only those fields, and is signed in
    assert response.status_code == 302
    user = User.objects.get(username="xiaoming2008")
    assert (user.display_name, user.region_code) == ("小明", "440105")
    assert user.birth_date == datetime.date(2008, 5, 1)
    assert client.get(reverse("casework:youth_cases")).status_code == 200


def test_register_errors_keep_what_was_typed(client, tree):
    response = client.post(
        reverse("casework:register"),
        {
            "username": "keepme",
            "display_name": "保留",
            "birth_date": "not-a-date",
            "region_code": "999999",
            "password1": "x",
            "password2": "y",
        },
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert {"birth_date", "region_code", "password2"} <= set(form.errors)
    assert 'value="keepme"' in response.content.decode()
    assert not User.objects.filter(username="keepme").exists()


def test_register_refuses_a_future_birth_date(client, tree):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    response = client.post(
        reverse("casework:register"),
        {"username": "future", "birth_date": tomorrow.isoformat(), "display_name": "x"},
    )
    assert response.status_code == 400
    assert "birth_date" in response.context["form"].errors


def test_login_page_renders_and_signs_in(client, tree):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(
        reverse("login"), {"username": tree.youth.username, "password": "pass-1234"}
    )
    assert response.status_code == 302


# --- the request form ----------------------------------------------------------------


def test_request_form_shows_the_region_picker(client, tree):
    login(client, tree.youth)
    response = client.get(reverse("casework:youth_new"))
    assert response.status_code == 200
    page = response.content.decode()
    # the youth's own region is preselected
    assert response.context["form"].initial["district"] == "440105"
    assert 'name="province"' in page and 'name="city"' in page and 'name="district"' in page


def test_submit_creates_the_case_and_shows_it(client, tree):
    login(client, tree.youth)
    response = client.post(reverse("casework:youth_new"), request_data(tree))
    case = Case.objects.get(youth=tree.youth)
    assert response.status_code == 302
    assert response["Location"] == reverse("casework:youth_case", args=[case.reference])
    assert (case.region_code, case.org, case.is_public) == ("440105", tree.haizhu, True)
    page = client.get(response["Location"]).content.decode()
    assert "数学跟不上" in page and tree.haizhu.name in page


def test_submit_with_a_named_organisation_and_private(client, tree):
    login(client, tree.youth)
    data = request_data(tree, requested_org=str(tree.station.pk), is_public="0")
    response = client.post(reverse("casework:youth_new"), data)
    assert response.status_code == 302
    case = Case.objects.get(youth=tree.youth)
    assert case.requested_org == tree.station
    assert case.is_public is False


def test_missing_fields_are_marked_and_typed_text_is_kept(client, tree):
    login(client, tree.youth)
    data = request_data(tree, title="", category="", city="", district="")
    response = client.post(reverse("casework:youth_new"), data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert {"title", "category", "city"} <= set(errors)
    page = response.content.decode()
    assert "初二数学成绩下滑" in page  # the description is kept
    assert 'aria-invalid="true"' in page
    assert not Case.objects.exists()


def test_a_district_outside_the_chosen_city_is_refused(client, tree):
    login(client, tree.youth)
    response = client.post(
        reverse("casework:youth_new"), request_data(tree, city="440300", district="440105")
    )
    assert response.status_code == 400
    assert "district" in response.context["form"].errors


def test_refresh_without_javascript_reloads_the_pickers_without_errors(client, tree):
    login(client, tree.youth)
    data = request_data(tree, district="", title="", refresh="region", city="440300")
    response = client.post(reverse("casework:youth_new"), data)
    assert response.status_code == 200
    form = response.context["form"]
    assert not form.errors
    codes = [code for code, _name in form.fields["district"].choices]
    assert "440305" in codes or codes == [""]  # Shenzhen's districts (or none seeded)
    assert not Case.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"category": "abc"},
        {"category": "999999"},
        {"urgency": "extreme"},
        {"province": "x" * 500, "city": "-1", "district": "1e9"},
        {"requested_org": "not-a-number"},
        {"requested_org": "99999999999999999999"},
        {"is_public": "maybe"},
        {"title": "很" * 5000},
        {"description": "长" * 100_000},
    ],
)
def test_odd_input_never_fails(client, tree, overrides):
    login(client, tree.youth)
    response = client.post(reverse("casework:youth_new"), request_data(tree, **overrides))
    assert response.status_code == 400
    assert not Case.objects.exists()


def test_json_helpers_for_the_pickers(client, tree):
    login(client, tree.youth)
    regions = client.get(reverse("casework:youth_regions"), {"parent": "440100"}).json()
    assert "440105" in {r["code"] for r in regions["regions"]}
    assert client.get(reverse("casework:youth_regions"), {"parent": "'; drop"}).json() == {
        "regions": []
    }
    orgs = client.get(
        reverse("casework:youth_org_search"),
        {"q": "海珠", "category": str(tree.category("study").pk)},
    ).json()["orgs"]
    names = {o["name"] for o in orgs}
    assert tree.haizhu.name in names and tree.station.name in names
    assert tree.partner.name not in names  # partner bodies are not named by youth
    assert tree.baiyun.name not in names


def test_youth_pages_need_a_login(client, tree):
    response = client.get(reverse("casework:youth_new"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- guardian consent ----------------------------------------------------------------


def test_age_on():
    today = datetime.date(2025, 6, 1)
    assert age_on(datetime.date(2011, 6, 2), today) == 13
    assert age_on(datetime.date(2011, 6, 1), today) == 14


def test_under_fourteen_goes_to_the_consent_step_first(client, tree):
    young = User.objects.create_user(
        "xiaohua", password="pass-1234", birth_date=timezone.localdate().replace(year=2020)
    )
    login(client, young)
    response = client.get(reverse("casework:youth_new"))
    assert response.status_code == 302
    assert response["Location"] == reverse("casework:youth_consent")
    page = client.get(reverse("casework:youth_consent"))
    assert page.status_code == 200
    # an incomplete consent shows every missing field
    response = client.post(reverse("casework:youth_consent"), {"guardian_name": "王芳"})
    assert response.status_code == 400
    assert {"relation", "method", "confirm"} <= set(response.context["form"].errors)
    assert "王芳" in response.content.decode()


def test_a_recorded_consent_opens_the_request_form(client, tree):
    young = User.objects.create_user(
        "xiaolan",
        password="pass-1234",
        region_code="440105",
        birth_date=timezone.localdate().replace(year=timezone.localdate().year - 12),
    )
    login(client, young)
    response = client.post(
        reverse("casework:youth_consent"),
        {"guardian_name": "王芳", "relation": "mother", "method": "phone", "confirm": "on"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("casework:youth_new")
    assert young.guardian_consents.filter(revoked_at__isnull=True).count() == 1
    assert client.get(reverse("casework:youth_new")).status_code == 200
    response = client.post(reverse("casework:youth_new"), request_data(tree))
    assert response.status_code == 302
    assert Case.objects.filter(youth=young).exists()


def test_fourteen_and_over_skip_the_consent_step(client, tree):
    login(client, tree.youth)  # no birth date: no consent step
    response = client.get(reverse("casework:youth_consent"))
    assert response.status_code == 302
    assert response["Location"] == reverse("casework:youth_new")


# --- my cases and the case page ------------------------------------------------------


def test_my_cases_lists_only_mine(client, tree):
    mine = submit(tree, title="我的诉求")
    theirs = submit(tree, youth=tree.other_youth, region="440111", title="别人的诉求")
    login(client, tree.youth)
    page = client.get(reverse("casework:youth_cases")).content.decode()
    assert mine.reference in page
    assert theirs.reference not in page


def test_case_page_tells_the_timeline_in_plain_words(client, tree):
    case = case_in(tree, CaseState.AWAITING_YOUTH)
    services.case_comment(case=case, actor=tree.handler, body="内部备注：家长情绪激动")
    login(client, tree.youth)
    response = client.get(reverse("casework:youth_case", args=[case.reference]))
    assert response.status_code == 200
    page = response.content.decode()
    ctx = response.context
    assert ctx["org_name"] == tree.haizhu.name
    assert ctx["paused"] is True and ctx["deadline"] is None
    assert "请补充材料" in page  # the question is shown
    assert "内部备注" not in page  # internal notes never are
    assert tree.handler.username not in page  # nor staff names
    assert [a["slug"] for a in ctx["actions"]][:1] == ["answer"]
    texts = [line.text for line in ctx["timeline"]]
    assert len(texts) >= 5 and all(texts)


def test_someone_elses_case_is_a_404(client, tree):
    case = submit(tree)
    login(client, tree.other_youth)
    assert client.get(reverse("casework:youth_case", args=[case.reference])).status_code == 404
    response = client.post(action_url(case, "withdraw"), {"version": case.version, "confirm": "on"})
    assert response.status_code == 404
    assert Case.objects.get(pk=case.pk).state == CaseState.SUBMITTED


def test_unknown_references_and_actions_are_404(client, tree):
    case = submit(tree)
    login(client, tree.youth)
    assert client.get(reverse("casework:youth_case", args=["YV-NOPE"])).status_code == 404
    assert client.get(reverse("casework:youth_case", args=["x" * 300])).status_code == 404
    assert client.get(action_url(case, "explode")).status_code == 404


# --- the action forms ----------------------------------------------------------------


def test_answer_an_information_request(client, tree):
    case = case_in(tree, CaseState.AWAITING_YOUTH)
    login(client, tree.youth)
    assert client.get(action_url(case, "answer")).status_code == 200
    response = client.post(
        action_url(case, "answer"), {"version": case.version, "answer": "附上成绩单"}
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == CaseState.COORDINATING
    assert case.messages.filter(kind=CaseMessage.Kind.ANSWER).exists()


def test_an_empty_answer_is_refused_beside_the_field(client, tree):
    case = case_in(tree, CaseState.AWAITING_YOUTH)
    login(client, tree.youth)
    response = client.post(action_url(case, "answer"), {"version": case.version, "answer": "   "})
    assert response.status_code == 400
    assert "answer" in response.context["form"].errors
    assert Case.objects.get(pk=case.pk).state == CaseState.AWAITING_YOUTH


def test_a_stale_form_says_someone_changed_the_case(client, tree):
    case = case_in(tree, CaseState.AWAITING_YOUTH)
    stale = case.version - 1
    login(client, tree.youth)
    response = client.post(action_url(case, "answer"), {"version": stale, "answer": "我的回答"})
    assert response.status_code == 409
    form = response.context["form"]
    assert form.non_field_errors()
    assert "我的回答" in response.content.decode()  # what was typed is kept
    assert form["version"].value() == str(case.version)  # resending now acts knowingly
    assert Case.objects.get(pk=case.pk).state == CaseState.AWAITING_YOUTH


@pytest.mark.parametrize("version", ["", "abc", "-1", "1" * 40])
def test_a_mangled_version_is_a_clear_error(client, tree, version):
    case = case_in(tree, CaseState.AWAITING_YOUTH)
    login(client, tree.youth)
    response = client.post(action_url(case, "answer"), {"version": version, "answer": "回答"})
    assert response.status_code == 400
    assert response.context["form"].non_field_errors()


def test_withdraw(client, tree):
    case = submit(tree)
    login(client, tree.youth)
    # without the confirmation nothing happens
    response = client.post(action_url(case, "withdraw"), {"version": case.version})
    assert response.status_code == 400
    assert "confirm" in response.context["form"].errors
    response = client.post(
        action_url(case, "withdraw"), {"version": case.version, "confirm": "on", "reason": "已解决"}
    )
    assert response.status_code == 302
    assert Case.objects.get(pk=case.pk).state == CaseState.WITHDRAWN


def test_an_action_the_state_does_not_allow_is_a_clear_error(client, tree):
    case = submit(tree)
    login(client, tree.youth)
    response = client.post(
        action_url(case, "rate"),
        {"version": case.version, "timeliness": 5, "attitude": 5, "outcome": 5, "solved": "solved"},
    )
    assert response.status_code == 400
    assert response.context["form"].non_field_errors()


def test_appeal_a_rejection(client, tree):
    case = case_in(tree, CaseState.REJECTED)
    login(client, tree.youth)
    page = client.get(reverse("casework:youth_case", args=[case.reference]))
    assert "appeal" in [a["slug"] for a in page.context["actions"]]
    response = client.post(action_url(case, "appeal"), {"version": case.version, "statement": ""})
    assert response.status_code == 400
    assert "statement" in response.context["form"].errors
    response = client.post(
        action_url(case, "appeal"), {"version": case.version, "statement": "我不是重复提交"}
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == CaseState.SUBMITTED and case.org == tree.city


def test_rate_with_stars_and_solved(client, tree):
    case = case_in(tree, CaseState.FEEDBACK_GIVEN)
    login(client, tree.youth)
    page = client.get(action_url(case, "rate")).content.decode()
    assert page.count('type="radio"') == 5 * 3 + 3
    bad = client.post(
        action_url(case, "rate"),
        {"version": case.version, "timeliness": "9", "attitude": "x", "solved": "perhaps"},
    )
    assert bad.status_code == 400
    assert {"timeliness", "attitude", "outcome", "solved"} <= set(bad.context["form"].errors)
    response = client.post(
        action_url(case, "rate"),
        {
            "version": case.version,
            "timeliness": "4",
            "attitude": "5",
            "outcome": "3",
            "solved": "partly",
            "comment": "老师很耐心",
        },
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == CaseState.CLOSED
    assert (case.rating.timeliness, case.rating.solved) == (4, "partly")


def test_dispute_the_outcome(client, tree):
    case = case_in(tree, CaseState.FEEDBACK_GIVEN)
    login(client, tree.youth)
    assert client.post(action_url(case, "dispute"), {"version": case.version}).status_code == 400
    response = client.post(
        action_url(case, "dispute"), {"version": case.version, "reason": "学校并没有处理"}
    )
    assert response.status_code == 302
    assert Case.objects.get(pk=case.pk).state == CaseState.COORDINATING


def test_staff_cannot_use_the_youth_pages_for_a_case(client, tree):
    case = case_in(tree, CaseState.FEEDBACK_GIVEN)
    login(client, tree.handler)
    response = client.post(
        action_url(case, "rate"),
        {"version": case.version, "timeliness": 5, "attitude": 5, "outcome": 5, "solved": "solved"},
    )
    assert response.status_code == 404
    assert Case.objects.get(pk=case.pk).state == CaseState.FEEDBACK_GIVEN


# --- the plain-words timeline (pure) -------------------------------------------------


def test_internal_events_are_left_out_of_the_plain_timeline(tree):
    case = case_in(tree, CaseState.COORDINATING)
    services.case_comment(case=case, actor=tree.handler, body="内部")
    events = list(case.events.all())
    names = {tree.haizhu.pk: "海珠区团委", tree.station.pk: "江南西青年之家"}
    lines = plain_timeline(events, names)
    kinds_told = [e.kind for e in events if sentence(e, names)]
    assert "comment" not in kinds_told
    assert len(lines) == len(kinds_told)
    assert any("江南西青年之家" in line.text for line in lines)


# --- complaints ----------------------------------------------------------------------


def test_complain_about_the_handling(client, tree):
    case = case_in(tree, CaseState.COORDINATING)
    login(client, tree.youth)
    page = client.get(reverse("casework:youth_case", args=[case.reference]))
    assert "complain" in [a["slug"] for a in page.context["actions"]]
    empty = client.post(action_url(case, "complain"), {"version": case.version, "body": " "})
    assert empty.status_code == 400
    assert "body" in empty.context["form"].errors
    response = client.post(
        action_url(case, "complain"), {"version": case.version, "body": "一直没人联系我"}
    )
    assert response.status_code == 302
    assert case.complaints.count() == 1
    page = client.get(reverse("casework:youth_case", args=[case.reference])).content.decode()
    assert "一直没人联系我" in page


def test_nul_characters_never_reach_the_database(client, tree):
    case = submit(tree)
    login(client, tree.youth)
    assert client.get("/my/cases/YV-%00/").status_code == 404
    assert client.get(reverse("casework:youth_org_search"), {"q": "海\x00珠"}).status_code == 200
    response = client.post(
        reverse("casework:youth_new"), request_data(tree, org_q="\x00", title="a\x00b")
    )
    assert response.status_code == 400
    assert "title" in response.context["form"].errors
    assert Case.objects.count() == 1 and case.pk
