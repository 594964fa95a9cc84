"""Concurrent bookings of one visit slot on PostgreSQL (real threads, one connection each).

The seat is taken by ``UPDATE ... SET booked = booked + 1 WHERE booked < capacity``;
PostgreSQL re-checks the condition on the row after waiting for the writer before,
so N bookings of a slot with K seats give exactly K successes, and the others a clear
``SlotFull`` refusal. The slot row itself is created by the first bookings at the same
moment too (INSERT ... ON CONFLICT DO NOTHING), so only one row may appear.
"""

from __future__ import annotations

import pytest

from casework import services
from casework.errors import CaseworkError
from casework.events import verify_case
from casework.models import Case
from casework.models_stations import Appointment, VisitSlot
from casework.services.stations import SlotFull
from tests.casework.stations_steps import free_starts, station_profile, visiting_case
from tests.casework.test_concurrency import race

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

N, K = 10, 3


@pytest.mark.parametrize("round_", range(3))
def test_parallel_bookings_of_one_slot_give_exactly_k_seats(tree, round_):
    station_profile(tree.station, seats=K)
    cases = [visiting_case(tree) for _ in range(N)]
    start = free_starts(tree.station)[round_]

    results = race(
        *[
            (lambda case=case: services.visit_book(case=case.pk, actor=tree.youth, starts_at=start))
            for case in cases
        ]
    )

    booked = [r for r in results if isinstance(r, Appointment)]
    refused = [r for r in results if isinstance(r, SlotFull)]
    unexpected = [r for r in results if not isinstance(r, Appointment | SlotFull)]
    assert not unexpected, unexpected
    assert (len(booked), len(refused)) == (K, N - K)
    assert all(r.code == "slot_full" and "starts_at" in r.field_errors for r in refused)
    slot = VisitSlot.objects.get(station=tree.station, starts_at=start)
    assert slot.booked == slot.capacity == K
    assert Appointment.objects.filter(slot=slot).count() == K
    # the refused cases are untouched; every timeline still verifies
    for case in cases:
        fresh = Case.objects.get(pk=case.pk)
        assert verify_case(fresh) is None
        has_visit = Appointment.objects.filter(case=fresh).exists()
        assert (fresh.version > case.version) is has_visit


def test_parallel_reschedules_into_the_last_seat(tree):
    station_profile(tree.station, seats=1)
    cases = [visiting_case(tree) for _ in range(4)]
    starts = free_starts(tree.station, skip=30)
    for i, case in enumerate(cases):
        services.visit_book(case=case.pk, actor=tree.youth, starts_at=starts[i + 1])
    target = starts[0]

    results = race(
        *[
            (
                lambda case=case: services.visit_reschedule(
                    case=case.pk, actor=tree.youth, starts_at=target
                )
            )
            for case in cases
        ]
    )

    assert sum(isinstance(r, Appointment) for r in results) == 1
    assert sum(isinstance(r, SlotFull) for r in results) == 3
    assert all(isinstance(r, Appointment | CaseworkError) for r in results)
    assert VisitSlot.objects.get(station=tree.station, starts_at=target).booked == 1
    # every case still holds exactly one seat
    assert sum(VisitSlot.objects.values_list("booked", flat=True)) == len(cases)
