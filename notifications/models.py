"""The outbox, the in-app inbox and each person's channel preferences.

An outbox row (``Notification``) is written in the same transaction as the
case change that causes it and names its recipient by id only: addresses
(e-mail, phone) are read from the recipient when the row is delivered, and
the stored context holds only non-personal facts (case reference, category,
stage, organisation, deadline). Erasing a person's data therefore leaves no
copy behind in the outbox.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    INAPP = "inapp", _("in-app")
    EMAIL = "email", _("e-mail")
    SMS = "sms", _("SMS")
    WEBHOOK = "webhook", _("webhook")


class Audience(models.TextChoices):
    YOUTH = "youth", _("youth")
    HANDLER = "handler", _("handler")
    VERIFIER = "verifier", _("verifier")
    PARTNER = "partner", _("partner body")
    SUPERVISOR = "supervisor", _("supervisor")


class OutboxEvent(models.Model):
    """One case event that tells someone: the outbox row written with the change.

    One row per event, whatever the number of recipients: the change's
    transaction writes only this (one narrow row, no foreign-key checks), and
    the delivery worker fans it out to ``Notification`` rows, one per recipient
    and channel (``notifications.services.fan_out``). ``facts`` holds what the
    fan-out needs, as it was at the change: the holding organisation, the
    youth, the station, the actor, the stage and its deadline, and a few
    payload keys (reason, task, partner). Never personal data.
    """

    # Plain references (no database constraint, no index): events are append-only and
    # cases are never deleted, and a foreign key would be checked per row at commit.
    event = models.ForeignKey(
        "casework.CaseEvent",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    case = models.ForeignKey(
        "casework.Case",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    kind = models.CharField(_("event"), max_length=40)
    facts = models.JSONField(default=dict)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # When the relay may publish the row again if it is still not fanned out.
    relay_after = models.DateTimeField()
    fanned_out_at = models.DateTimeField(_("fanned out"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox event")
        verbose_name_plural = _("outbox events")
        indexes = [
            models.Index(
                fields=["relay_after"],
                name="outbox_event_pending_idx",
                condition=Q(fanned_out_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.kind} #{self.event_id}"


class Notification(models.Model):
    """One message to one person on one channel: a delivery row, fanned out from an
    ``OutboxEvent`` by the delivery worker.

    ``key`` is unique over (event, channel, recipient): writing the same
    notification twice is impossible, and external receivers get the key so
    they can drop a repeat.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed, will retry")
        DEAD = "dead", _("dead letter")
        SKIPPED = "skipped", _("skipped")

    key = models.CharField(_("idempotency key"), max_length=64, unique=True)
    event = models.ForeignKey(
        "casework.CaseEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    case = models.ForeignKey(
        "casework.Case", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("recipient"),
    )
    kind = models.CharField(_("event"), max_length=40)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    audience = models.CharField(_("as"), max_length=12, choices=Audience.choices)
    context = models.JSONField(default=dict, blank=True)

    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # When a delivery may next be tried (backoff, quiet hours).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # When the relay may next publish the row again if it is still not done.
    relay_after = models.DateTimeField()
    # A claimed external send belongs to one worker until this time.
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications (outbox)")
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["relay_after"],
                name="notif_relay_idx",
                condition=Q(status__in=["pending", "failed", "sending"]),
            ),
            models.Index(fields=["status", "-created_at"], name="notif_status_idx"),
        ]

    def __str__(self):
        return f"{self.kind} → {self.recipient_id} ({self.channel}, {self.status})"


class InboxItem(models.Model):
    """An in-app message: written in the transaction that marks its outbox row sent."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="inbox_items"
    )
    # The outbox row's key: a second delivery of the same row cannot insert a second item.
    key = models.CharField(max_length=64, unique=True)
    case = models.ForeignKey(
        "casework.Case", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=40)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("message"))
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("inbox message")
        verbose_name_plural = _("inbox messages")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["user"], name="inbox_unread_idx", condition=Q(read_at__isnull=True)
            ),
            models.Index(fields=["user", "-created_at"], name="inbox_user_idx"),
        ]

    def __str__(self):
        return self.subject

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class Preference(models.Model):
    """How one person wants to hear about their cases."""

    class Language(models.TextChoices):
        ZH_HANS = "zh-hans", _("Simplified Chinese")
        EN = "en", _("English")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    inapp = models.BooleanField(_("in-app"), default=True)
    email = models.BooleanField(_("e-mail"), default=True)
    sms = models.BooleanField(_("SMS"), default=False)
    webhook = models.BooleanField(
        _("messaging app"), default=False, help_text=_("Through the messaging-app bridge.")
    )
    language = models.CharField(
        _("language"), max_length=10, choices=Language.choices, default=Language.ZH_HANS
    )
    # SMS waits outside these hours (platform time zone); both empty means no quiet hours.
    quiet_start = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours until"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self):
        return str(self.user)

    def channels(self) -> list[str]:
        return [c for c in Channel.values if getattr(self, c)]
