"""`python -m bench task`: human task completions per second through the case flow.

One completion is what the step's page does when its form is posted: find the
open task of the case in the person's inbox scope (``workflows.selectors.
open_task_of_case``: one query, with the case and the person's memberships),
then call the step's one service, which transitions the case, ends the task
and lets ``workflows.flows.CaseFlow`` route to the next step and create its
task, with the timeline event and the outbox rows, in one transaction.

Each client process takes its own share of the open cases and walks them
forward one step at a time, a case picked at random per completion:
intake (accept) → schedule_verification → verification (confirmed) →
coordination (resolve) → feedback (give_feedback), after which the case waits
for the youth and leaves the pool. The handler of the case's organisation
(also its verifier) does every step. The reference is reference/transition.sql
under pgbench with the same number of clients, in the same run, the two taking
turns in ``--rounds`` rounds.
"""

from __future__ import annotations

import random

from ._flowbench import measure, parse_args, prepare
from .transition import fresh, load_share

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_task"


def worker(index: int, clients: int):
    from casework import services
    from workflows.selectors import open_task_of_case

    cases, people = load_share(
        index, clients, ("submitted", "accepted", "verifying", "coordinating", "resolved")
    )
    rng = random.Random(index)
    actions = {
        "submitted": ("accepted", lambda pk, actor: services.case_accept(case=pk, actor=actor)),
        "accepted": (
            "verifying",
            lambda pk, actor: services.case_schedule_verification(case=pk, actor=actor),
        ),
        "verifying": (
            "coordinating",
            lambda pk, actor: services.case_record_verification(
                case=pk, actor=actor, confirmed=True, findings="met in person"
            ),
        ),
        "coordinating": (
            "resolved",
            lambda pk, actor: services.case_resolve(
                case=pk, actor=actor, outcome="solved", note="sorted out with the school"
            ),
        ),
        "resolved": (
            None,
            lambda pk, actor: services.case_give_feedback(
                case=pk, actor=actor, message="it is sorted out"
            ),
        ),
    }

    def step():
        i = rng.randrange(len(cases))
        case = cases[i]
        actor = fresh(people[case[2]])
        task = open_task_of_case(actor, case[0])
        if task is None:
            raise RuntimeError(f"case {case[0]} has no open task for its handler")
        after, service = actions[task.case.state]
        service(task.case_id, actor)
        if after is None:
            cases[i] = cases[-1]
            cases.pop()
        else:
            case[1] = after

    return step


def main(argv: list[str] | None = None) -> int:
    args = parse_args("task", __doc__, argv, DEFAULT_URL)
    prepare(args)
    measure("task", args, worker, cases=args.cases)
    return 0
