"""Incremental score updates agree with the full recompute; rankings are subtree-scoped."""

import pytest
from django.core.management import call_command
from django.utils import timezone

from casework import services
from casework.models import Case, CaseEvent, ScoreEvent, ScorePending, ScoreSnapshot, ScoreState
from casework.selectors_scores import org_rankings, staff_rankings
from casework.services.score_queue import apply_all
from casework.services.scores import (
    COUNTED_EVENT_KINDS,
    full_sums,
    recompute_scores,
    snapshot_rows,
    stored_sums,
)
from casework.states import CaseState
from tests.casework.steps import case_in

pytestmark = pytest.mark.django_db

LOW = {"timeliness": 1, "attitude": 2, "outcome": 1, "solved": "not_solved"}
GOOD = {"timeliness": 5, "attitude": 4, "outcome": 5, "solved": "solved"}


def busy_history(tree):
    """Ratings, an edit, a reopen, a manual escalation, a sweep escalation, a transfer."""
    a = services.case_rate(case=case_in(tree, CaseState.FEEDBACK_GIVEN), actor=tree.youth, **GOOD)
    b = services.case_rate(
        case=case_in(tree, CaseState.FEEDBACK_GIVEN, category="psychological"),
        actor=tree.youth,
        **LOW,
    )
    services.rating_edit(case=a, actor=tree.youth, **LOW)
    services.case_dispute(case=b, actor=tree.youth, reason="没解决")
    c = case_in(tree, CaseState.ACCEPTED)
    services.case_escalate(case=c, actor=tree.handler, reason="manual")
    d = case_in(tree, CaseState.SUBMITTED)
    services.case_transfer(case=d, actor=tree.handler, to_org=tree.baiyun, reason="辖区不对")
    e = case_in(tree, CaseState.SUBMITTED)
    from django.utils import timezone

    Case.objects.filter(pk=e.pk).update(stage_due_at=timezone.now() - timezone.timedelta(hours=1))
    services.sla_sweep()
    assert Case.objects.get(pk=e.pk).org_id == tree.city.pk
    # the sweep's score update follows its commit (the follow-up task's work)
    assert apply_all() == 1


def assert_agree(stored, full):
    assert set(stored) == set(full)
    for key, sums in full.items():
        for name, value in sums.as_dict().items():
            assert getattr(stored[key], name) == pytest.approx(value, rel=1e-6, abs=1e-9), (
                key,
                name,
            )


def test_incremental_values_agree_with_the_full_recompute(tree):
    # Given a history driven through the services (every hook ran)
    busy_history(tree)
    epoch, stored = stored_sums()
    # Then a recompute from scratch, scaled to the same epoch, finds the same sums
    assert_agree(stored, full_sums(epoch))
    # And after the recompute (new epoch) the scores read the same
    before = {row.subject_id: row.scores for row in org_rankings(tree.province_supervisor)}
    recompute_scores(reattribute=True)
    after = {row.subject_id: row.scores for row in org_rankings(tree.province_supervisor)}
    for org, scores in before.items():
        assert after[org].evaluation == pytest.approx(scores.evaluation, abs=1e-6)
        assert after[org].index == pytest.approx(scores.index, abs=1e-6)
    # The escalation away and the reopen were counted for Haizhu
    haizhu = ScoreState.objects.get(key=f"org:{tree.haizhu.pk}")
    assert haizhu.escalated_away > 0 and haizhu.reopened > 0 and haizhu.arrived > 0


def test_a_sweep_queues_its_score_update_and_the_follow_up_applies_it_once(tree):
    from django.utils import timezone

    # given a breached case, swept
    case = case_in(tree, CaseState.SUBMITTED)
    Case.objects.filter(pk=case.pk).update(
        stage_due_at=timezone.now() - timezone.timedelta(hours=1)
    )
    before = ScoreState.objects.filter(key=f"org:{tree.city.pk}").first()
    assert services.sla_sweep().escalated == 1
    # then the sweep's transaction queued the update instead of writing the scores
    [pending] = ScorePending.objects.all()
    assert pending.event.kind == "escalated" and pending.category_id == case.category_id
    assert ScoreState.objects.filter(key=f"org:{tree.city.pk}").first() == before
    # and the follow-up adds it once: the city gained an arrival, Haizhu an escalation away
    assert apply_all() == 1
    assert apply_all() == 0
    assert ScoreState.objects.get(key=f"org:{tree.city.pk}").arrived > 0
    assert ScoreState.objects.get(key=f"org:{tree.haizhu.pk}").escalated_away > 0
    epoch, stored = stored_sums()
    assert_agree(stored, full_sums(epoch))


def test_the_recompute_counts_pending_updates_once(tree):
    from django.utils import timezone

    # given a sweep escalation whose score update is still queued
    case = case_in(tree, CaseState.SUBMITTED)
    Case.objects.filter(pk=case.pk).update(
        stage_due_at=timezone.now() - timezone.timedelta(hours=1)
    )
    services.sla_sweep()
    assert ScorePending.objects.count() == 1
    # when the nightly recompute runs first, it counts the event and forgets the queue row
    recompute_scores()
    assert ScorePending.objects.count() == 0
    # so the follow-up adds nothing, and the stored sums still agree with a full count
    assert apply_all() == 0
    epoch, stored = stored_sums()
    assert_agree(stored, full_sums(epoch))


def expected_score_events() -> set[tuple]:
    """The counted events' narrow copies as derived from the timeline and the cases."""
    rows = set()
    for event_id, kind, org_id, at, payload, category_id in CaseEvent.objects.filter(
        kind__in=COUNTED_EVENT_KINDS
    ).values_list("id", "kind", "org_id", "at", "payload", "case__category_id"):
        from_org = (payload or {}).get("from_org") if kind == "escalated" else None
        rows.add((event_id, category_id, org_id, from_org, kind, at))
    return rows


def stored_score_events() -> set[tuple]:
    return set(
        ScoreEvent.objects.values_list(
            "event_id", "category_id", "org_id", "from_org_id", "kind", "at"
        )
    )


def test_every_counted_event_has_its_narrow_copy(tree):
    # Given a history driven through the services, the sweep included
    busy_history(tree)
    # Then the database wrote one copy per counted event (routed, escalated, transferred,
    # disputed), with its case's category and the organisation an escalation left
    stored = stored_score_events()
    assert stored == expected_score_events()
    assert {row[4] for row in stored} >= {"routed", "escalated", "transferred", "disputed"}
    assert any(row[3] is not None for row in stored if row[4] == "escalated")


def one_event_of_every_kind(tree, case) -> list[CaseEvent]:
    """Unsaved events of every kind for ``case``, after its last one."""
    from casework.events import EventKind

    last = CaseEvent.objects.filter(case=case).order_by("-seq").values_list("seq", flat=True)[0]
    now = timezone.now()
    return [
        CaseEvent(
            case=case,
            seq=last + n,
            kind=kind,
            org_id=tree.haizhu.pk,
            at=now,
            payload={"from_org": tree.baiyun.pk} if kind == "escalated" else {},
            hash="0" * 64,
        )
        for n, kind in enumerate(EventKind.values, start=1)
    ]


def test_the_copies_follow_exactly_the_counted_kinds(tree):
    # Given one event of every kind appended to a case, one statement each
    case = case_in(tree, CaseState.SUBMITTED)
    before = stored_score_events()
    for event in one_event_of_every_kind(tree, case):
        event.save(force_insert=True)
    # Then exactly the kinds the scores count got a copy (the trigger's list of kinds is
    # the one casework.services.scores counts)
    added = stored_score_events() - before
    assert sorted(row[4] for row in added) == sorted(COUNTED_EVENT_KINDS)
    assert {row[1] for row in added} == {case.category_id}
    assert [row[3] for row in added if row[4] == "escalated"] == [tree.baiyun.pk]


def test_events_appended_in_one_statement_get_their_copies_in_it(tree):
    # Given a case, and events of every kind appended by one multi-row INSERT (as the
    # SLA sweep's batch statement appends its escalations)
    case = case_in(tree, CaseState.SUBMITTED)
    before = stored_score_events()
    CaseEvent.objects.bulk_create(one_event_of_every_kind(tree, case))
    # Then exactly the counted ones got a copy, with the case's category
    added = stored_score_events() - before
    assert sorted(row[4] for row in added) == sorted(COUNTED_EVENT_KINDS)
    assert {row[1] for row in added} == {case.category_id}
    assert stored_score_events() == expected_score_events()


def test_the_recompute_updates_adds_and_removes_rows(tree):
    # Given stored rows where one subject lost its row and a stale one has a row
    busy_history(tree)
    recompute_scores()
    kept = set(ScoreState.objects.values_list("key", flat=True))
    lost = f"org:{tree.haizhu.pk}"
    ScoreState.objects.filter(key=lost).delete()
    ScoreState.objects.filter(key=f"user:{tree.handler.pk}").update(weight=1234.0)
    ScoreState.objects.create(key="org:987654", org_id=987654, weight=5.0)
    # When the scores are recomputed
    rows = recompute_scores()
    # Then every subject has exactly its recomputed row
    epoch, stored = stored_sums()
    assert set(stored) == kept and rows == len(kept)
    assert_agree(stored, full_sums(epoch))


@pytest.mark.postgres
def test_a_recategorised_case_moves_its_attribution_copies_with_it(tree):
    from casework.models import ScoreShare

    # Given two rated study cases (their attribution rows carry the case's category)
    study, legal = tree.category("study"), tree.category("legal")
    a = services.case_rate(
        case=case_in(tree, CaseState.FEEDBACK_GIVEN, category="study"), actor=tree.youth, **GOOD
    )
    b = services.case_rate(
        case=case_in(tree, CaseState.FEEDBACK_GIVEN, category="study"), actor=tree.youth, **LOW
    )
    assert set(ScoreShare.objects.filter(case=a).values_list("category_id", flat=True)) == {
        study.pk
    }

    # When one is re-categorised, by a model save and by a queryset update
    def copies():
        return set(ScoreShare.objects.filter(case=a).values_list("category_id", flat=True))

    a.category = legal
    a.save()
    assert copies() == {legal.pk}
    Case.objects.filter(pk=a.pk).update(category=study)
    assert copies() == {study.pk}
    Case.objects.filter(pk=a.pk).update(category=legal)
    # Then its copies follow in the same transaction and the other case's stay
    assert set(ScoreShare.objects.filter(case=b).values_list("category_id", flat=True)) == {
        study.pk
    }

    # And so do the copies of its counted events (its routing), the other case's stay
    def event_copies(case):
        ids = CaseEvent.objects.filter(case=case).values_list("id", flat=True)
        return set(
            ScoreEvent.objects.filter(event_id__in=ids).values_list("category_id", flat=True)
        )

    assert event_copies(a) == {legal.pk} and event_copies(b) == {study.pk}
    assert stored_score_events() == expected_score_events()
    # And the recompute counts the rating in the new category, as a join with the cases would
    sums = full_sums(timezone.now())
    org = tree.haizhu.pk
    assert sums[f"org:{org}:cat:{legal.pk}"].weight > 0
    assert sums[f"org:{org}:cat:{study.pk}"].weight == pytest.approx(
        sums[f"org:{org}"].weight - sums[f"org:{org}:cat:{legal.pk}"].weight
    )


def test_the_command_recomputes_with_a_progress_bar_and_writes_the_trend(tree, capsys):
    busy_history(tree)
    call_command("recompute_scores", "--reattribute")
    out = capsys.readouterr()
    assert "Recomputed" in out.out
    assert "attribution" in out.err and "100%" in out.err
    assert ScoreSnapshot.objects.filter(key=f"org:{tree.haizhu.pk}").exists()
    row = next(r for r in org_rankings(tree.city_supervisor) if r.subject_id == tree.haizhu.pk)
    assert row.trend and row.change == pytest.approx(0, abs=1e-6)


def test_the_snapshot_in_sql_matches_the_formulas(tree):
    # Given a history, recomputed (the rows scaled to now) with today's snapshot
    busy_history(tree)
    now = timezone.now()
    recompute_scores(now=now)
    _, stored = stored_sums()
    day = timezone.localdate(now)
    # Then every row of the snapshot is what casework.scores computes from the same sums
    expected = {row[1]: row[5:] for row in snapshot_rows(stored, day=day)}
    written = {
        key: values
        for key, *values in ScoreSnapshot.objects.filter(day=day).values_list(
            "key", "evaluation", "effectiveness", "index", "ratings"
        )
    }
    assert set(written) == set(expected) and len(written) > 5
    for key, values in expected.items():
        assert written[key] == pytest.approx(list(values), rel=1e-9, abs=1e-9), key
    assert any(values[2] > 0 for values in expected.values())


def test_a_rerun_on_the_same_day_replaces_that_days_snapshot_only(tree):
    # Given a history recomputed yesterday and today
    busy_history(tree)
    now = timezone.now()
    today, yesterday = timezone.localdate(now), timezone.localdate(now - timezone.timedelta(days=1))
    recompute_scores(now=now - timezone.timedelta(days=1))
    recompute_scores(now=now)
    kept = dict(ScoreSnapshot.objects.filter(day=yesterday).values_list("key", "index"))
    subjects = ScoreState.objects.count()
    assert len(kept) == subjects > 5
    # When the recompute runs again today, after a new rating
    services.case_rate(case=case_in(tree, CaseState.FEEDBACK_GIVEN), actor=tree.youth, **GOOD)
    recompute_scores(now=now)
    # Then today's rows are replaced (one per subject, by its (key, day) primary key), with
    # the scores of the second run, and yesterday's are untouched
    _, stored = stored_sums()
    expected = {row[1]: row[7] for row in snapshot_rows(stored, day=today)}
    written = dict(ScoreSnapshot.objects.filter(day=today).values_list("key", "index"))
    assert written == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert dict(ScoreSnapshot.objects.filter(day=yesterday).values_list("key", "index")) == kept
    assert ScoreSnapshot.objects.count() == len(kept) + len(written)
    row = ScoreSnapshot.objects.get(key=f"org:{tree.haizhu.pk}", day=today)
    assert row.pk == (f"org:{tree.haizhu.pk}", today)


def test_the_snapshot_is_keyed_by_key_and_day_with_an_index_on_the_day(tree):
    from django.db import IntegrityError, connection, transaction

    table = ScoreSnapshot._meta.db_table
    with connection.cursor() as cursor:
        columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
        constraints = connection.introspection.get_constraints(cursor, table)
    assert "id" not in columns
    (primary,) = [c for c in constraints.values() if c["primary_key"]]
    assert sorted(primary["columns"]) == ["day", "key"]
    if connection.vendor == "postgresql":  # (SQLite lists them in the table's order)
        assert primary["columns"] == ["key", "day"]  # the trends read by key, then day
    assert any(c["index"] and c["columns"] == ["day"] for c in constraints.values())
    # a second row for the same subject and day is refused
    today = timezone.localdate()
    values = {"evaluation": 50, "effectiveness": 50, "index": 50, "ratings": 1}
    ScoreSnapshot.objects.create(key="org:1", day=today, **values)
    with pytest.raises(IntegrityError), transaction.atomic():
        ScoreSnapshot.objects.create(key="org:1", day=today, **values)


def test_the_beat_task_is_scheduled_and_runs(tree, settings):
    from casework.tasks import recompute_scores_task

    assert settings.CELERY_BEAT_SCHEDULE["recompute-scores"]["task"] == "casework.recompute_scores"
    busy_history(tree)
    # run in this process: with a real broker (CI) .delay() would only publish it
    assert recompute_scores_task.apply().get() > 0


def test_rankings_show_only_the_callers_subtree(tree):
    busy_history(tree)
    city = {row.subject_id for row in org_rankings(tree.city_supervisor)}
    assert tree.haizhu.pk in city and tree.city.pk in city
    assert tree.province.pk not in city and tree.other_city.pk not in city
    assert org_rankings(tree.handler) == []
    assert staff_rankings(tree.youth) == []
    district = org_rankings(tree.province_supervisor, level=3)
    assert {row.level for row in district} == {3}
    assert [row.rank for row in district] == list(range(1, len(district) + 1))
    study = tree.category("study").pk
    by_category = org_rankings(tree.city_supervisor, category_id=study)
    assert all(0 <= row.scores.index <= 100 for row in by_category)
    staff = {row.subject_id for row in staff_rankings(tree.city_supervisor)}
    assert tree.handler.pk in staff and tree.province_handler.pk not in staff


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_incremental_and_full_agree_on_postgresql(tree):
    busy_history(tree)
    epoch, stored = stored_sums()
    assert_agree(stored, full_sums(epoch))
