"""Forms of the youth portal: they check the shape of what was typed, nothing more.

Rules about cases (who may do what, in which state, routing, windows) live in
``casework.services``; a view maps the services' ``field_errors`` back onto these
forms so that the page shows every error beside its field and keeps what was typed.
"""

from __future__ import annotations

import datetime

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from .models import (
    Case,
    Category,
    GuardianConsent,
    Organisation,
    Rating,
    Region,
    Report,
    User,
)

TITLE_MAX = 120
TEXT_MAX = 5000
SEARCH_MAX = 60


def region_choices(parent_code: str | None, level: int) -> list[tuple[str, str]]:
    """The regions under ``parent_code`` (or every province), as select choices."""
    regions = Region.objects.filter(level=level)
    if level > Region.Level.PROVINCE:
        if not parent_code:
            return []
        regions = regions.filter(parent_id=parent_code)
    return [(r.code, r.name) for r in regions.only("code", "name")]


def district_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every city with its districts, for a grouped select (works without JavaScript)."""
    cities = {
        code: name for code, name in Region.objects.filter(level=2).values_list("code", "name")
    }
    groups: dict[str, list[tuple[str, str]]] = {}
    for code, name, parent in Region.objects.filter(level=3).values_list(
        "code", "name", "parent_id"
    ):
        groups.setdefault(parent, []).append((code, name))
    out = []
    for city_code, city_name in cities.items():
        out.append((city_name, [(city_code, city_name), *groups.get(city_code, [])]))
    return out


class PlainLabels:
    """Labels without Django's ":" suffix: several end in a question mark, and Chinese
    punctuation differs anyway."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class ListedChoiceIterator(forms.models.ModelChoiceIterator):
    """The choices read by one ordinary query. Django's iterator reads them through
    ``QuerySet.iterator()``, which on PostgreSQL is a server-side cursor: DECLARE,
    FETCH and CLOSE, three round trips for a list of a few dozen rows."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


class ModelChoiceField(forms.ModelChoiceField):
    """A model choice among a short list (categories, stations, partners, colleagues)."""

    iterator = ListedChoiceIterator


class VersionedForm(PlainLabels, forms.Form):
    """A form acting on a case: carries the case version the page showed."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0, max_value=2**31 - 1)


def real_birth_date(born: datetime.date) -> datetime.date:
    from .services.privacy import birth_date_problem

    problem = birth_date_problem(born)
    if problem:
        raise forms.ValidationError(problem)
    return born


class RegistrationForm(PlainLabels, UserCreationForm):
    """Sign-up: a username, a password, a display name, a birth date and a region only."""

    display_name = forms.CharField(
        label=_("Display name"),
        max_length=60,
        help_text=_("What organisations call you. A nickname is fine."),
    )
    birth_date = forms.DateField(
        label=_("Birth date"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Young people under 14 need a guardian's consent to ask for help."),
    )
    region_code = forms.ChoiceField(label=_("Where you live"), choices=())

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "display_name", "birth_date", "region_code")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region_code"].choices = [("", "—"), *district_choices()]

    def clean_birth_date(self):
        return real_birth_date(self.cleaned_data["birth_date"])


class BirthDateForm(PlainLabels, forms.Form):
    """The one question asked before the request form of a youth with no birth date."""

    birth_date = forms.DateField(
        label=_("Birth date"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Young people under 14 need a guardian's consent to ask for help."),
    )

    def clean_birth_date(self):
        return real_birth_date(self.cleaned_data["birth_date"])


class CaseRequestForm(PlainLabels, forms.Form):
    """The request form ("找帮助"). The region is picked province → city → district."""

    category = ModelChoiceField(
        label=_("What do you need help with?"),
        queryset=Category.objects.all(),
        empty_label="—",
    )
    province = forms.ChoiceField(label=_("Province"), choices=(), required=False)
    city = forms.ChoiceField(label=_("City"), choices=(), required=False)
    district = forms.ChoiceField(label=_("District"), choices=(), required=False)
    title = forms.CharField(
        label=_("In one sentence"),
        max_length=TITLE_MAX,
        help_text=_("A short summary, e.g. “I need advice about an internship contract”."),
    )
    description = forms.CharField(
        label=_("Describe your situation"),
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 7}),
        help_text=_("What happened, since when, and what help you hope for."),
    )
    urgency = forms.ChoiceField(
        label=_("How urgent is it?"),
        choices=Case.Urgency.choices,
        initial=Case.Urgency.NORMAL,
        widget=forms.RadioSelect,
    )
    org_q = forms.CharField(label=_("Search organisations"), max_length=SEARCH_MAX, required=False)
    requested_org = ModelChoiceField(
        label=_("Organisation you would like to handle it (optional)"),
        queryset=Organisation.objects.none(),
        required=False,
        empty_label=_("Let the platform choose"),
        help_text=_("If it cannot take your request, the platform picks the right one."),
    )
    is_public = forms.TypedChoiceField(
        label=_("Public progress page"),
        choices=(
            ("1", _("Yes: anyone with the link may follow its progress, without my details")),
            ("0", _("No: keep it private")),
        ),
        coerce=lambda v: v == "1",
        initial="1",
        widget=forms.RadioSelect,
        help_text=_("Requests about sensitive matters are always private."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The pickers offer the regions under what was posted, or under the initial choice.
        data = self.data if self.is_bound else self.initial
        province = _code(data.get("province")) or self._default_province()
        city = _code(data.get("city"))
        self.fields["province"].choices = [("", "—"), *region_choices(None, 1)]
        self.fields["province"].initial = province
        self.fields["city"].choices = [("", "—"), *region_choices(province, 2)]
        self.fields["district"].choices = [("", "—"), *region_choices(city, 3)]
        category = _code(data.get("category"))
        self.fields["requested_org"].queryset = named_org_queryset(
            category=category, query=search_text(data.get("org_q"))
        )

    @staticmethod
    def _default_province() -> str:
        provinces = region_choices(None, 1)
        return provinces[0][0] if len(provinces) == 1 else ""

    def clean(self):
        data = super().clean()
        # The finest level picked is the region; each level must sit under the one above.
        city, district = (data.get(k) or "" for k in ("city", "district"))
        if district and not city:
            self.add_error("city", _("Choose a city."))
        if not (city or district):
            self.add_error("city", _("Choose your city and district."))
        data["region_code"] = district or city
        return data


def search_text(value) -> str:
    """A search fragment safe for any database: bounded, without NUL characters."""
    return str(value or "").replace("\x00", "")[:SEARCH_MAX]


def _code(value) -> str:
    text = str(value or "").strip()
    return text if text.isdigit() and len(text) <= 12 else ""


def named_org_queryset(*, category: str = "", query: str = ""):
    """Organisations a youth may name: active league committees and stations.

    Narrowed to those handling ``category`` (a category id or code) and whose name
    contains ``query``; routing still decides whether the named one can take it.
    """
    orgs = Organisation.objects.filter(
        is_active=True, kind__in=[Organisation.Kind.LEAGUE, Organisation.Kind.STATION]
    ).order_by("level", "name")
    if category:
        orgs = orgs.filter(categories__pk=category) if category.isdigit() else orgs
    query = (query or "").strip()
    if query:
        orgs = orgs.filter(name__icontains=query) | orgs.filter(name_en__icontains=query)
    return orgs.distinct()


class GuardianConsentForm(PlainLabels, forms.Form):
    """A guardian's consent for a young person under 14 (recorded before the request)."""

    class Relation:
        choices = (
            ("mother", _("mother")),
            ("father", _("father")),
            ("grandparent", _("grandparent")),
            ("other", _("other legal guardian")),
        )

    guardian_name = forms.CharField(label=_("Guardian's name"), max_length=60)
    relation = forms.ChoiceField(label=_("Relation to you"), choices=Relation.choices)
    method = forms.ChoiceField(
        label=_("How your guardian agreed"),
        choices=GuardianConsent.Method.choices,
        widget=forms.RadioSelect,
    )
    confirm = forms.BooleanField(
        label=_(
            "I confirm that my guardian knows about this request and agrees that the platform "
            "handles my information to help me."
        )
    )


class AnswerForm(VersionedForm):
    answer = forms.CharField(
        label=_("Your answer"), max_length=TEXT_MAX, widget=forms.Textarea(attrs={"rows": 5})
    )


class WithdrawForm(VersionedForm):
    reason = forms.CharField(
        label=_("Why are you withdrawing? (optional)"),
        max_length=TEXT_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    confirm = forms.BooleanField(label=_("Yes, withdraw my request. This cannot be undone."))


class AppealForm(VersionedForm):
    statement = forms.CharField(
        label=_("Why should the decision be reviewed?"),
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Your appeal goes to the organisation one level up. You can appeal once."),
    )


STAR_CHOICES = [(str(n), str(n)) for n in range(1, 6)]


class RateForm(VersionedForm):
    timeliness = forms.TypedChoiceField(
        label=_("Timeliness"), choices=STAR_CHOICES, coerce=int, widget=forms.RadioSelect
    )
    attitude = forms.TypedChoiceField(
        label=_("Attitude"), choices=STAR_CHOICES, coerce=int, widget=forms.RadioSelect
    )
    outcome = forms.TypedChoiceField(
        label=_("Outcome"), choices=STAR_CHOICES, coerce=int, widget=forms.RadioSelect
    )
    solved = forms.ChoiceField(
        label=_("Was your problem solved?"),
        choices=Rating.Solved.choices,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label=_("Comment (optional)"),
        max_length=TEXT_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class ReportForm(PlainLabels, forms.Form):
    """Report a case seen on its public page: fake, abusive, or whether its help is true."""

    kind = forms.ChoiceField(
        label=_("What do you want to report?"),
        choices=Report.Kind.choices,
        widget=forms.RadioSelect,
        help_text=_(
            "Reports from several people hide a case from public pages until a "
            "supervisor has reviewed it. Each person can report a case once."
        ),
    )


class DisputeForm(VersionedForm):
    reason = forms.CharField(
        label=_("What is not right about the outcome?"),
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("The case reopens and the organisation works on it again."),
    )


class ComplaintForm(VersionedForm):
    body = forms.CharField(
        label=_("What went wrong with how your request was handled?"),
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("A complaint goes to the supervisors; it does not change your case."),
    )
