"""Forms of the intake pages: a case entered by staff, a claim, a station-visit rating.

They check the shape of what was typed; casework.services.intake decides the rest
and its ``field_errors`` land beside these fields.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .forms import (
    TEXT_MAX,
    TITLE_MAX,
    ModelChoiceField,
    PlainLabels,
    VersionedForm,
    district_choices,
)
from .models import Case, Category, GuardianConsent, Intake
from .services.intake import intake_desks


class StaffIntakeForm(PlainLabels, forms.Form):
    """A request taken at a desk or on the 12355 line, entered for the youth."""

    desk = ModelChoiceField(label=_("Your desk"), queryset=None, empty_label=None)
    channel = forms.ChoiceField(
        label=_("How did the request come in?"),
        choices=[
            (Case.Channel.WALK_IN, _("walk-in at a desk")),
            (Case.Channel.PHONE, _("phone (12355)")),
        ],
        widget=forms.RadioSelect,
        initial=Case.Channel.WALK_IN,
    )
    youth_name = forms.CharField(
        label=_("Youth's name"),
        max_length=60,
        help_text=_("What the youth wants to be called. A nickname is fine."),
    )
    youth_phone = forms.CharField(
        label=_("Youth's phone"),
        max_length=32,
        help_text=_("The claim code goes to this number by SMS."),
    )
    birth_date = forms.DateField(
        label=_("Birth date"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Young people under 14 need a guardian's consent to ask for help."),
    )
    consent_by = forms.ChoiceField(
        label=_("Who consented to asking for help?"),
        choices=Intake.ConsentBy.choices,
        widget=forms.RadioSelect,
        initial=Intake.ConsentBy.YOUTH,
    )
    consent_method = forms.ChoiceField(
        label=_("How was the consent given?"),
        choices=[("", _("the channel's way (in person or by phone)"))]
        + [(v, label) for v, label in GuardianConsent.Method.choices if v != "online"],
        required=False,
    )
    guardian_name = forms.CharField(label=_("Guardian's name"), max_length=60, required=False)
    guardian_relationship = forms.CharField(
        label=_("Relationship to the youth"),
        max_length=30,
        required=False,
        help_text=_("Only when a guardian consented, e.g. mother."),
    )
    category = ModelChoiceField(
        label=_("What do they need help with?"), queryset=Category.objects.all(), empty_label="—"
    )
    region_code = forms.ChoiceField(label=_("Where they live"), choices=())
    title = forms.CharField(label=_("In one sentence"), max_length=TITLE_MAX)
    description = forms.CharField(
        label=_("Their situation"),
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Write down what the youth told you; keep out details the case does not need."),
    )
    urgency = forms.ChoiceField(
        label=_("How urgent is it?"), choices=Case.Urgency.choices, initial=Case.Urgency.NORMAL
    )
    is_public = forms.BooleanField(
        label=_("The youth agrees to a public progress page (without their details)"),
        required=False,
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["desk"].queryset = intake_desks(user)
        self.fields["region_code"].choices = [("", "—"), *district_choices()]


class ClaimForm(PlainLabels, forms.Form):
    reference = forms.CharField(
        label=_("Case reference"),
        max_length=16,
        help_text=_("In the SMS, e.g. YV-AB23CD45."),
    )
    code = forms.CharField(
        label=_("Claim code"),
        max_length=16,
        help_text=_("The 8 digits from the SMS."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


STAR_CHOICES = [(str(n), str(n)) for n in range(1, 6)]


class VisitRateForm(VersionedForm):
    stars = forms.TypedChoiceField(
        label=_("How was your visit to the station?"),
        choices=STAR_CHOICES,
        coerce=int,
        widget=forms.RadioSelect,
        help_text=_("1 star: poor, 5 stars: very good."),
    )
    comment = forms.CharField(
        label=_("Comment (optional)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
