"""The viewflow process and task rows of a case's human work.

A ``CaseProcess`` is one run of ``workflows.flows.CaseFlow`` for one case (a
case gets a second run when its rejection is appealed). A ``CaseTask`` is one
step of that run; the open human step sits in the inbox of the members of
``CaseTask.org``. The case row stays the truth: ``workflows.engine`` keeps
these rows in step with it inside each casework service's transaction.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.models import AbstractProcess, AbstractTask

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
        db_index=True,
        verbose_name=_("case"),
    )
    org = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="flow_tasks",
        db_index=True,
        verbose_name=_("held by"),
        help_text=_("The organisation whose members' inbox holds this task."),
    )

    class Meta:
        verbose_name = _("case task")
        verbose_name_plural = _("case tasks")
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["org", "status"], name="casetask_org_status_idx"),
            models.Index(fields=["case", "status"], name="casetask_case_status_idx"),
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
