"""Business-time arithmetic: plain functions over a plain calendar, no database.

A ``BusinessCalendar`` knows the platform's time zone, the working-hour
intervals of a working day, the public holidays and the adjusted working days
(调休) that turn a weekend day into a working day. ``add`` moves a point in time
forward by an amount of working time; ``between`` measures the working time
between two points. Both work in the calendar's local time and return aware
datetimes, so a clock that starts at 23:30 UTC starts on the right local day.

The calendar rows live in ``workflows.models`` (CalendarDay, WorkingHours);
``workflows.sla.current_calendar()`` builds one calendar from them per process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

DEFAULT_TIME_ZONE = "Asia/Shanghai"
DEFAULT_HOURS = ((time(9, 0), time(18, 0)),)
SATURDAY, SUNDAY = 5, 6
# A clock never looks further ahead than this for a working day (a guard, not a rule).
MAX_DAYS_AHEAD = 3 * 366


def parse_hours(spec: Iterable[Iterable[str]]) -> tuple[tuple[time, time], ...]:
    """``[["09:00", "12:00"], ["13:30", "18:00"]]`` → sorted, non-empty time intervals."""
    intervals = []
    for start, end in spec:
        begin, finish = time.fromisoformat(str(start)), time.fromisoformat(str(end))
        if finish <= begin:
            raise ValueError(f"working hours {start}-{end}: the end must be after the start")
        intervals.append((begin, finish))
    intervals.sort()
    for (_, end), (start, _) in pairwise(intervals):
        if start < end:
            raise ValueError("working-hour intervals overlap")
    if not intervals:
        raise ValueError("a working day needs at least one interval")
    return tuple(intervals)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working time in one time zone: working hours, holidays and adjusted working days."""

    time_zone: str = DEFAULT_TIME_ZONE
    hours: tuple[tuple[time, time], ...] = DEFAULT_HOURS
    holidays: frozenset[date] = frozenset()
    # Weekend days that are working days (调休), which win over the weekend rule.
    workdays: frozenset[date] = frozenset()
    weekend: frozenset[int] = frozenset({SATURDAY, SUNDAY})
    tz: ZoneInfo = field(init=False, repr=False, compare=False)
    # Each day's working intervals, made once: every clock that moves walks the same
    # few days (the calendar is immutable, so they never change).
    _days: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "tz", ZoneInfo(self.time_zone))
        object.__setattr__(self, "_days", {})

    @property
    def day_length(self) -> timedelta:
        """The working time of one working day."""
        return sum((_seconds_between(a, b) for a, b in self.hours), timedelta(0))

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() not in self.weekend and day not in self.holidays

    def _intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working intervals of ``day`` as aware local datetimes (empty on a day off)."""
        found = self._days.get(day)
        if found is None:
            found = self._days[day] = (
                tuple(
                    (
                        datetime.combine(day, a, tzinfo=self.tz),
                        datetime.combine(day, b, tzinfo=self.tz),
                    )
                    for a, b in self.hours
                )
                if self.is_working_day(day)
                else ()
            )
        return found

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The moment ``amount`` of working time after ``start``.

        Zero working time from outside working hours gives the next moment work
        starts: a stage begun on a Sunday has used nothing until Monday 09:00.
        """
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        if amount < timedelta(0):
            raise ValueError("amount must not be negative")
        local = start.astimezone(self.tz)
        left = amount
        day = local.date()
        for _ in range(MAX_DAYS_AHEAD):
            for begin, end in self._intervals(day):
                if end <= local:
                    continue
                begin = max(begin, local)
                available = end - begin
                if left <= available:
                    return begin + left
                left -= available
            day += timedelta(days=1)
        raise ValueError("no working time found within three years: check the calendar")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The working time from ``start`` to ``end`` (zero when ``end`` is not later)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be aware datetimes")
        if end <= start:
            return timedelta(0)
        local_start, local_end = start.astimezone(self.tz), end.astimezone(self.tz)
        total = timedelta(0)
        day = local_start.date()
        while day <= local_end.date():
            for begin, finish in self._intervals(day):
                lo, hi = max(begin, local_start), min(finish, local_end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def next_working_start(self, moment: datetime) -> datetime:
        """The first working moment at or after ``moment``."""
        return self.add(moment, timedelta(0))


def _seconds_between(a: time, b: time) -> timedelta:
    return datetime.combine(date.min, b) - datetime.combine(date.min, a)


def hours(value: float) -> timedelta:
    """Business hours as a duration (policies store hours; the arithmetic uses timedelta)."""
    return timedelta(seconds=round(float(value) * 3600))


def package_days(year: int) -> list[tuple[date, str, str]]:
    """The public holidays and adjusted working days of ``year`` from ``chinese_calendar``.

    Returns (date, "holiday" or "workday", name) rows. Raises ``LookupError``
    when the installed package does not cover the year yet (the State Council
    publishes each year's schedule late in the year before; see docs/sla.md).
    """
    from chinese_calendar import constants

    covered = {d.year for d in constants.holidays}
    if year not in covered:
        raise LookupError(f"chinese_calendar {_package_version()} does not cover {year}")
    rows = [
        (day, "holiday", str(name)) for day, name in constants.holidays.items() if day.year == year
    ]
    rows += [
        (day, "workday", str(name)) for day, name in constants.workdays.items() if day.year == year
    ]
    return sorted(rows)


def package_coverage() -> tuple[str, int, int]:
    """(version, first year, last year) of the installed ``chinese_calendar`` package."""
    from chinese_calendar import constants

    years = {d.year for d in constants.holidays}
    return _package_version(), min(years), max(years)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chinese_calendar")
    except PackageNotFoundError:  # pragma: no cover - the package is a requirement
        return "?"


def calendar_from_package(years: Iterable[int], **kwargs) -> BusinessCalendar:
    """A calendar with the package's holidays and 调休 days of ``years`` (for tests, tools)."""
    holidays, workdays = set(), set()
    for year in years:
        for day, kind, _name in package_days(year):
            (workdays if kind == "workday" else holidays).add(day)
    return BusinessCalendar(holidays=frozenset(holidays), workdays=frozenset(workdays), **kwargs)
