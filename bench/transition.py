"""`python -m bench transition`: case transitions per second through the casework services.

Each operation is one service call, as a page or the API makes it: the case
lock, the FSM transition, the version bump, the timeline event on the hash
chain, the question or answer message, the outbox rows and the flow-task sync,
in one transaction. The cycle repeats forever on the same cases:

- ``case_request_info`` by the case's handler (verifying or coordinating →
  awaiting_youth: the SLA clock pauses, the step's task ends, the youth's
  turn begins);
- ``case_provide_info`` by the case's youth (awaiting_youth → back where it
  was: the clock resumes, the youth's turn ends, the step's task is new).

Each client process takes its own share of the verifying and coordinating
cases and picks one at random per operation. A person is loaded once per
process (as a logged-in session would have it) but their memberships are read
afresh for every operation, as each request does. The reference is
reference/transition.sql under pgbench with the same number of clients, in the
same run, for the same duration, the two taking turns in ``--rounds`` rounds
(``round_ratios`` in the output). One JSON line per client count on stdout.
"""

from __future__ import annotations

import random

from ._flowbench import measure, parse_args, prepare

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_transition"


def load_share(index: int, clients: int, states) -> tuple[list[list], dict]:
    """This client's cases ([id, state, handler id, youth id]) and the people acting on them."""
    from casework.models import Case, Membership, User

    handler_of = dict(
        Membership.objects.filter(role__in=("handler", "supervisor"))
        .order_by("organisation_id", "pk")
        .values_list("organisation_id", "user_id")
    )
    cases = [
        [pk, state, handler_of[org_id], youth_id]
        for pk, state, org_id, youth_id in Case.objects.filter(state__in=states)
        .extra(where=["id %% %s = %s"], params=[clients, index])
        .values_list("pk", "state", "org_id", "youth_id")
    ]
    wanted = {c[2] for c in cases} | {c[3] for c in cases}
    people = User.objects.in_bulk(wanted)
    return cases, people


def fresh(user):
    """The person as a new request sees them: memberships not read yet."""
    from casework.permissions import forget_roles

    forget_roles(user)
    return user


def worker(index: int, clients: int):
    from casework.services import case_provide_info, case_request_info

    cases, people = load_share(index, clients, ("verifying", "coordinating", "awaiting_youth"))
    rng = random.Random(index)

    def step():
        case = cases[rng.randrange(len(cases))]
        if case[1] == "awaiting_youth":
            case_provide_info(case=case[0], actor=fresh(people[case[3]]), answer="the answer")
            case[1] = "back"
        else:
            case_request_info(
                case=case[0], actor=fresh(people[case[2]]), question="when did it start?"
            )
            case[1] = "awaiting_youth"

    return step


def main(argv: list[str] | None = None) -> int:
    args = parse_args("transition", __doc__, argv, DEFAULT_URL)
    prepare(args)
    measure("transition", args, worker, cases=args.cases, cycle="request_info/provide_info")
    return 0
