"""Forms of station visits: one per action, each handing its fields to one service.

The time is a choice among the slots the station offers now (free seats only), so a
tampered value is a form error; the service checks it again under the case lock.
"""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .errors import CaseworkError
from .forms_staff import ActionForm
from .models import Case, Organisation
from .models_stations import Appointment
from .services.stations import active_appointment, station_slots


def slot_label(starts_at, free: int) -> str:
    local = timezone.localtime(starts_at)
    when = f"{date_format(local, 'SHORT_DATE_FORMAT')} {date_format(local, 'D')} {local:%H:%M}"
    seats = ngettext("%(n)s place left", "%(n)s places left", free) % {"n": free}
    return f"{when} · {seats}"


def slot_choices(station: Organisation | None, *, exclude=None) -> list[tuple[str, str]]:
    """The station's free slots as (ISO time, label); empty when it takes no bookings."""
    if station is None:
        return []
    try:
        slots = station_slots(station)
    except CaseworkError:
        return []
    return [
        (s.starts_at.isoformat(), slot_label(s.starts_at, s.free))
        for s in slots
        if s.free and s.starts_at != exclude
    ]


class VisitTimeForm(ActionForm):
    """Choose a visit time among the station's free slots."""

    starts_at = forms.ChoiceField(label=_("Visit time"), choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = active_appointment(self.case) if self.case.pk else None
        exclude = current.slot.starts_at if current is not None else None
        station = self.case.station if self.case.station_id else None
        self.fields["starts_at"].choices = slot_choices(station, exclude=exclude)


class VisitConfirmForm(ActionForm):
    pass


class VisitNoShowForm(ActionForm):
    pass


class NoShowDecisionForm(ActionForm):
    decision = forms.ChoiceField(
        label=_("What happens next"),
        choices=Appointment.NoShowDecision.choices,
        widget=forms.RadioSelect,
    )
    question = forms.CharField(
        label=_("Question to the youth (when asking for information)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    reason = forms.ChoiceField(
        label=_("Reason (when rejecting)"),
        required=False,
        choices=[("", "—"), *Case.RejectReason.choices],
    )
    note = forms.CharField(
        label=_("Note to the youth (when rejecting)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
