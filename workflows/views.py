"""The workbench inbox and the pages of the human steps.

The inbox lists the open steps of the member's organisations with SLA
countdown badges, filters (stage, category, overdue, reference) and pages.
Each step's page offers a few actions; each action is a small form whose
fields are the keyword arguments of exactly one casework service, and
submitting it calls that service and nothing else. The service moves the
case, and the case moves the flow (``workflows.engine.sync_case_tasks``).
The full case page with every action open to the person is
``casework.views.staff.case_page``.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views import View

from casework import permissions
from casework.forms_staff import ActionForm
from casework.models import Case, Category
from casework.services.privacy import record_personal_data_access
from casework.states import CaseState
from casework.views.staff import (
    ACCEPT,
    GIVE_FEEDBACK,
    RECORD,
    REFER,
    REJECT,
    REQUEST_INFO,
    RESOLVE,
    SCHEDULE,
    Action,
    call_service,
    refreshed_form,
    sla_badge,
)

from . import selectors

TASKS_PER_PAGE = 25
# The states whose step waits in a staff inbox (the flow's human nodes).
INBOX_STATES = [
    CaseState.SUBMITTED,
    CaseState.ACCEPTED,
    CaseState.VERIFYING,
    CaseState.COORDINATING,
    CaseState.RESOLVED,
]


class InboxFilter(forms.Form):
    """The inbox's filters; a value it does not know filters nothing rather than failing."""

    stage = forms.ChoiceField(
        label=_("Stage"),
        required=False,
        choices=[("", _("any"))] + [(s.value, s.label) for s in INBOX_STATES],
    )
    category = forms.ChoiceField(label=_("Category"), required=False)
    overdue = forms.BooleanField(label=_("Overdue only"), required=False)
    q = forms.CharField(label=_("Reference"), required=False, max_length=16)

    def __init__(self, *args, categories, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", _("any"))] + [(c.code, c.name) for c in categories]

    def apply(self, tasks, now):
        if not self.is_valid():
            return tasks
        data = self.cleaned_data
        if data["stage"]:
            tasks = tasks.filter(case__state=data["stage"])
        if data["category"]:
            tasks = tasks.filter(case__category__code=data["category"])
        if data["overdue"]:
            tasks = tasks.filter(case__stage_due_at__lt=now)
        if data["q"].strip():
            tasks = tasks.filter(case__reference__icontains=data["q"].strip())
        return tasks


@login_required
def inbox(request):
    """The open steps waiting for the person's organisations, most urgent first.

    A fixed number of queries at any page size: memberships, categories, the
    page count and the page of tasks with their case, category and organisation.
    """
    now = timezone.now()
    categories = list(Category.objects.order_by("ordering", "code"))
    filters = InboxFilter(request.GET or None, categories=categories)
    tasks = filters.apply(selectors.inbox_queryset(request.user), now)
    page = Paginator(tasks, TASKS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(task, sla_badge(task.case.stage_due_at, now)) for task in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    is_partner = any(r.role == permissions.PARTNER for r in permissions.roles_of(request.user))
    return render(
        request,
        "workflows/inbox.html",
        {
            "rows": rows,
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "is_partner": is_partner,
        },
    )


@login_required
def task_page(request, task_id: int):
    """Find the task within the user's inbox scope and hand over to its step's page."""
    task = selectors.task_for(request.user, task_id)
    if task is None:
        raise Http404(_("No such task in your inbox."))
    return task.flow_task.view(request, task=task)


class TaskView(LoginRequiredMixin, View):
    """The page of one human step: the case at a glance and one form per action."""

    template_name = "workflows/task.html"
    actions: tuple[Action, ...] = ()

    def dispatch(self, request, *args, task, **kwargs):
        self.task = task
        self.case = task.case
        return super().dispatch(request, *args, **kwargs)

    def forms_for(self, posted: Action | None = None, data=None) -> dict[str, ActionForm]:
        return {
            action.name: action.form_class(
                data if action is posted else None,
                case=self.case,
                user=self.request.user,
                prefix=action.name,
            )
            for action in self.actions
        }

    def render_page(self, forms_by_name, *, status=200):
        context = {
            "task": self.task,
            "case": self.case,
            "actions": [(a, forms_by_name[a.name]) for a in self.actions],
            "extra": self.extra_context(),
        }
        return render(self.request, self.template_name, context, status=status)

    def extra_context(self) -> dict:
        return {}

    def get(self, request):
        # The page shows the youth's words: log who opened them, for this task (docs/privacy.md).
        record_personal_data_access(actor=request.user, case=self.case, task=self.task)
        return self.render_page(self.forms_for())

    def post(self, request):
        action = next((a for a in self.actions if a.name == request.POST.get("action")), None)
        if action is None:
            return self.render_page(self.forms_for(), status=400)
        forms_by_name = self.forms_for(action, request.POST)
        form = forms_by_name[action.name]
        if not self.task.is_open:
            form.add_error(None, _("This step is already done."))
            return self.render_page(forms_by_name, status=409)
        if not form.is_valid():
            return self.render_page(forms_by_name, status=400)
        error = call_service(form, action.service, actor=request.user, case=self.case.pk)
        if error is not None:
            self.case = Case.objects.select_related("org", "category").get(pk=self.case.pk)
            forms_by_name[action.name] = refreshed_form(
                action.form_class,
                request,
                error,
                fresh_version=self.case.version,
                case=self.case,
                prefix=action.name,
            )
            return self.render_page(forms_by_name, status=400)
        messages.success(request, _("Done: %(case)s.") % {"case": self.case.reference})
        return redirect("workflows:inbox")


class IntakeView(TaskView):
    actions = (ACCEPT, REJECT)


class ScheduleVerificationView(TaskView):
    actions = (SCHEDULE, REQUEST_INFO, REJECT)


class VerificationView(TaskView):
    actions = (RECORD, REQUEST_INFO)


class CoordinationView(TaskView):
    actions = (RESOLVE, REFER, REQUEST_INFO)

    def extra_context(self) -> dict:
        referrals = self.case.coordination_tasks.select_related("partner").order_by("created_at")
        return {"referrals": list(referrals)}


class FeedbackView(TaskView):
    actions = (GIVE_FEEDBACK,)
