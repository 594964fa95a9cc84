"""The inbox and the pages of the human steps.

Each step's page offers a few actions; each action is a small form whose
fields are the keyword arguments of exactly one casework service, and
submitting it calls that service and nothing else. The service moves the
case, and the case moves the flow (``workflows.engine.sync_case_tasks``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views import View

from casework import services
from casework.errors import CaseworkError, NotFound, NotPermitted
from casework.models import Case, Organisation

from . import selectors

# --- forms: fields named after the service's keyword arguments ---------------


class ActionForm(forms.Form):
    """Carries the case version the page showed, so a stale page cannot overwrite news."""

    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, case: Case, **kwargs):
        self.case = case
        kwargs.setdefault("initial", {}).setdefault("version", case.version)
        super().__init__(*args, **kwargs)

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        data["expected_version"] = data.pop("version")
        return data


class AcceptForm(ActionForm):
    pass


class RejectForm(ActionForm):
    reason = forms.ChoiceField(
        label=_("Reason"),
        choices=[
            (value, label)
            for value, label in Case.RejectReason.choices
            if value != Case.RejectReason.NOT_CONFIRMED
        ],
    )
    note = forms.CharField(
        label=_("Note to the youth"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class ScheduleVerificationForm(ActionForm):
    station = forms.ModelChoiceField(
        label=_("Service station"),
        queryset=Organisation.objects.none(),
        required=False,
        empty_label=_("Our own verifiers"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The stations the service accepts: active ones near the holding organisation.
        org = self.case.org
        self.fields["station"].queryset = Organisation.objects.filter(
            kind=Organisation.Kind.STATION,
            is_active=True,
            path__startswith=org.parent_path() or org.path,
        ).order_by("name")


class RecordVerificationForm(ActionForm):
    confirmed = forms.TypedChoiceField(
        label=_("Finding"),
        choices=[("yes", _("facts confirmed")), ("no", _("facts not confirmed: reject"))],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    findings = forms.CharField(label=_("Findings"), widget=forms.Textarea(attrs={"rows": 4}))


class RequestInfoForm(ActionForm):
    question = forms.CharField(
        label=_("Question to the youth"), widget=forms.Textarea(attrs={"rows": 3})
    )


class ReferForm(ActionForm):
    partner = forms.ModelChoiceField(label=_("Partner body"), queryset=Organisation.objects.none())
    instructions = forms.CharField(
        label=_("Instructions"), widget=forms.Textarea(attrs={"rows": 3})
    )
    due_at = forms.DateTimeField(label=_("Due"), required=False)
    required = forms.BooleanField(label=_("Required before resolving"), required=False)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("required", True)
        super().__init__(*args, **kwargs)
        self.fields["partner"].queryset = Organisation.objects.filter(
            kind__in=[Organisation.Kind.PARTNER, Organisation.Kind.SOCIAL],
            is_active=True,
        ).order_by("path")


class ResolveForm(ActionForm):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=Case.Outcome.choices)
    note = forms.CharField(label=_("Reasons"), widget=forms.Textarea(attrs={"rows": 3}))


class FeedbackForm(ActionForm):
    message = forms.CharField(
        label=_("Message to the youth"), widget=forms.Textarea(attrs={"rows": 4})
    )


# --- actions: one form, one service -------------------------------------------


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    form_class: type[ActionForm]
    service: Callable  # the single casework service this action calls


ACCEPT = Action("accept", _("Accept"), AcceptForm, services.case_accept)
REJECT = Action("reject", _("Reject"), RejectForm, services.case_reject)
SCHEDULE = Action(
    "schedule", _("Send for verification"), ScheduleVerificationForm,
    services.case_schedule_verification,
)  # fmt: skip
RECORD = Action(
    "record", _("Record the verification"), RecordVerificationForm,
    services.case_record_verification,
)  # fmt: skip
REQUEST_INFO = Action(
    "request_info", _("Ask the youth"), RequestInfoForm, services.case_request_info
)
REFER = Action("refer", _("Refer to a partner"), ReferForm, services.case_refer)
RESOLVE = Action("resolve", _("Record the outcome"), ResolveForm, services.case_resolve)
GIVE_FEEDBACK = Action(
    "give_feedback", _("Tell the youth"), FeedbackForm, services.case_give_feedback
)


@login_required
def inbox(request):
    tasks = selectors.inbox_for(request.user)
    return render(request, "workflows/inbox.html", {"tasks": tasks})


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
                data if action is posted else None, case=self.case, prefix=action.name
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
        try:
            action.service(case=self.case.pk, actor=request.user, **form.service_kwargs())
        except NotPermitted:
            raise PermissionDenied from None
        except NotFound:
            raise Http404 from None
        except CaseworkError as error:
            for field, errors in error.field_errors.items():
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
            if not error.field_errors:
                form.add_error(None, str(error.message))
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
