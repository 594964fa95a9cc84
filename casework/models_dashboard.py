"""The supervisor dashboard's rollup: aggregates per organisation subtree, refreshed set-based.

``casework.services.dashboard_rollup.refresh_dashboard_rollup`` rebuilds every row
in one transaction (Celery beat every minute, ``manage.py refresh_dashboard``); no
case write touches these tables. Each row counts the cases of the **subtree** of
``org`` (the organisation and everything below it), so a dashboard reads the rows
of its root and of the root's children only: its cost depends on the number of
children, categories and weeks, not on the number of cases. ``category`` NULL is
the row for every category together (kept for organisations with children only: a
leaf's is the sum of its per-category rows). ``DashboardRollup`` (one row) says when the
figures were taken.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .models import Category, Organisation


class DashboardRollup(models.Model):
    """When the rollup was last rebuilt (one row, pk 1)."""

    as_of = models.DateTimeField(_("figures as of"))
    window_start = models.DateField(_("first week kept"))
    seconds = models.FloatField(_("seconds to rebuild"), default=0)
    rows = models.PositiveIntegerField(_("rows"), default=0)

    class Meta:
        verbose_name = _("dashboard rollup")
        verbose_name_plural = _("dashboard rollups")

    def __str__(self):
        return f"dashboard rollup as of {self.as_of:%Y-%m-%d %H:%M:%S}"


def _org():
    # No database constraint and no index of its own (the composite index leads with it):
    # the rows are rebuilt wholesale, and each index costs every rebuild a million entries.
    return models.ForeignKey(
        Organisation,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )


def _category():
    return models.ForeignKey(
        Category,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        related_name="+",
    )


class DashboardOpenStats(models.Model):
    """The open cases of a subtree by state and channel, as of the refresh."""

    org = _org()
    category = _category()
    state = models.CharField(max_length=20)
    channel = models.CharField(max_length=10)
    cases = models.IntegerField(default=0)
    overdue = models.IntegerField(default=0)  # stage deadline passed at the refresh
    on_time = models.IntegerField(default=0)  # never missed a deadline
    reopened = models.IntegerField(default=0)  # reopen_count > 0

    class Meta:
        indexes = [models.Index(fields=["org", "category"], name="dash_open_org_idx")]

    def __str__(self):
        return f"{self.org_id} · {self.category_id} · {self.state} · {self.channel}"


class DashboardWeekStats(models.Model):
    """Per week (Monday, platform time zone) and channel of a subtree's cases and events.

    ``submitted``: cases submitted that week; ``done``, ``finished``, ``on_time``,
    ``reopened``: those of them no longer open (closed, rejected, withdrawn), finished
    ones (closed), finished without a missed deadline, finished and reopened;
    ``closed``: cases closed that week; ``escalated``/``escalated_sla``: escalation
    events that week (by the escalating organisation), of them for a missed deadline.
    """

    org = _org()
    category = _category()
    week = models.DateField()
    channel = models.CharField(max_length=10)
    submitted = models.IntegerField(default=0)
    done = models.IntegerField(default=0)
    finished = models.IntegerField(default=0)
    on_time = models.IntegerField(default=0)
    reopened = models.IntegerField(default=0)
    closed = models.IntegerField(default=0)
    escalated = models.IntegerField(default=0)
    escalated_sla = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["org", "category", "week"], name="dash_week_org_idx")]

    def __str__(self):
        return f"{self.org_id} · {self.category_id} · {self.week} · {self.channel}"
