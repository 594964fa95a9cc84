"""Forms of the organisation workbench: one form per action, one service per form.

Each form's fields are the keyword arguments of exactly one casework service;
``service_kwargs`` hands them over. The hidden ``version`` is the case version
the page showed: the service refuses with a conflict when the case changed since.
Choice querysets hold only what the service would accept, so a tampered value
becomes a form error, never a 500.
"""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from . import permissions
from .forms import ModelChoiceField
from .models import Case, CoordinationTask, Membership, Organisation, User
from .services.routing import HOLDING_KINDS


class ActionForm(forms.Form):
    """Carries the case version the page showed, so a stale page cannot overwrite news."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    # The service's error key -> the form field that shows it, where they differ.
    error_fields: dict[str, str] = {}

    def __init__(self, *args, case: Case, user: User | None = None, **kwargs):
        self.case = case
        self.user = user
        kwargs.setdefault("initial", {}).setdefault("version", case.version)
        super().__init__(*args, **kwargs)

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        data["expected_version"] = data.pop("version")
        return data

    def form_field(self, service_field: str) -> str | None:
        """The form field that shows a service's error about ``service_field`` (None: the form)."""
        name = self.error_fields.get(service_field, service_field)
        return name if name in self.fields else None


def _reason_field(label=None):
    return forms.CharField(
        label=label or _("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def _holding_orgs():
    return Organisation.objects.filter(is_active=True, kind__in=HOLDING_KINDS).order_by("path")


# --- the state machine's actions -----------------------------------------------


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
        label=_("Note to the youth"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ScheduleVerificationForm(ActionForm):
    station = ModelChoiceField(
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
    findings = forms.CharField(
        label=_("Findings"), max_length=5000, widget=forms.Textarea(attrs={"rows": 4})
    )


class RequestInfoForm(ActionForm):
    question = forms.CharField(
        label=_("Question to the youth"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


class ReferForm(ActionForm):
    partner = ModelChoiceField(label=_("Partner body"), queryset=Organisation.objects.none())
    instructions = forms.CharField(
        label=_("Instructions"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    due_at = forms.DateTimeField(
        label=_("Due"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"],
    )
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
    note = forms.CharField(
        label=_("Reasons"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )


class FeedbackForm(ActionForm):
    message = forms.CharField(
        label=_("Message to the youth"), max_length=5000, widget=forms.Textarea(attrs={"rows": 4})
    )


# --- routing: who holds the case --------------------------------------------------

# The reasons a person gives; sla_breach, reopened and appeal are the system's.
MANUAL_ESCALATION_REASONS = [
    ("beyond_capacity", _("beyond our capacity or authority")),
    ("manual", _("other (say why)")),
]


class EscalateForm(ActionForm):
    reason = forms.ChoiceField(label=_("Why"), choices=MANUAL_ESCALATION_REASONS)
    note = _reason_field(_("Explanation"))


class _ToOrgForm(ActionForm):
    to_org = ModelChoiceField(label=_("To"), queryset=Organisation.objects.none())
    reason = _reason_field()
    error_fields = {"org": "to_org"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_org"].queryset = self.targets()

    def targets(self):
        raise NotImplementedError


class TransferForm(_ToOrgForm):
    def targets(self):
        org = self.case.org
        parent = org.parent_path() or ""
        return (
            _holding_orgs()
            .filter(level=org.level, path__startswith=parent, depth=org.depth)
            .exclude(pk=org.pk)
        )


class DelegateForm(_ToOrgForm):
    def targets(self):
        org = self.case.org
        return _holding_orgs().filter(path__startswith=org.path).exclude(pk=org.pk)


class ReassignForm(_ToOrgForm):
    def targets(self):
        paths = [r.org_path for r in permissions.roles_of(self.user) if r.role == "supervisor"]
        if not paths:
            return Organisation.objects.none()
        query = Q()
        for path in paths:
            query |= Q(path__startswith=path)
        return _holding_orgs().filter(query).exclude(pk=self.case.org_id)


class PullUpForm(ActionForm):
    reason = _reason_field()


class AssignForm(ActionForm):
    assignee = ModelChoiceField(label=_("Handler"), queryset=User.objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = User.objects.filter(
            memberships__organisation_id=self.case.org_id,
            memberships__role=Membership.Role.HANDLER,
        ).order_by("username")


# --- evidence ---------------------------------------------------------------------


class EvidenceForm(ActionForm):
    file = forms.FileField(
        label=_("File (JPEG, PNG or PDF)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".jpg,.jpeg,.png,.pdf"}),
    )


# --- coordination tasks (one task of the case) -------------------------------------


class CoordinationForm(ActionForm):
    """A form about one coordination task; the version is still the case's."""

    def __init__(self, *args, task: CoordinationTask, **kwargs):
        self.task = task
        super().__init__(*args, case=task.case, **kwargs)

    def service_kwargs(self) -> dict:
        return {"task": self.task.pk, **super().service_kwargs()}


class CoordinationCompleteForm(CoordinationForm):
    result = forms.CharField(
        label=_("What was done"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )


class CoordinationWaiveForm(CoordinationForm):
    reason = _reason_field(_("Why it is no longer needed"))
