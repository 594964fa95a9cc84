"""Offline service stations (青年之家): their public profile, and verification visits.

A station is an ``Organisation`` of the station kind; ``StationProfile`` adds what the
public directory and the booking need (address, a point for the map, services, how many
verification visits an hour it takes). Its weekly hours are the organisation's
``opening_hours``; ``StationException`` rows close it or open it on one date, and a
public holiday of the business calendar closes it unless an exception opens it.

``VisitSlot`` is one bookable hour of one station with its capacity; the database
refuses a slot with more bookings than seats (CHECK constraint), and every booking
takes its seat with one conditional UPDATE. ``Appointment`` is a case's visit in one
slot. Written only by ``casework.services.stations``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Case, Organisation, User


class StationService(models.Model):
    """A service a station offers to visitors (tutoring, counselling, legal advice...)."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=60)
    name_en = models.CharField(_("English name"), max_length=60, blank=True)
    ordering = models.PositiveSmallIntegerField(_("ordering"), default=0)

    class Meta:
        ordering = ["ordering", "code"]
        verbose_name = _("station service")
        verbose_name_plural = _("station services")

    def __str__(self):
        return self.name


class StationProfile(models.Model):
    """The directory entry and booking rules of one station."""

    station = models.OneToOneField(
        Organisation,
        on_delete=models.CASCADE,
        related_name="station_profile",
        limit_choices_to={"kind": Organisation.Kind.STATION},
        verbose_name=_("station"),
    )
    address = models.CharField(_("address"), max_length=200)
    address_en = models.CharField(_("English address"), max_length=200, blank=True)
    # WGS84 degrees; six decimals are about ten centimetres.
    latitude = models.DecimalField(_("latitude"), max_digits=9, decimal_places=6)
    longitude = models.DecimalField(_("longitude"), max_digits=9, decimal_places=6)
    phone = models.CharField(_("public phone"), max_length=32, blank=True)
    services = models.ManyToManyField(
        StationService, blank=True, related_name="stations", verbose_name=_("services offered")
    )
    visits_per_hour = models.PositiveSmallIntegerField(
        _("verification visits per hour"),
        default=2,
        help_text=_("The seats of each one-hour visit slot; 0 takes no bookings."),
    )
    opens_on_public_holidays = models.BooleanField(
        _("open on public holidays"),
        default=False,
        help_text=_("Off: a public holiday of the business calendar closes the station."),
    )
    listed = models.BooleanField(_("listed in the public directory"), default=True)

    class Meta:
        verbose_name = _("station profile")
        verbose_name_plural = _("station profiles")
        constraints = [
            models.CheckConstraint(
                condition=Q(latitude__gte=-90, latitude__lte=90)
                & Q(longitude__gte=-180, longitude__lte=180),
                name="stationprofile_point_on_earth",
            )
        ]

    def __str__(self):
        return str(self.station)


class StationException(models.Model):
    """One date on which a station keeps other hours than its weekly ones."""

    class Kind(models.TextChoices):
        CLOSED = "closed", _("closed all day")
        OPEN = "open", _("open (with the hours given, or the usual ones)")

    station = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="station_exceptions",
        limit_choices_to={"kind": Organisation.Kind.STATION},
        verbose_name=_("station"),
    )
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    hours = models.JSONField(
        _("hours"),
        default=list,
        blank=True,
        help_text=_('Only for "open": [["10:00", "16:00"]]; empty means the usual hours.'),
    )
    note = models.CharField(_("note"), max_length=120, blank=True)

    class Meta:
        ordering = ["date"]
        verbose_name = _("station opening exception")
        verbose_name_plural = _("station opening exceptions")
        constraints = [
            models.UniqueConstraint(fields=["station", "date"], name="stationexception_one_a_day")
        ]

    def __str__(self):
        return f"{self.station} · {self.date} · {self.get_kind_display()}"


class VisitSlot(models.Model):
    """One bookable hour of one station: ``booked`` of ``capacity`` seats are taken.

    The CHECK constraints make an overbooked slot impossible, whatever the code does.
    """

    station = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="visit_slots", db_index=False
    )
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    capacity = models.PositiveSmallIntegerField(_("seats"))
    booked = models.PositiveSmallIntegerField(_("seats taken"), default=0)

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("visit slot")
        verbose_name_plural = _("visit slots")
        constraints = [
            models.UniqueConstraint(fields=["station", "starts_at"], name="visitslot_one_per_hour"),
            models.CheckConstraint(
                condition=Q(booked__gte=0) & Q(booked__lte=models.F("capacity")),
                name="visitslot_not_overbooked",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="visitslot_ends_after_start"
            ),
        ]

    def __str__(self):
        return f"{self.station} · {timezone.localtime(self.starts_at):%Y-%m-%d %H:%M}"

    @property
    def free(self) -> int:
        return max(self.capacity - self.booked, 0)


class Appointment(models.Model):
    """A case's verification visit at its station, in one slot.

    ``proposed``: the station offered the slot (its seat is held) and waits for the
    youth; ``confirmed``: both agree. A reschedule moves the same row to another slot.
    """

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("proposed by the station")
        CONFIRMED = "confirmed", _("confirmed")
        VISITED = "visited", _("visit recorded")
        NO_SHOW = "no_show", _("the youth did not come")
        CANCELLED = "cancelled", _("cancelled")

    class NoShowDecision(models.TextChoices):
        RESCHEDULE = "reschedule", _("book another visit")
        REQUEST_INFO = "request_info", _("ask the youth for information")
        REJECT = "reject", _("reject the case")

    ACTIVE = (Status.PROPOSED, Status.CONFIRMED)

    case = models.ForeignKey(
        Case, on_delete=models.PROTECT, related_name="appointments", verbose_name=_("case")
    )
    station = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="+", verbose_name=_("station")
    )
    slot = models.ForeignKey(
        VisitSlot, on_delete=models.PROTECT, related_name="appointments", verbose_name=_("slot")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    booked_by = models.ForeignKey(
        User, null=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("booked by")
    )
    reschedules = models.PositiveSmallIntegerField(_("times rescheduled"), default=0)
    # Set while a reminder is still to be sent; the sweep clears it (partial index).
    remind_at = models.DateTimeField(_("reminder due"), null=True, blank=True)
    no_show_decision = models.CharField(
        _("decision after the no-show"), max_length=12, blank=True, choices=NoShowDecision.choices
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("verification appointment")
        verbose_name_plural = _("verification appointments")
        constraints = [
            # One visit at a time per case.
            models.UniqueConstraint(
                fields=["case"],
                condition=Q(status__in=["proposed", "confirmed"]),
                name="appointment_one_active_per_case",
            )
        ]
        indexes = [
            models.Index(
                fields=["remind_at"],
                name="appointment_remind_idx",
                condition=Q(remind_at__isnull=False),
            ),
            models.Index(fields=["station", "status"], name="appointment_station_idx"),
        ]

    def __str__(self):
        return f"{self.case} · {self.slot} · {self.get_status_display()}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
