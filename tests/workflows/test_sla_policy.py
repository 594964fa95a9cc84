"""SLA policies, working hours and calendar days as data (workflows.models, workflows.sla)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from freezegun import freeze_time

from tests.casework.steps import advance, submit
from workflows import sla
from workflows.calendar import hours
from workflows.models import CalendarDay, SlaPolicy, WorkingHours

CST = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2025, 10, 20, 10, tzinfo=CST)


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


@pytest.fixture(autouse=True)
def calendar_2025(db):
    sla.load_calendar([2025])
    yield
    sla.invalidate()


def submitted_on_monday(tree, **kw):
    with freeze_time(MONDAY_10):
        return submit(tree, **kw)


def test_the_default_policy_is_preloaded_in_business_hours(db):
    default = SlaPolicy.objects.get(category=None, urgency="")

    assert (default.accept_hours, default.verify_hours) == (9, 27)
    assert (default.resolve_hours, default.feedback_hours) == (90, 18)
    assert default.rating_window_days == 7
    assert WorkingHours.objects.get().hours == [["09:00", "18:00"]]


def test_most_specific_policy_wins(tree):
    study, legal = tree.category("study"), tree.category("legal")
    SlaPolicy.objects.create(category=study, urgency="urgent", accept_hours=1)
    SlaPolicy.objects.create(category=study, urgency="", accept_hours=4)
    SlaPolicy.objects.create(category=None, urgency="high", accept_hours=3)

    def accept(code, urgency):
        return sla.policy_for(category_code=code, urgency=urgency).accept

    # category and urgency: as written
    assert accept("study", "urgent") == hours(1)
    # category for any urgency: scaled by the urgency factor (high = 0.5)
    assert accept("study", "normal") == hours(4)
    assert accept("study", "high") == hours(2)
    # any category, one urgency: as written
    assert accept("legal", "high") == hours(3)
    # the default row, scaled (urgent = 0.25, low = 1.5)
    assert accept("legal", "urgent") == hours(9 * 0.25)
    assert accept("legal", "low") == hours(9 * 1.5)
    assert legal.code == "legal"


def test_an_admin_edit_applies_to_the_next_case_at_once(tree):
    assert submitted_on_monday(tree).stage_due_at == cst(2025, 10, 21, 10)

    # when an admin gives study cases two working hours to be accepted
    SlaPolicy.objects.create(category=tree.category("study"), urgency="normal", accept_hours=2)

    # then the next study case is due at noon, and other categories keep the default
    assert submitted_on_monday(tree).stage_due_at == cst(2025, 10, 20, 12)
    assert submitted_on_monday(tree, category="legal").stage_due_at == cst(2025, 10, 21, 10)


def test_urgent_cases_get_a_shorter_clock(tree):
    case = submitted_on_monday(tree, urgency="urgent")

    assert case.stage_due_at == cst(2025, 10, 20, 12, 15)  # 9 h × 0.25
    assert case.remind_at == cst(2025, 10, 20, 11, 41, 15)  # at 75%


def test_rating_window_comes_from_the_policy(tree):
    SlaPolicy.objects.filter(category=None, urgency="").update(rating_window_days=3)
    with freeze_time(MONDAY_10):
        case = advance(tree, submit(tree), "feedback_given")

    assert case.stage_due_at == MONDAY_10 + timedelta(days=3)
    assert case.remind_at is None


def test_working_hours_and_holidays_are_editable(tree):
    # given a lunch break and a local holiday on Tuesday
    hours_row = WorkingHours.objects.get()
    hours_row.hours = [["09:00", "12:00"], ["13:30", "18:00"]]
    hours_row.save()
    CalendarDay.objects.create(date=date(2025, 10, 21), kind="holiday", name="本地假日")

    # then nine working hours from Monday 10:00 end on Wednesday
    # (Mon 10–12, 13:30–18 = 6.5 h; Tue off; Wed 09:00 + 2.5 h = 11:30)
    assert submitted_on_monday(tree).stage_due_at == cst(2025, 10, 22, 11, 30)


def test_bad_working_hours_are_refused():
    with pytest.raises(ValidationError) as error:
        WorkingHours(time_zone="Mars/Olympus", hours=[["18:00", "09:00"]], weekend=[7]).clean()

    assert set(error.value.message_dict) == {"time_zone", "hours", "weekend"}


def test_bad_reminder_fraction_is_refused(db):
    policy = SlaPolicy(reminder_fraction=1.5)

    with pytest.raises(ValidationError) as error:
        policy.full_clean()

    assert "reminder_fraction" in error.value.message_dict


def test_reload_keeps_the_days_an_admin_entered(db):
    # given an admin moved a day by hand
    day = CalendarDay.objects.get(date=date(2025, 10, 8))
    day.kind, day.source = CalendarDay.Kind.WORKDAY, CalendarDay.Source.ADMIN
    day.save()

    # when the package is reloaded
    written = sla.load_calendar([2025, 1999])

    # then the admin's day stays, and the year the package lacks is reported
    assert CalendarDay.objects.get(date=date(2025, 10, 8)).kind == CalendarDay.Kind.WORKDAY
    assert written == {2025: 0, 1999: None}
    # unless the admin's days are to be overwritten
    sla.load_calendar([2025], overwrite_admin=True)
    assert CalendarDay.objects.get(date=date(2025, 10, 8)).kind == CalendarDay.Kind.HOLIDAY


def test_load_calendar_command_says_which_years_it_could_not_load(db):
    out, err = StringIO(), StringIO()

    call_command("load_calendar", "--year", "2026", "--year", "1999", stdout=out, stderr=err)

    assert "2026:" in out.getvalue()
    assert CalendarDay.objects.filter(date=date(2026, 10, 1), kind="holiday").exists()
    assert "1999: not covered" in err.getvalue()


def test_load_calendar_says_which_years_the_package_covers_and_what_was_entered_by_hand(db):
    # given a year the package does not cover, with a holiday an administrator entered
    from workflows.calendar import package_coverage

    version, first, last = package_coverage()
    beyond = last + 1
    CalendarDay.objects.create(
        date=date(beyond, 1, 1), kind="holiday", name="元旦", source=CalendarDay.Source.ADMIN
    )
    out, err = StringIO(), StringIO()
    # when the command is asked for it
    call_command("load_calendar", "--year", str(beyond), stdout=out, stderr=err)
    # then it names the package's range and the year's state, and keeps the admin's day
    assert f"chinese_calendar {version} covers {first}-{last}" in out.getvalue()
    assert f"{beyond}: not covered" in err.getvalue()
    assert "1 day(s) entered by hand" in err.getvalue()
    assert CalendarDay.objects.filter(date__year=beyond).count() == 1


def test_sla_sweep_command_prints_what_it_did(tree):
    submitted_on_monday(tree)
    out = StringIO()

    with freeze_time(cst(2025, 10, 21, 10)):
        call_command("sla_sweep", stdout=out)

    assert '"escalated": 1' in out.getvalue()


def test_beat_runs_the_sweep_every_minute_on_the_sweeps_queue(tree, settings):
    from workflows.tasks import sla_sweep_task

    entry = settings.CELERY_BEAT_SCHEDULE["sla-sweep"]
    assert entry["task"] == sla_sweep_task.name
    assert entry["schedule"] == 60.0
    assert entry["options"]["queue"] == "sweeps"
    submitted_on_monday(tree)

    with freeze_time(cst(2025, 10, 21, 10)):
        result = sla_sweep_task.apply().get()

    assert result["escalated"] == 1


@pytest.mark.parametrize("model", ["slapolicy", "workinghours", "calendarday"])
def test_admin_pages_open(admin_client, model):
    assert admin_client.get(f"/admin/workflows/{model}/").status_code == 200
    assert admin_client.get(f"/admin/workflows/{model}/1/change/").status_code in (200, 302)


def test_a_day_saved_in_the_admin_is_the_administrators(admin_client):
    response = admin_client.post(
        "/admin/workflows/calendarday/add/",
        {"date": "2025-12-26", "kind": "holiday", "name": "本地假日"},
    )

    assert response.status_code == 302
    day = CalendarDay.objects.get(date=date(2025, 12, 26))
    assert day.source == CalendarDay.Source.ADMIN
    assert not sla.current_calendar().is_working_day(date(2025, 12, 26))
