"""How the transition and task benchmarks share out their time: the client processes are
prepared once and run one timed round at a time, taking turns with the reference.

No database here: the workers below count, and the rounds are short.
"""

import os
import time

import pytest

from bench._flowbench import Clients, rate_of


def counting_worker(index: int, clients: int):
    """An operation of 1 ms for client 0 and 20 ms for client 1; each preparation leaves a
    line in the file named by BENCH_ROUNDS_LOG."""
    with open(os.environ["BENCH_ROUNDS_LOG"], "a") as log:
        log.write(f"{index}\n")

    def step():
        time.sleep(0.001 if index == 0 else 0.02)

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


def test_clients_are_prepared_once_and_run_each_round_in_turn(tmp_path, monkeypatch):
    log = tmp_path / "prepared"
    monkeypatch.setenv("BENCH_ROUNDS_LOG", str(log))

    group = Clients(counting_worker, 2, 0.2, rounds=2)
    try:
        first = group.run_round()
        second = group.run_round()
    finally:
        group.stop()

    assert sorted(log.read_text().split()) == ["0", "1"]  # once each, not once a round
    for outcome in (first, second):
        assert len(outcome) == 2
        (done0, secs0, rss0), (done1, secs1, _rss1) = outcome
        assert secs0 >= 0.2 and secs1 >= 0.2
        assert rss0 > 0
        # in client order every round: the 1 ms client counts more than the 20 ms one
        assert done0 > done1 > 0
    assert all(not p.is_alive() for p in group.procs)


def test_a_client_that_cannot_prepare_stops_the_run_with_its_error():
    started = time.perf_counter()

    with pytest.raises(SystemExit, match="no cases for this client"):
        Clients(failing_worker, 2, 0.1, rounds=2)

    assert time.perf_counter() - started < 30
