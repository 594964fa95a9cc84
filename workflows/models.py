"""The viewflow process and task rows of a case's human work.

A ``CaseProcess`` is one run of ``workflows.flows.CaseFlow`` for one case (a
case gets a second run when its rejection is appealed). A ``CaseTask`` is one
step of that run; the open human step sits in the inbox of the members of
``CaseTask.org``. The case row stays the truth: ``workflows.engine`` keeps
these rows in step with it inside each casework service's transaction.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.models import AbstractProcess, AbstractTask
from viewflow.workflow.status import STATUS

from casework.models import Case, Organisation

# Statuses of a task that still waits for someone (viewflow's STATUS values).
OPEN_TASK_STATUSES = ("NEW", "ASSIGNED", "STARTED")


class CaseProcess(AbstractProcess):
    """One run of the case flow for one case."""

    case = models.ForeignKey(
        Case,
        on_delete=models.PROTECT,
        related_name="processes",
        db_index=True,
        verbose_name=_("case"),
    )

    class Meta:
        verbose_name = _("case process")
        verbose_name_plural = _("case processes")
        ordering = ["-created"]

    def __str__(self):
        return f"{self.case_id} · {self.get_status_display()}"


class CaseTask(AbstractTask):
    """One step of a case process; a human step is held by ``org``.

    ``case`` repeats ``process.case`` so that inboxes and bulk sweeps reach the
    case without going through the process table.
    """

    process = models.ForeignKey(
        CaseProcess,
        on_delete=models.CASCADE,
        related_name="task_set",  # viewflow's End and cancel use process.task_set
        verbose_name=_("process"),
    )
    case = models.ForeignKey(
        Case,
        on_delete=models.PROTECT,
        related_name="flow_tasks",
        db_index=False,  # (case, status) below serves every lookup
        verbose_name=_("case"),
    )
    org = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="flow_tasks",
        # Not indexed, so that moving a task to another holder (an escalation) is an
        # update in place (HOT, workflows migration 0006): open tasks are found by
        # holder through the case indexes (workflows.selectors), and the holder of
        # an open task is its case's organisation or, for verification, station.
        db_index=False,
        verbose_name=_("held by"),
        help_text=_("The organisation whose members' inbox holds this task."),
    )

    # viewflow's fields without the single-column indexes that no query here uses: every
    # escalation rewrites the task row, and each index costs an entry per rewrite
    # (docs/performance.md). Open tasks are found through (case, status); this project
    # has no timer or external tasks, and nothing filters by status or permission
    # content type alone.
    status = models.CharField(
        _("Status"),
        choices=STATUS.choices,
        default=STATUS.NEW,
        max_length=50,
    )
    scheduled = models.DateTimeField(_("Scheduled"), blank=True, null=True)
    external_task_id = models.CharField(
        blank=True,
        max_length=50,
        null=True,
        verbose_name=_("External Task ID"),
    )
    owner_permission_content_type = models.ForeignKey(
        to=ContentType, on_delete=models.CASCADE, blank=True, null=True, db_index=False
    )
    # Looked up by person only (viewflow's "my tasks": ``owner=user``): the partial index
    # below holds the owned tasks, so moving an unowned task writes no entry to it.
    owner = models.ForeignKey(
        blank=True,
        null=True,
        db_index=False,
        on_delete=models.CASCADE,
        to=settings.AUTH_USER_MODEL,
        verbose_name=_("Owner"),
    )

    class Meta:
        verbose_name = _("case task")
        verbose_name_plural = _("case tasks")
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["case", "status"], name="casetask_case_status_idx"),
            models.Index(
                fields=["owner"], name="casetask_owner_idx", condition=Q(owner__isnull=False)
            ),
        ]

    def save(self, *args, **kwargs):
        # viewflow creates gateway and end tasks itself; they inherit the case
        # from the in-memory process, so this costs no query.
        if self.case_id is None:
            self.case_id = self.process.case_id
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_TASK_STATUSES


# --- SLA policies and business calendar (helper E) ---------------------------
#
# Read by workflows.sla (cached per process) and workflows.calendar (pure
# arithmetic). Saving or deleting a row drops this process's cache; other
# processes reload within settings.SLA_CACHE_SECONDS.


def _forget_sla_cache():
    from . import sla

    sla.invalidate()


class SlaPolicyQuerySet(models.QuerySet):
    def delete(self):
        result = super().delete()
        _forget_sla_cache()
        return result

    def update(self, **kwargs):
        result = super().update(**kwargs)
        _forget_sla_cache()
        return result


class SlaCachedModel(models.Model):
    """Rows that the SLA cache is built from: any write drops this process's cache."""

    objects = SlaPolicyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        _forget_sla_cache()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        _forget_sla_cache()
        return result


def _fraction(value):
    if not 0 < value < 1:
        raise ValidationError(_("Give a fraction between 0 and 1, such as 0.75."))


class SlaPolicy(SlaCachedModel):
    """How long each stage may take for one category and urgency (blank: any).

    The most specific policy wins: category and urgency, then category, then
    urgency, then the default row (both blank). A policy for any urgency is
    shortened or lengthened by ``SLA_URGENCY_FACTOR``; one written for an
    urgency applies as written. Stage times are business hours on the platform
    calendar; the rating window is in calendar days.
    """

    category = models.ForeignKey(
        "casework.Category",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sla_policies",
        verbose_name=_("category"),
        help_text=_("Blank: every category without a policy of its own."),
    )
    urgency = models.CharField(
        _("urgency"),
        max_length=10,
        blank=True,
        choices=Case.Urgency.choices,
        help_text=_("Blank: every urgency (scaled by the urgency factor)."),
    )
    accept_hours = models.DecimalField(
        _("hours to accept"), max_digits=7, decimal_places=2, default=9
    )
    verify_hours = models.DecimalField(
        _("hours to verify"), max_digits=7, decimal_places=2, default=27
    )
    resolve_hours = models.DecimalField(
        _("hours to resolve"), max_digits=7, decimal_places=2, default=90
    )
    feedback_hours = models.DecimalField(
        _("hours to give feedback"), max_digits=7, decimal_places=2, default=18
    )
    reminder_fraction = models.DecimalField(
        _("remind at"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.75"),
        validators=[_fraction],
        help_text=_("Share of each stage's time after which the holder is reminded (0.75)."),
    )
    rating_window_days = models.PositiveSmallIntegerField(
        _("rating window (calendar days)"), default=7
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["category__ordering", "category__code", "urgency"]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "urgency"],
                condition=Q(category__isnull=False),
                name="slapolicy_category_urgency_unique",
            ),
            models.UniqueConstraint(
                fields=["urgency"],
                condition=Q(category__isnull=True),
                name="slapolicy_any_category_urgency_unique",
            ),
            models.CheckConstraint(
                condition=Q(accept_hours__gt=0)
                & Q(verify_hours__gt=0)
                & Q(resolve_hours__gt=0)
                & Q(feedback_hours__gt=0),
                name="slapolicy_positive_hours",
            ),
        ]

    def __str__(self):
        category = self.category or _("any category")
        urgency = self.get_urgency_display() if self.urgency else _("any urgency")
        return f"{category} · {urgency}"

    def as_policy(self):
        from .calendar import hours
        from .sla import Policy

        return Policy(
            accept=hours(self.accept_hours),
            verify=hours(self.verify_hours),
            resolve=hours(self.resolve_hours),
            feedback=hours(self.feedback_hours),
            reminder_fraction=float(self.reminder_fraction),
            rating_window=timedelta(days=self.rating_window_days),
        )


def _default_hours():
    return [["09:00", "18:00"]]


def _default_weekend():
    return [5, 6]


class WorkingHours(SlaCachedModel):
    """The platform's working day: time zone, working-hour intervals, weekend days.

    One row (pk=1); business time is counted only inside these intervals, on
    working days.
    """

    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")
    hours = models.JSONField(
        _("working hours"),
        default=_default_hours,
        help_text=_('Intervals of a working day, e.g. [["09:00", "12:00"], ["13:30", "18:00"]].'),
    )
    weekend = models.JSONField(
        _("weekend days"),
        default=_default_weekend,
        help_text=_("Days off each week, Monday = 0 … Sunday = 6."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="workinghours_single_row")]

    def __str__(self):
        return f"{self.time_zone} " + ", ".join(f"{a}–{b}" for a, b in self.hours)

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from .calendar import parse_hours

        errors = {}
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = _("Unknown time zone, e.g. Asia/Shanghai.")
        try:
            parse_hours(self.hours or [])
        except (TypeError, ValueError):
            errors["hours"] = _('Give intervals such as [["09:00", "18:00"]].')
        if not isinstance(self.weekend, list) or not all(
            isinstance(d, int) and 0 <= d <= 6 for d in self.weekend
        ):
            errors["weekend"] = _("Give a list of weekday numbers, Monday = 0 … Sunday = 6.")
        if errors:
            raise ValidationError(errors)


class CalendarDay(SlaCachedModel):
    """A day that differs from the weekly rule: a public holiday or an adjusted working day.

    Preloaded from the ``chinese_calendar`` package (``load_calendar``) and
    editable here; rows an admin wrote are never overwritten by a reload.
    """

    class Kind(models.TextChoices):
        HOLIDAY = "holiday", _("public holiday (day off)")
        WORKDAY = "workday", _("adjusted working day (调休)")

    class Source(models.TextChoices):
        PACKAGE = "package", _("loaded from chinese_calendar")
        ADMIN = "admin", _("entered by an administrator")

    date = models.DateField(_("date"), unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=60, blank=True)
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.ADMIN
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        ordering = ["date"]

    def __str__(self):
        return f"{self.date} · {self.get_kind_display()}"
