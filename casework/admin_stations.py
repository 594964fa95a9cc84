"""Admin pages of the offline stations: profiles, hours, exceptions, services, slots.

Profiles, weekly hours, exceptions, services and slot capacities are configuration
and editable here. Appointments change only through ``casework.services.stations``
(each change is a timeline event), so they are read-only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .admin import ReadOnlyAdminMixin
from .models import Organisation
from .models_stations import (
    Appointment,
    StationException,
    StationProfile,
    StationService,
    VisitSlot,
)
from .station_hours import HoursError, parse_exception_hours, weekly_hours


class StationProfileForm(forms.ModelForm):
    """The profile, plus the station's weekly hours (kept on the organisation)."""

    opening_hours = forms.JSONField(
        label=_("weekly opening hours"),
        required=False,
        help_text=_(
            '{"mon": [["09:00", "12:00"], ["14:00", "18:00"]], ...} for each open day, '
            'or {"24h": true} for a station open around the clock.'
        ),
    )

    class Meta:
        model = StationProfile
        fields = [
            "station",
            "address",
            "address_en",
            "latitude",
            "longitude",
            "phone",
            "services",
            "visits_per_hour",
            "opens_on_public_holidays",
            "listed",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["station"].queryset = Organisation.objects.filter(
            kind=Organisation.Kind.STATION
        ).order_by("path")
        if self.instance.pk:
            self.fields["opening_hours"].initial = self.instance.station.opening_hours

    def clean_opening_hours(self):
        value = self.cleaned_data.get("opening_hours") or {}
        try:
            weekly_hours(value)
        except HoursError as exc:
            raise ValidationError(
                _("These hours cannot be read: %(error)s"), params={"error": exc}
            ) from None
        return value

    def save(self, commit=True):
        profile = super().save(commit=commit)
        station = profile.station
        station.opening_hours = self.cleaned_data.get("opening_hours") or {}
        station.save(update_fields=["opening_hours"])
        return profile


@admin.register(StationProfile)
class StationProfileAdmin(admin.ModelAdmin):
    form = StationProfileForm
    list_display = ["station", "address", "visits_per_hour", "opens_on_public_holidays", "listed"]
    list_filter = ["listed", "opens_on_public_holidays", "services"]
    search_fields = ["station__name", "station__name_en", "address"]
    filter_horizontal = ["services"]


class StationExceptionForm(forms.ModelForm):
    class Meta:
        model = StationException
        fields = ["station", "date", "kind", "hours", "note"]

    def clean(self):
        data = super().clean()
        hours = data.get("hours") or []
        if data.get("kind") == StationException.Kind.CLOSED and hours:
            self.add_error("hours", _("A closed day has no hours."))
        try:
            parse_exception_hours(hours)
        except HoursError as exc:
            self.add_error("hours", _("These hours cannot be read: %(error)s") % {"error": exc})
        return data


@admin.register(StationException)
class StationExceptionAdmin(admin.ModelAdmin):
    form = StationExceptionForm
    list_display = ["station", "date", "kind", "hours", "note"]
    list_filter = ["kind"]
    date_hierarchy = "date"
    search_fields = ["station__name", "note"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "station":
            kwargs["queryset"] = Organisation.objects.filter(kind=Organisation.Kind.STATION)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(StationService)
class StationServiceAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "ordering"]
    search_fields = ["code", "name", "name_en"]


@admin.register(VisitSlot)
class VisitSlotAdmin(admin.ModelAdmin):
    """Slots appear with their first booking; an admin may change a slot's seats
    (never below the seats taken: the database refuses)."""

    list_display = ["station", "starts_at", "ends_at", "capacity", "booked"]
    list_filter = ["station"]
    date_hierarchy = "starts_at"
    fields = ["station", "starts_at", "ends_at", "capacity", "booked"]
    readonly_fields = ["station", "starts_at", "ends_at", "booked"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class VisitSlotForm(forms.ModelForm):
    class Meta:
        model = VisitSlot
        fields = ["capacity"]

    def clean_capacity(self):
        capacity = self.cleaned_data["capacity"]
        if self.instance.pk and capacity < self.instance.booked:
            raise ValidationError(_("A slot cannot have fewer seats than are taken."))
        return capacity


VisitSlotAdmin.form = VisitSlotForm


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["case", "station", "slot", "status", "reschedules", "no_show_decision"]
    list_filter = ["status", "no_show_decision"]
    search_fields = ["case__reference"]
