"""API shapes of the station directory and of verification visits."""

from __future__ import annotations

from rest_framework import serializers

from ..models import Case
from ..models_stations import Appointment
from .serializers import VersionedInput


class StationServiceSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    name_en = serializers.CharField()


class StationSerializer(serializers.Serializer):
    """A station as the public directory shows it."""

    id = serializers.IntegerField(source="station.pk")
    name = serializers.CharField(source="station.name")
    name_en = serializers.CharField(source="station.name_en")
    region_code = serializers.CharField(source="station.region_code")
    address = serializers.CharField()
    address_en = serializers.CharField()
    latitude = serializers.DecimalField(max_digits=9, decimal_places=6)
    longitude = serializers.DecimalField(max_digits=9, decimal_places=6)
    phone = serializers.CharField()
    services = StationServiceSerializer(many=True)
    opening_hours = serializers.JSONField(
        source="station.opening_hours",
        help_text='Weekly hours: {"mon": [["09:00", "12:00"]], ...} or {"24h": true}.',
    )
    visits_per_hour = serializers.IntegerField()
    opens_on_public_holidays = serializers.BooleanField()


class SlotSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    capacity = serializers.IntegerField()
    free = serializers.IntegerField()


class AppointmentSerializer(serializers.ModelSerializer):
    station = serializers.IntegerField(source="station_id")
    starts_at = serializers.DateTimeField(source="slot.starts_at")
    ends_at = serializers.DateTimeField(source="slot.ends_at")

    class Meta:
        model = Appointment
        fields = [
            "id",
            "station",
            "starts_at",
            "ends_at",
            "status",
            "reschedules",
            "no_show_decision",
            "created_at",
        ]


class VisitInput(VersionedInput):
    starts_at = serializers.DateTimeField(
        help_text="The start of a free slot, as listed by /api/stations/{id}/slots/."
    )


class NoShowDecisionInput(VersionedInput):
    decision = serializers.ChoiceField(choices=Appointment.NoShowDecision.choices)
    question = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)
    reason = serializers.ChoiceField(
        choices=Case.RejectReason.choices, required=False, default="", allow_blank=True
    )
    note = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)
