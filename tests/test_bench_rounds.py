"""How the transition and task benchmarks share out their time: the client processes are
prepared once and run one timed round at a time, taking turns with the reference.

No database here: the workers below count, and the rounds are short.
"""

import time

import pytest

from bench._flowbench import Clients, rate_of


def counting_worker(index: int, clients: int):
    """An operation that takes about a millisecond, longer for a higher client index."""

    def step():
        time.sleep(0.001 * (index + 1))

    return step


def failing_worker(index: int, clients: int):
    if index == 1:
        raise RuntimeError("no cases for this client")
    return lambda: None


def test_rate_is_each_clients_operations_over_its_own_seconds_summed():
    rounds = [
        [(100, 1.0, 50.0), (30, 1.0, 60.0)],
        [(300, 1.0, 55.0), (10, 1.0, 61.0)],
    ]

    # client 0: 400 in 2 s; client 1: 40 in 2 s
    assert rate_of(rounds) == pytest.approx(200 + 20)
    assert rate_of(rounds[:1]) == pytest.approx(100 + 30)


def test_clients_are_prepared_once_and_run_each_round_in_turn():
    group = Clients(counting_worker, 2, 0.2, rounds=2)
    try:
        first = group.run_round()
        between = time.perf_counter()
        time.sleep(0.3)  # the reference's turn: the clients wait, counting nothing
        second = group.run_round()
    finally:
        group.stop()

    for outcome in (first, second):
        assert [len(o) for o in outcome] == [3, 3]
        (done0, secs0, _), (done1, secs1, _) = outcome
        assert 0.2 <= secs0 < 0.3 and 0.2 <= secs1 < 0.3
        # in client order every round: the slower client counts fewer
        assert done0 > done1 > 0
    assert time.perf_counter() - between >= 0.5
    assert all(not p.is_alive() for p in group.procs)


def test_a_client_that_cannot_prepare_stops_the_run_with_its_error():
    started = time.perf_counter()

    with pytest.raises(SystemExit, match="no cases for this client"):
        Clients(failing_worker, 2, 0.1, rounds=2)

    assert time.perf_counter() - started < 30
