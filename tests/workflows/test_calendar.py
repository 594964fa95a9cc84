"""Business-time arithmetic (workflows.calendar): pure, on the package's 2025 calendar.

Asia/Shanghai is UTC+8 all year; working hours 09:00–18:00 unless a test says otherwise.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflows.calendar import (
    BusinessCalendar,
    calendar_from_package,
    package_days,
    parse_hours,
)

CST = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)


def cst(*args) -> datetime:
    return datetime(*args, tzinfo=CST)


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return calendar_from_package([2025, 2026])


def test_package_knows_the_2025_national_day_schedule():
    days = {d: kind for d, kind, _ in package_days(2025)}

    assert all(days[date(2025, 10, n)] == "holiday" for n in range(1, 9))
    assert days[date(2025, 9, 28)] == "workday"  # a Sunday worked for Golden Week
    assert days[date(2025, 10, 11)] == "workday"  # a Saturday worked for Golden Week


def test_package_year_not_covered_is_a_clear_error():
    with pytest.raises(LookupError, match="does not cover 1999"):
        package_days(1999)


def test_plain_week_skips_the_weekend(cal):
    # given Friday 17:00, when two working hours are added, then Monday 10:00
    assert cal.add(cst(2025, 10, 17, 17), 2 * H) == cst(2025, 10, 20, 10)


def test_saturday_that_is_an_adjusted_working_day_counts(cal):
    # given Saturday 11 October 2025 is a 调休 working day
    assert cal.is_working_day(date(2025, 10, 11))
    # when a clock with two hours left runs from Friday 17:00
    due = cal.add(cst(2025, 10, 10, 17), 2 * H)
    # then it falls due on that Saturday, not on Monday
    assert due == cst(2025, 10, 11, 10)
    # and the Saturday's nine hours count when measuring
    assert cal.between(cst(2025, 10, 10, 18), cst(2025, 10, 13, 9)) == 9 * H


def test_golden_week_stops_the_clock(cal):
    # given Tuesday 30 September 2025 16:00, with 8 working hours to go
    due = cal.add(cst(2025, 9, 30, 16), 8 * H)
    # then 2 hours run on the 30th, 1–8 October are holidays, 6 hours on Thursday the 9th
    assert due == cst(2025, 10, 9, 15)
    assert cal.between(cst(2025, 9, 30, 16), due) == 8 * H
    # and the Sunday worked before the holiday (28 September) is a working day
    assert cal.add(cst(2025, 9, 27, 12), H) == cst(2025, 9, 28, 10)


def test_time_zone_boundary_uses_the_local_date(cal):
    # given 16:30 UTC on 30 September is already 00:30 on 1 October in Shanghai (a holiday)
    start = datetime(2025, 9, 30, 16, 30, tzinfo=UTC)
    # then the first working hour is 09:00–10:00 Shanghai time on 9 October
    due = cal.add(start, H)
    assert due == cst(2025, 10, 9, 10)
    assert due.astimezone(UTC) == datetime(2025, 10, 9, 2, 0, tzinfo=UTC)
    # and 00:30 UTC on a Monday is 08:30 local: the clock starts at 09:00 local
    assert cal.add(datetime(2025, 10, 20, 0, 30, tzinfo=UTC), H) == cst(2025, 10, 20, 10)
    # and 10:00 UTC on Friday is 18:00 local, the end of the working day
    friday_evening = datetime(2025, 10, 17, 10, 0, tzinfo=UTC)
    assert cal.add(friday_evening, H) == cst(2025, 10, 20, 10)


def test_another_time_zone_counts_its_own_hours():
    # given a calendar in UTC with the same working hours
    utc_cal = BusinessCalendar(time_zone="UTC")
    # then 08:30 Shanghai (00:30 UTC) is before nothing: work starts at 09:00 UTC
    assert utc_cal.add(cst(2025, 10, 20, 8, 30), H) == datetime(2025, 10, 20, 10, tzinfo=UTC)


def test_zero_time_from_a_day_off_is_the_next_working_start(cal):
    assert cal.add(cst(2025, 10, 5, 12), timedelta(0)) == cst(2025, 10, 9, 9)
    assert cal.next_working_start(cst(2025, 10, 20, 12)) == cst(2025, 10, 20, 12)


def test_lunch_break_is_not_working_time():
    lunch = BusinessCalendar(hours=parse_hours([["09:00", "12:00"], ["13:30", "18:00"]]))
    assert lunch.day_length == timedelta(hours=7, minutes=30)
    # given Monday 11:00, when two working hours are added, then 14:30 (the break skipped)
    assert lunch.add(cst(2025, 10, 20, 11), 2 * H) == cst(2025, 10, 20, 14, 30)
    assert lunch.between(cst(2025, 10, 20, 11), cst(2025, 10, 20, 14, 30)) == 2 * H


def test_add_and_between_agree_over_a_long_stage(cal):
    start = cst(2025, 9, 26, 15, 17)
    for hours in (0.5, 9, 27, 90, 240):
        amount = timedelta(hours=hours)
        assert cal.between(start, cal.add(start, amount)) == amount


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        parse_hours([["18:00", "09:00"]])
    with pytest.raises(ValueError):
        parse_hours([["09:00", "13:00"], ["12:00", "18:00"]])
    with pytest.raises(ValueError):
        BusinessCalendar().add(datetime(2025, 1, 1, 9), H)  # naive
    with pytest.raises(ValueError):
        BusinessCalendar().add(cst(2025, 1, 1, 9), -H)


def test_between_is_zero_backwards(cal):
    assert cal.between(cst(2025, 10, 20, 12), cst(2025, 10, 20, 11)) == timedelta(0)
    assert time(9) == cal.hours[0][0]


# --- the clock of a real case, with a frozen clock -------------------------------


def test_stage_paused_in_awaiting_youth_over_a_weekend_resumes_where_it_stopped(tree):
    from freezegun import freeze_time

    from casework import services
    from tests.casework.steps import submit
    from workflows import sla

    sla.load_calendar([2025])
    try:
        # given a case accepted on Thursday 23 October 2025 at 10:00: 27 working hours to verify
        with freeze_time(cst(2025, 10, 23, 9)):
            case = submit(tree)
        with freeze_time(cst(2025, 10, 23, 10)):
            case = services.case_accept(case=case, actor=tree.handler)
        # Thu 8 h + Fri 9 h + Mon 9 h + Tue 1 h
        assert case.stage_due_at == cst(2025, 10, 28, 10)

        # when the handler asks the youth on Friday at 15:00
        with freeze_time(cst(2025, 10, 24, 15)):
            case = services.case_request_info(case=case, actor=tree.handler, question="学校名称？")
        # then the clock stops with 13 working hours left (Fri 3 h, Mon 9 h, Tue 1 h)
        assert case.stage_due_at is None and case.remind_at is None
        assert case.sla_paused_remaining == timedelta(hours=13)
        assert services.sla_sweep(now=cst(2025, 10, 29, 10)).escalated == 0

        # when the youth answers on Sunday evening
        with freeze_time(cst(2025, 10, 26, 20)):
            case = services.case_provide_info(case=case, actor=tree.youth, answer="第一中学")

        # then the weekend cost nothing: 13 working hours from Monday 09:00
        assert case.state == "accepted"
        assert case.sla_paused_remaining is None
        assert case.stage_due_at == cst(2025, 10, 28, 13)
        # and the reminder (at 75% of 27 h: 6.75 h before the end) comes back too
        assert case.remind_at == cst(2025, 10, 27, 15, 15)
    finally:
        sla.invalidate()
