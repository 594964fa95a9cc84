"""When a station is open and which visit slots it offers: plain functions, no database.

Weekly hours are the organisation's ``opening_hours``
(``{"mon": [["09:00", "12:00"], ["14:00", "21:00"]], ...}`` or ``{"24h": true}``).
On one date, in this order:

1. an exception for that date (closed, or open with its own hours or the usual ones);
2. a public holiday of the business calendar closes the station, unless the station
   opens on public holidays;
3. otherwise the weekly hours of that weekday (an adjusted working day, 调休, keeps
   the station's hours of its weekday: stations keep their own week).

Visit slots are whole hours counted from the start of each opening interval; a slot
that would run past the interval's end is not offered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from workflows.calendar import parse_hours

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROUND_THE_CLOCK = ((time(0, 0), time.max),)
SLOT_LENGTH = timedelta(hours=1)

Intervals = tuple[tuple[time, time], ...]


class HoursError(ValueError):
    """Opening hours that cannot be read."""


def weekly_hours(spec: Mapping | None) -> dict[int, Intervals] | None:
    """Weekday (0 = Monday) → intervals; None for a station open around the clock."""
    spec = spec or {}
    if not isinstance(spec, Mapping):
        raise HoursError("opening hours must be an object")
    if spec.get("24h"):
        return None
    unknown = set(spec) - set(DAY_KEYS) - {"24h"}
    if unknown:
        raise HoursError(f"unknown day keys: {', '.join(sorted(unknown))}")
    week: dict[int, Intervals] = {}
    for index, key in enumerate(DAY_KEYS):
        spans = spec.get(key) or []
        if spans:
            try:
                week[index] = parse_hours(spans)
            except (TypeError, ValueError) as exc:
                raise HoursError(f"{key}: {exc}") from None
    return week


def parse_exception_hours(spans: Iterable | None) -> Intervals:
    """An exception's own hours (empty: the usual hours of the day)."""
    if not spans:
        return ()
    try:
        return parse_hours(spans)
    except (TypeError, ValueError) as exc:
        raise HoursError(str(exc)) from None


@dataclass(frozen=True)
class DayRule:
    """What overrides the week on one date: ``closed`` or its own ``hours`` (may be empty)."""

    closed: bool
    hours: Intervals = ()
    note: str = ""


@dataclass(frozen=True)
class StationWeek:
    """Everything needed to say when one station is open (built once per request)."""

    week: dict[int, Intervals] | None  # None: around the clock
    exceptions: Mapping[date, DayRule]
    holidays: frozenset[date]
    opens_on_holidays: bool
    time_zone: str = "Asia/Shanghai"

    @property
    def round_the_clock(self) -> bool:
        return self.week is None

    def usual_hours(self, day: date) -> Intervals:
        if self.week is None:
            return ROUND_THE_CLOCK
        return self.week.get(day.weekday(), ())

    def hours_on(self, day: date) -> Intervals:
        """The opening intervals of ``day`` (empty: closed)."""
        rule = self.exceptions.get(day)
        if rule is not None:
            if rule.closed:
                return ()
            return rule.hours or self.usual_hours(day)
        if day in self.holidays and not self.opens_on_holidays:
            return ()
        return self.usual_hours(day)

    def why_closed(self, day: date) -> str:
        """ "exception", "holiday", "weekly" or "" (open)."""
        if self.hours_on(day):
            return ""
        if day in self.exceptions:
            return "exception"
        if day in self.holidays and not self.opens_on_holidays:
            return "holiday"
        return "weekly"

    def visit_hours_on(self, day: date, round_the_clock_visits: Intervals) -> Intervals:
        """The intervals in which visits are offered: a 24-hour station only in daytime."""
        hours = self.hours_on(day)
        if hours == ROUND_THE_CLOCK:
            return round_the_clock_visits
        return hours

    def slot_starts(
        self, start: date, days: int, round_the_clock_visits: Intervals
    ) -> list[tuple[datetime, datetime]]:
        """Every one-hour visit slot of ``days`` dates from ``start``, as aware local times."""
        tz = ZoneInfo(self.time_zone)
        slots = []
        for offset in range(days):
            day = start + timedelta(days=offset)
            for begin, end in self.visit_hours_on(day, round_the_clock_visits):
                moment = datetime.combine(day, begin, tzinfo=tz)
                close = (
                    datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
                    if end == time.max
                    else datetime.combine(day, end, tzinfo=tz)
                )
                while moment + SLOT_LENGTH <= close:
                    slots.append((moment, moment + SLOT_LENGTH))
                    moment += SLOT_LENGTH
        return slots


def format_hours(hours: Intervals) -> str:
    """ "09:00–12:00, 14:00–21:00" (24 hours as "00:00–24:00")."""
    return ", ".join(
        f"{a:%H:%M}–{'24:00' if b == time.max else format(b, '%H:%M')}" for a, b in hours
    )
