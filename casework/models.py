"""The case, the organisation tree, people and the timeline.

The case's state is owned by django-fsm-2: ``Case.state`` is a protected
``FSMField`` and the only way to change it is a ``@transition`` method, which in
turn is only called by the services in ``casework.services``.
"""

import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import GET_STATE, FSMField, FSMModelMixin, transition
from treebeard.mp_tree import MP_Node

from . import permissions
from .crypto import (
    EncryptedCharField,
    EncryptedDateField,
    EncryptedEmailField,
    EncryptedTextField,
    search_digest,
)
from .states import OPEN_STATES, PAUSABLE_STATES, SLA_STAGE_STATES, CaseState


class User(AbstractUser):
    """Anyone who signs in: youth, staff of an organisation, platform admins.

    Personal fields are the few that handling a request needs; see docs/privacy.md.
    """

    # Name and contact details are encrypted at rest (casework.crypto).
    display_name = EncryptedCharField(_("display name"), max_length=60, blank=True)
    email = EncryptedEmailField(_("email address"), max_length=254, blank=True)
    phone = EncryptedCharField(_("phone"), max_length=32, blank=True)
    birth_date = EncryptedDateField(_("birth date"), null=True, blank=True)
    # Keyed digests of the normalised name, e-mail and phone, so an administrator
    # can find a person by an exact value although the values are encrypted.
    name_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    email_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    phone_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    region_code = models.CharField(_("region code"), max_length=12, blank=True)
    requires_2fa = models.BooleanField(
        _("requires two-factor sign-in"),
        default=False,
        help_text=_("Sign-in needs a code from a confirmed TOTP device (staff accounts)."),
    )
    erased_at = models.DateTimeField(_("personal data erased"), null=True, blank=True)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self):
        return self.display_name or self.username

    SEARCHABLE = {"display_name": "name_digest", "email": "email_digest", "phone": "phone_digest"}

    def save(self, *args, **kwargs):
        for field, digest in self.SEARCHABLE.items():
            setattr(self, digest, search_digest(getattr(self, field)))
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and set(update_fields) & set(self.SEARCHABLE):
            kwargs["update_fields"] = {*update_fields, *self.SEARCHABLE.values()}
        super().save(*args, **kwargs)


class Region(models.Model):
    """An administrative region (GB/T 2260 code): province, city or district."""

    class Level(models.IntegerChoices):
        PROVINCE = 1, _("province")
        CITY = 2, _("city")
        DISTRICT = 3, _("district")

    code = models.CharField(_("code"), max_length=12, primary_key=True)
    name = models.CharField(_("name"), max_length=60)
    name_en = models.CharField(_("English name"), max_length=60, blank=True)
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("region")
        verbose_name_plural = _("regions")

    def __str__(self):
        return self.name


class Category(models.Model):
    """A service category (the platform's lines); sensitive ones are private everywhere."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=60)
    name_en = models.CharField(_("English name"), max_length=60, blank=True)
    sensitive = models.BooleanField(_("sensitive"), default=False)
    difficulty_weight = models.DecimalField(
        _("difficulty weight"), max_digits=4, decimal_places=2, default=1
    )
    ordering = models.PositiveSmallIntegerField(_("ordering"), default=0)

    class Meta:
        ordering = ["ordering", "code"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self):
        return self.name


class Organisation(MP_Node):
    """A node of the youth-league tree; ``path`` (materialised path) makes subtrees cheap.

    A subtree is ``path LIKE '<path>%'`` and the ancestors are the prefixes of
    ``path``: both are one indexed query, never a walk in Python.
    """

    class Level(models.IntegerChoices):
        PROVINCE = 1, _("province")
        CITY = 2, _("city")
        DISTRICT = 3, _("district or university")
        BRANCH = 4, _("branch or station")

    class Kind(models.TextChoices):
        LEAGUE = "league", _("league committee")
        STATION = "station", _("offline service station")
        PARTNER = "partner", _("partner body")
        SOCIAL = "social", _("social organisation")

    name = models.CharField(_("name"), max_length=120)
    name_en = models.CharField(_("English name"), max_length=120, blank=True)
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.LEAGUE)
    region_code = models.CharField(_("region code"), max_length=12, db_index=True)
    categories = models.ManyToManyField(
        Category, blank=True, related_name="organisations", verbose_name=_("categories handled")
    )
    capacity = models.PositiveIntegerField(
        _("capacity"), default=100, help_text=_("Open cases this organisation can carry.")
    )
    opening_hours = models.JSONField(
        _("opening hours"),
        default=dict,
        blank=True,
        help_text=_('Stations only: {"mon": [["09:00", "18:00"]], ...}; "24h": true for always.'),
    )
    routes_by_region = models.BooleanField(
        _("receives cases by region"),
        default=True,
        help_text=_(
            "Off for universities and stations: they take cases named to them or delegated."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)

    node_order_by = ["name"]

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        indexes = [
            models.Index(
                fields=["path"], name="org_path_prefix_idx", opclasses=["varchar_pattern_ops"]
            ),
        ]

    def __str__(self):
        return self.name

    def ancestor_paths(self) -> list[str]:
        """The paths of this node and every ancestor, root first."""
        step = self.steplen
        return [self.path[:i] for i in range(step, len(self.path) + 1, step)]

    def parent_path(self) -> str | None:
        return self.path[: -self.steplen] or None

    def parent_org(self) -> "Organisation | None":
        parent = self.parent_path()
        return type(self).objects.get(path=parent) if parent else None


class Membership(models.Model):
    """A person's role in one organisation; authority flows down the tree."""

    class Role(models.TextChoices):
        HANDLER = "handler", _("handler")
        VERIFIER = "verifier", _("verifier")
        PARTNER = "partner", _("partner")
        SUPERVISOR = "supervisor", _("supervisor")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organisation", "role"], name="membership_unique_role"
            )
        ]

    def __str__(self):
        return f"{self.user} · {self.get_role_display()} · {self.organisation}"


def new_public_token() -> str:
    return secrets.token_urlsafe(18)


def new_reference() -> str:
    # Short, unambiguous, not sequential: it says nothing about volume or order.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "YV-" + "".join(secrets.choice(alphabet) for _ in range(8))


class Case(FSMModelMixin, models.Model):
    """A young person's request for help, from submission to closing.

    Write it only through ``casework.services``; every change leaves a ``CaseEvent``.
    """

    class Urgency(models.TextChoices):
        LOW = "low", _("low")
        NORMAL = "normal", _("normal")
        HIGH = "high", _("high")
        URGENT = "urgent", _("urgent")

    class RejectReason(models.TextChoices):
        DUPLICATE = "duplicate", _("duplicate")
        OUT_OF_SCOPE = "out_of_scope", _("out of scope")
        ABUSE = "abuse", _("abuse or fake")
        NOT_CONFIRMED = "not_confirmed", _("not confirmed by verification")

    class Outcome(models.TextChoices):
        SOLVED = "solved", _("solved")
        PARTLY = "partly", _("partly solved")
        NOT_SOLVABLE = "not_solvable", _("not solvable")

    class Channel(models.TextChoices):
        """How the request came in (docs/stations.md, "Intake channels")."""

        ONLINE = "online", _("online")
        WALK_IN = "walk_in", _("walk-in at a desk")
        PHONE = "phone", _("phone (12355)")
        HANDOFF = "handoff", _("partner hand-off")

    reference = models.CharField(_("reference"), max_length=16, unique=True, default=new_reference)
    public_token = models.CharField(max_length=32, unique=True, default=new_public_token)
    # Index pruning (docs/performance.md): every index is rewritten by each sweep UPDATE
    # (the moved columns rule out HOT updates), so only indexes a query uses are kept.
    # youth: covered by case_youth_idx; category: no query filters on it.
    youth = models.ForeignKey(
        User,
        on_delete=models.PROTECT,
        related_name="cases",
        verbose_name=_("youth"),
        db_index=False,
    )
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, verbose_name=_("category"), db_index=False
    )
    urgency = models.CharField(
        _("urgency"), max_length=10, choices=Urgency.choices, default=Urgency.NORMAL
    )
    region_code = models.CharField(_("region code"), max_length=12)  # not filtered on
    # Free text written by the youth: encrypted at rest, never filtered in SQL.
    title = EncryptedCharField(_("title"), max_length=120)
    description = EncryptedTextField(_("description"))
    is_public = models.BooleanField(_("public progress page"), default=True)
    # Only grouped on (dashboard, statistics), never filtered alone: no index of its own.
    channel = models.CharField(
        _("intake channel"), max_length=10, choices=Channel.choices, default=Channel.ONLINE
    )
    # Reports reached the threshold: off public pages until a supervisor's review
    # (casework.services.ratings); a review that upholds them keeps it hidden.
    hidden_from_public = models.BooleanField(_("hidden from public pages"), default=False)

    requested_org = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("organisation named by the youth"),
        db_index=False,  # only displayed, never filtered on
    )
    org = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="cases",
        verbose_name=_("handling organisation"),
        db_index=False,  # case_org_state_idx (org, state) serves every org filter
    )
    # Looked up by person or station only (equality): partial indexes below hold the set
    # values, so an escalation, which clears the assignee, writes no entry to them.
    assignee = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_cases",
        verbose_name=_("handler"),
        db_index=False,
    )
    station = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="verification_cases",
        verbose_name=_("verifying station"),
        db_index=False,
    )

    state = FSMField(
        _("state"),
        max_length=20,
        choices=CaseState.choices,
        default=CaseState.SUBMITTED,
        protected=True,
    )
    # Where awaiting_youth returns to once the youth answers.
    resume_state = models.CharField(max_length=20, blank=True, choices=CaseState.choices)
    version = models.PositiveIntegerField(_("version"), default=0)

    # SLA: the deadline of the stage the case is in; paused while awaiting the youth.
    stage_due_at = models.DateTimeField(_("stage due"), null=True, blank=True)
    stage_started_at = models.DateTimeField(null=True, blank=True)
    sla_paused_remaining = models.DurationField(null=True, blank=True)
    sla_breached = models.BooleanField(default=False)
    # The reminder point of the running stage at its current level; the sweep sends the
    # reminder once, clears remind_at and sets stage_reminded until the clock restarts.
    remind_at = models.DateTimeField(_("reminder due"), null=True, blank=True)
    stage_reminded = models.BooleanField(default=False)

    escalation_count = models.PositiveSmallIntegerField(default=0)
    reopen_count = models.PositiveSmallIntegerField(default=0)
    appealed = models.BooleanField(default=False)
    reject_reason = models.CharField(
        _("rejection reason"), max_length=20, blank=True, choices=RejectReason.choices
    )
    outcome = models.CharField(_("outcome"), max_length=20, blank=True, choices=Outcome.choices)
    outcome_note = EncryptedTextField(_("outcome note"), blank=True)

    submitted_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Head of the hash-chained timeline, kept on the locked row so appending needs no scan.
    last_event_seq = models.PositiveIntegerField(default=0)
    last_event_hash = models.CharField(max_length=64, blank=True)
    # Set when the case's personal free text was erased (retention or the youth's request).
    personal_data_erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["-submitted_at"]
        indexes = [
            models.Index(
                fields=["stage_due_at"],
                name="case_open_due_idx",
                condition=Q(state__in=[s.value for s in OPEN_STATES])
                & Q(stage_due_at__isnull=False),
            ),
            # The sweep's two queries (casework.services.sweep): breaches not yet acted on,
            # and reminders not yet sent, each oldest first, in the stage-clock states.
            models.Index(
                fields=["stage_due_at"],
                name="case_sla_breach_idx",
                condition=Q(state__in=[s.value for s in SLA_STAGE_STATES])
                & Q(stage_due_at__isnull=False)
                & Q(sla_breached=False),
            ),
            models.Index(
                fields=["remind_at"],
                name="case_sla_remind_idx",
                condition=Q(state__in=[s.value for s in SLA_STAGE_STATES])
                & Q(remind_at__isnull=False),
            ),
            # The sweep's rating-window probe: only cases whose feedback was given are in
            # it, so escalations (other states) never write to it.
            models.Index(
                fields=["stage_due_at"],
                name="case_rating_due_idx",
                condition=Q(state="feedback_given") & Q(stage_due_at__isnull=False),
            ),
            models.Index(fields=["org", "state"], name="case_org_state_idx"),
            models.Index(fields=["youth", "-submitted_at"], name="case_youth_idx"),
            models.Index(
                fields=["assignee"], name="case_assignee_idx", condition=Q(assignee__isnull=False)
            ),
            models.Index(
                fields=["station"], name="case_station_idx", condition=Q(station__isnull=False)
            ),
        ]
        constraints = [
            # The SLA sweep's deadline table has a row per urgency: an unknown one would
            # leave an escalated case without a clock, so the database refuses it.
            models.CheckConstraint(
                condition=Q(urgency__in=["low", "normal", "high", "urgent"]),
                name="case_urgency_known",
            ),
        ]

    def __str__(self):
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    # --- transitions (called only by casework.services) ---------------------

    @transition(
        field=state,
        source=CaseState.SUBMITTED,
        target=CaseState.ACCEPTED,
        permission=permissions.is_case_handler,
    )
    def accept(self):
        pass

    @transition(
        field=state,
        source=[CaseState.SUBMITTED, CaseState.ACCEPTED, CaseState.VERIFYING],
        target=CaseState.REJECTED,
        permission=permissions.may_reject,
    )
    def reject(self, reason: str):
        self.reject_reason = reason
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=CaseState.REJECTED,
        target=CaseState.SUBMITTED,
        conditions=[permissions.appeal_available],
        permission=permissions.is_case_youth,
    )
    def appeal(self):
        self.appealed = True
        self.reject_reason = ""
        self.closed_at = None

    @transition(
        field=state,
        source=CaseState.ACCEPTED,
        target=CaseState.VERIFYING,
        permission=permissions.is_case_handler,
    )
    def schedule_verification(self, station):
        self.station = station

    @transition(
        field=state,
        source=CaseState.VERIFYING,
        target=CaseState.COORDINATING,
        permission=permissions.is_case_verifier,
    )
    def confirm(self):
        pass

    @transition(
        field=state,
        source=[s.value for s in PAUSABLE_STATES],
        target=CaseState.AWAITING_YOUTH,
        permission=permissions.is_case_handler_or_verifier,
    )
    def request_info(self):
        self.resume_state = self.state

    @transition(
        field=state,
        source=CaseState.AWAITING_YOUTH,
        target=GET_STATE(lambda case: case.resume_state, states=[s.value for s in PAUSABLE_STATES]),
        permission=permissions.is_case_youth,
    )
    def provide_info(self):
        pass

    @transition(
        field=state,
        source=CaseState.COORDINATING,
        target=CaseState.RESOLVED,
        conditions=[permissions.coordination_complete],
        permission=permissions.is_case_handler,
    )
    def resolve(self, outcome: str):
        self.outcome = outcome

    @transition(
        field=state,
        source=CaseState.RESOLVED,
        target=CaseState.FEEDBACK_GIVEN,
        permission=permissions.is_case_handler,
    )
    def give_feedback(self):
        pass

    @transition(
        field=state,
        source=CaseState.FEEDBACK_GIVEN,
        target=CaseState.CLOSED,
        permission=permissions.is_case_youth,
    )
    def rate(self):
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=[CaseState.FEEDBACK_GIVEN, CaseState.CLOSED],
        target=CaseState.COORDINATING,
        conditions=[permissions.dispute_available],
        permission=permissions.is_case_youth,
    )
    def dispute(self):
        # From closed: the youth's own low or "not solved" rating, within the window.
        self.reopen_count += 1
        self.outcome = ""
        self.closed_at = None

    @transition(
        field=state,
        source=CaseState.FEEDBACK_GIVEN,
        target=CaseState.CLOSED,
        permission=permissions.is_system,
    )
    def auto_close(self):
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=[s.value for s in OPEN_STATES],
        target=CaseState.WITHDRAWN,
        permission=permissions.is_case_youth,
    )
    def withdraw(self):
        self.closed_at = timezone.now()


class CaseEvent(models.Model):
    """One entry of a case's timeline: append-only and hash-chained per case.

    On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE of this table.
    ``payload`` never holds personal data, so erasing a youth's data later
    leaves every hash intact.
    """

    # db_index=False: the unique (case, seq) index serves every lookup by case.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events", db_index=False)
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=40)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    # Indexed for person lookups only (partial, below): the system's events (the sweep's
    # reminders and escalations) have no actor and write no entry to it.
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    org = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField()
    payload = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("case event")
        verbose_name_plural = _("case events")
        ordering = ["case_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["case", "seq"], name="caseevent_case_seq_unique")
        ]
        # The supervisor dashboard's escalation counts (by time) and its "missed a deadline?"
        # test per case (casework.selectors.dashboard): a few percent of the events, so these
        # stay small and cost nothing on the inserts of every other kind.
        indexes = [
            models.Index(
                fields=["at"],
                name="caseevent_escalation_at_idx",
                condition=Q(kind__in=["escalated", "sla_breach"]),
            ),
            models.Index(
                fields=["case"],
                name="caseevent_escalation_case_idx",
                condition=Q(kind__in=["escalated", "sla_breach"]),
            ),
            models.Index(
                fields=["actor"], name="caseevent_actor_idx", condition=Q(actor__isnull=False)
            ),
        ]

    def __str__(self):
        return f"{self.case_id}#{self.seq} {self.kind}"


class CaseMessage(models.Model):
    """Free text exchanged on a case (questions, answers, feedback, comments).

    Kept out of the timeline payloads because it may hold personal data; the
    timeline event names the message by id only.
    """

    class Kind(models.TextChoices):
        QUESTION = "question", _("question to the youth")
        ANSWER = "answer", _("answer from the youth")
        FEEDBACK = "feedback", _("feedback to the youth")
        DISPUTE = "dispute", _("dispute")
        NOTE = "note", _("note")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="messages")
    author = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    body = EncryptedTextField()
    internal = models.BooleanField(default=False, help_text=_("Hidden from the youth."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("case message")
        verbose_name_plural = _("case messages")

    def __str__(self):
        return f"{self.case} · {self.get_kind_display()}"


class CoordinationTask(models.Model):
    """A referral: a piece of the solution given to a partner body, with its own deadline."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        DONE = "done", _("done")
        WAIVED = "waived", _("waived")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="coordination_tasks")
    partner = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="coordination_tasks"
    )
    instructions = EncryptedTextField(_("instructions"))
    required = models.BooleanField(_("required before resolving"), default=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    result = EncryptedTextField(_("result"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The SLA sweep (docs/sla.md): the partner is reminded at ``remind_at`` (cleared once
    # sent), and the case's handlers and the partner hear once when ``due_at`` passes.
    remind_at = models.DateTimeField(null=True, blank=True)
    overdue_notified = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("coordination task")
        verbose_name_plural = _("coordination tasks")
        indexes = [
            models.Index(fields=["partner", "status"], name="coord_partner_status_idx"),
            models.Index(
                fields=["remind_at"],
                name="coord_remind_idx",
                condition=Q(status="open", remind_at__isnull=False),
            ),
            models.Index(
                fields=["due_at"],
                name="coord_overdue_idx",
                condition=Q(status="open", overdue_notified=False, due_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.case} → {self.partner}"


class Verification(models.Model):
    """What a verifier found in person ("线下核实分析")."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="verifications")
    verifier = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    station = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    confirmed = models.BooleanField(_("facts confirmed"))
    findings = EncryptedTextField(_("findings"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("verification")
        verbose_name_plural = _("verifications")

    def __str__(self):
        return f"{self.case} · {self.created_at:%Y-%m-%d}"


class Rating(models.Model):
    """The youth's rating of a case ("接受青年评价")."""

    class Solved(models.TextChoices):
        SOLVED = "solved", _("solved")
        PARTLY = "partly", _("partly solved")
        NOT_SOLVED = "not_solved", _("not solved")

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="rating")
    timeliness = models.PositiveSmallIntegerField(_("timeliness"))
    attitude = models.PositiveSmallIntegerField(_("attitude"))
    outcome = models.PositiveSmallIntegerField(_("outcome"))
    solved = models.CharField(_("solved?"), max_length=12, choices=Solved.choices)
    comment = EncryptedTextField(_("comment"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("rating")
        verbose_name_plural = _("ratings")
        constraints = [
            models.CheckConstraint(
                condition=Q(timeliness__gte=1, timeliness__lte=5)
                & Q(attitude__gte=1, attitude__lte=5)
                & Q(outcome__gte=1, outcome__lte=5),
                name="rating_stars_1_to_5",
            )
        ]

    def __str__(self):
        return f"{self.case} · {self.timeliness}/{self.attitude}/{self.outcome}"


# --- evidence (helper H2) ---


def evidence_path(instance: "Evidence", filename: str) -> str:
    # A random name: the uploader's file name may say who the youth is, and a
    # guessable path would be one more way in besides the permission-checked view.
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"evidence/{instance.case_id}/{secrets.token_hex(16)}.{extension}"


class Evidence(models.Model):
    """A file attached to a case by staff (photos, scans, letters), kept under MEDIA_ROOT.

    MEDIA_ROOT is outside the web root: files are served only by the staff view
    after the case's permission checks. Written only by ``casework.services.evidence``.
    """

    class ContentType(models.TextChoices):
        JPEG = "image/jpeg", "JPEG"
        PNG = "image/png", "PNG"
        PDF = "application/pdf", "PDF"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="evidence")
    uploaded_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", verbose_name=_("uploaded by")
    )
    file = models.FileField(_("file"), upload_to=evidence_path, max_length=200)
    content_type = models.CharField(_("content type"), max_length=40, choices=ContentType.choices)
    size = models.PositiveIntegerField(_("size in bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("evidence")
        verbose_name_plural = _("evidence")

    def __str__(self):
        return f"{self.case} · {self.get_content_type_display()} · {self.sha256[:12]}"


# --- personal data protection (helper I) ---


class GuardianConsent(models.Model):
    """A guardian's consent for a youth under the consent age to ask for help.

    Who gave it, how, and who recorded it when; a later revocation ends it.
    """

    class Method(models.TextChoices):
        IN_PERSON = "in_person", _("in person")
        WRITTEN = "written", _("signed form")
        PHONE = "phone", _("by phone")
        ONLINE = "online", _("online confirmation")

    youth = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="guardian_consents", verbose_name=_("youth")
    )
    guardian_name = EncryptedCharField(_("guardian"), max_length=60)
    relationship = models.CharField(_("relationship"), max_length=30)
    method = models.CharField(_("how"), max_length=12, choices=Method.choices)
    given_at = models.DateTimeField(_("given at"), default=timezone.now)
    recorded_by = models.ForeignKey(
        User, null=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("recorded by")
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("guardian consent")
        verbose_name_plural = _("guardian consents")
        ordering = ["-given_at"]

    def __str__(self):
        return f"{self.youth_id} · {self.get_method_display()} · {self.given_at:%Y-%m-%d}"


class AccessLog(models.Model):
    """A staff member opened a youth's personal data: who, when, which case, why.

    Written by ``casework.services.privacy.record_personal_data_access`` only;
    supervisors read it, nobody edits it.
    """

    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", verbose_name=_("who")
    )
    case = models.ForeignKey(
        Case, on_delete=models.PROTECT, related_name="access_logs", verbose_name=_("case")
    )
    org = models.ForeignKey(
        Organisation,
        null=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("acting for"),
    )
    purpose = models.CharField(_("why"), max_length=60)
    task = models.ForeignKey(
        "workflows.CaseTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("task held"),
    )
    fields = models.JSONField(_("fields shown"), default=list, blank=True)
    at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("personal data access")
        verbose_name_plural = _("personal data accesses")
        ordering = ["-at"]
        indexes = [models.Index(fields=["case", "-at"], name="accesslog_case_idx")]

    def __str__(self):
        return f"{self.actor_id} → {self.case_id} · {self.purpose}"


class PrivacyRequest(models.Model):
    """A youth's request to export or erase their data, and what came of it."""

    class Kind(models.TextChoices):
        EXPORT = "export", _("export")
        ERASURE = "erasure", _("erasure")

    class Status(models.TextChoices):
        DONE = "done", _("done")
        REFUSED = "refused", _("refused")

    youth = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="privacy_requests", verbose_name=_("youth")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    requested_by = models.ForeignKey(
        User, null=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("privacy request")
        verbose_name_plural = _("privacy requests")
        ordering = ["-at"]

    def __str__(self):
        return f"{self.youth_id} · {self.kind} · {self.status}"


# --- ratings, scores, complaints and reports (helper G) ---


# Score rows are caches that the nightly recompute rewrites whole: their foreign keys
# carry no database constraint or index (Django still cascades deletes), which keeps
# the rewrite of tens of thousands of rows cheap.
CACHE_FK = {"db_constraint": False, "db_index": False}


class ScorePending(models.Model):
    """A timeline event written by the SLA sweep whose score deltas are still to be added.

    The sweep writes one row per escalation in its batch's transaction (one narrow
    insert) instead of updating the score rows there; a follow-up task
    (``casework.services.score_queue.apply_pending``) adds the deltas and deletes
    the rows in one transaction, so each event is counted once. The nightly
    recompute counts every event itself and forgets the pending rows.
    """

    # Plain references (no constraint, no index): events are append-only.
    event = models.ForeignKey(
        "CaseEvent",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    category_id = models.BigIntegerField()

    class Meta:
        verbose_name = _("pending score update")
        verbose_name_plural = _("pending score updates")

    def __str__(self):
        return f"event {self.event_id}"


class ScoreEpoch(models.Model):
    """The moment the recency weights of every ``ScoreState`` are scaled to (one row).

    Weights are ``2 ** ((t - epoch) / half_life)``; only the nightly recompute moves the
    epoch (to the present, so they stay near 1), under the exclusive scores advisory
    lock. Writers read it without locking the row (docs/scores.md).
    """

    epoch = models.DateTimeField()

    class Meta:
        verbose_name = _("score epoch")
        verbose_name_plural = _("score epoch")

    def __str__(self):
        return self.epoch.isoformat()


class ScoreState(models.Model):
    """The running sums behind one subject's scores: an organisation, a staff member,
    an organisation within one category, or the platform (``key`` names it).

    Updated in O(1) on every rating, reopen and escalation; rebuilt by the full recompute.
    """

    key = models.CharField(max_length=48, unique=True)
    org = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="+", **CACHE_FK
    )
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+", **CACHE_FK
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.CASCADE, related_name="+", **CACHE_FK
    )
    weight = models.FloatField(default=0)
    quality = models.FloatField(default=0)
    solved = models.FloatField(default=0)
    on_time = models.FloatField(default=0)
    arrived = models.FloatField(default=0)
    escalated_away = models.FloatField(default=0)
    reopened = models.FloatField(default=0)

    class Meta:
        verbose_name = _("score state")
        verbose_name_plural = _("score states")
        # The platform's sums are read as the sum of the organisation rows (overall:
        # category NULL, or one category).
        indexes = [models.Index(fields=["category", "org"], name="scorestate_category_org_idx")]

    def __str__(self):
        return self.key


class ScoreShare(models.Model):
    """Who a rated case is attributed to: an organisation by the share of time it held the
    case (and whether it missed a deadline), or a staff member who handled it (share 1).

    Computed from the timeline when the case is rated. ``category`` is a copy of the
    case's, so the full recompute reads the attribution and the ratings without the
    cases; a database trigger (migration 0024, PostgreSQL) updates the copies in the statement
    that re-categorises a case.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="score_shares")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+", **CACHE_FK)
    org = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    share = models.FloatField(default=1)
    on_time = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("score share")
        verbose_name_plural = _("score shares")
        indexes = [models.Index(fields=["case"], name="scoreshare_case_idx")]

    def __str__(self):
        return f"{self.case_id} → {self.org_id or self.user_id} × {self.share:.2f}"


class ScoreEvent(models.Model):
    """A timeline event that the scores count (an arrival, an escalation, a reopen), as
    the full recompute reads it: one narrow row with the case's category.

    Written by the database, not by the services: a trigger on the timeline
    (migration 0027) adds the row in the statement that appends a counted event,
    whatever appended it (a service, the SLA sweep's batch statement, a ``COPY``),
    with the case's category at that moment; the trigger of migration 0024 moves the
    copies with a re-categorised case. So the recompute's event pass scans these rows
    instead of the whole timeline joined with every case. ``generate_load_data``
    switches the trigger off while it loads and fills the rows in one statement.
    """

    event = models.OneToOneField(
        "CaseEvent",
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    category_id = models.BigIntegerField()
    org_id = models.BigIntegerField(null=True)  # the holder after the event
    from_org_id = models.BigIntegerField(null=True)  # escalations: the organisation it left
    kind = models.CharField(max_length=40)
    at = models.DateTimeField()

    class Meta:
        verbose_name = _("counted score event")
        verbose_name_plural = _("counted score events")

    def __str__(self):
        return f"event {self.event_id} {self.kind}"


class ScoreSnapshot(models.Model):
    """A subject's scores on one day (written by the nightly recompute): the trends.

    Keyed by (key, day) itself (migration 0028): no surrogate id, so each of the nightly
    run's inserts writes the heap row, the key's entry and the day's, and no sequence.
    The trends read by key and day; the nightly run replaces its day's rows by day.
    """

    pk = models.CompositePrimaryKey("key", "day")
    day = models.DateField()
    key = models.CharField(max_length=48)
    org = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="+", **CACHE_FK
    )
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="+", **CACHE_FK
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.CASCADE, related_name="+", **CACHE_FK
    )
    evaluation = models.FloatField()
    effectiveness = models.FloatField()
    index = models.FloatField()
    ratings = models.FloatField()

    class Meta:
        verbose_name = _("score snapshot")
        verbose_name_plural = _("score snapshots")
        indexes = [models.Index(fields=["day"], name="scoresnapshot_day")]

    def __str__(self):
        return f"{self.key} {self.day}"


class Complaint(models.Model):
    """A youth's complaint about how a case was handled ("吐槽"), for the supervisors of the
    organisation that held the case, with its own deadline."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        ANSWERED = "answered", _("answered")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="complaints")
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="complaints",
        verbose_name=_("organisation complained about"),
    )
    body = models.TextField(_("complaint"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    due_at = models.DateTimeField(_("answer due"), db_index=True)
    answer = models.TextField(_("answer"), blank=True)
    answered_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the SLA sweep reminded the organisation that the answer is overdue (once).
    overdue_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")
        ordering = ["due_at"]
        indexes = [
            models.Index(fields=["org", "status"], name="complaint_org_status_idx"),
            models.Index(
                fields=["due_at"],
                name="complaint_overdue_idx",
                condition=Q(status="open", overdue_notified_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.case} · {self.get_status_display()}"


class Review(models.Model):
    """A supervisor's decision on a case hidden after reports."""

    class Decision(models.TextChoices):
        RESTORE = "restore", _("reports unfounded: show it again")
        KEEP_HIDDEN = "keep_hidden", _("reports upheld: keep it hidden")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=12, choices=Decision.choices)
    note = models.TextField(_("note"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")

    def __str__(self):
        return f"{self.case} · {self.get_decision_display()}"


class Report(models.Model):
    """Someone says a case is fake or abusive, or whether its help information is true.

    One per person and case: reports from distinct people are what "independent" means.
    """

    class Kind(models.TextChoices):
        FAKE = "fake", _("fake case")
        ABUSIVE = "abusive", _("abusive content")
        UNTRUE = "untrue", _("the help information is not true")
        TRUE = "true", _("the help information is true")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="reports")
    reporter = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    review = models.ForeignKey(
        Review, null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        constraints = [
            models.UniqueConstraint(fields=["case", "reporter"], name="report_one_per_person")
        ]

    def __str__(self):
        return f"{self.case} · {self.get_kind_display()}"


# --- Open311 API keys (helper F) ---


class KeyHolder(models.Model):
    """Another system that signs its calls with an API key (casework/apikeys.py).

    Only a SHA-256 of the key is stored with its ``prefix``; what the system
    does is done by ``account``, a user without a password.
    """

    name = models.CharField(_("name"), max_length=60, unique=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    account = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self):
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Open311Key(KeyHolder):
    """A key that lets another system POST service requests through Open311.

    Only a SHA-256 of the key is stored (the key is long and random, so a plain
    hash is enough); ``prefix`` finds the row without scanning. Cases posted with
    a key belong to its ``account``, a user without a password.
    """

    class Meta:
        verbose_name = _("Open311 API key")
        verbose_name_plural = _("Open311 API keys")


# --- offline stations and verification visits (casework/models_stations.py) ---

from .models_stations import (  # noqa: E402,F401
    Appointment,
    StationException,
    StationProfile,
    StationService,
    VisitSlot,
)

# --- intake: staff-entered and hand-off cases, claims, station-visit ratings (helper intake) ---


class Intake(models.Model):
    """A case the youth did not type in themselves: who entered it, the consent, the claim.

    Staff at a desk or the 12355 line, or a partner service through the hand-off API,
    enter it for a youth who gets a placeholder account (name and contact only). The
    youth takes the case into their own account with a one-time code: only its hash
    is kept, with an expiry and a limit on wrong tries (casework.services.intake).
    """

    class ConsentBy(models.TextChoices):
        YOUTH = "youth", _("the youth")
        GUARDIAN = "guardian", _("a parent or guardian")

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="intake")
    channel = models.CharField(_("intake channel"), max_length=10, choices=Case.Channel.choices)
    entered_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", verbose_name=_("entered by")
    )
    desk = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("entered at"),
    )
    consent_by = models.CharField(_("consent given by"), max_length=10, choices=ConsentBy.choices)
    consent_method = models.CharField(
        _("consent given how"), max_length=12, choices=GuardianConsent.Method.choices
    )
    guardian_consent = models.ForeignKey(
        GuardianConsent, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    consented_at = models.DateTimeField(_("consent given at"), default=timezone.now)
    claim_code_hash = models.CharField(max_length=64, blank=True)
    claim_expires_at = models.DateTimeField(_("claim code expires"), null=True, blank=True)
    claim_attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    claimed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("intake")
        verbose_name_plural = _("intakes")

    def __str__(self):
        return f"{self.case_id} · {self.get_channel_display()}"


class IntakeService(KeyHolder):
    """Another platform service (e.g. the Q&A service) that may hand cases over.

    Only a SHA-256 of its API key is kept (``manage.py intake_services``); the
    cases it hands over are entered by its password-less ``account``.
    """

    class Meta:
        verbose_name = _("hand-off service")
        verbose_name_plural = _("hand-off services")


class Handoff(models.Model):
    """One hand-off: the caller's id for it, unique per service, and the case it became.

    The row is written first, in the transaction that creates the case, so a repeat
    (even a concurrent one) finds it or waits on the unique index and gets the same case.
    """

    service = models.ForeignKey(IntakeService, on_delete=models.PROTECT, related_name="handoffs")
    external_id = models.CharField(_("caller's id"), max_length=100)
    case = models.OneToOneField(
        Case, null=True, blank=True, on_delete=models.PROTECT, related_name="handoff"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("hand-off")
        verbose_name_plural = _("hand-offs")
        constraints = [
            models.UniqueConstraint(
                fields=["service", "external_id"], name="handoff_service_external_id_unique"
            )
        ]

    def __str__(self):
        return f"{self.service_id}:{self.external_id}"


class VisitRating(models.Model):
    """The youth's rating of a station visit (a station's ``Verification``): once per visit."""

    verification = models.OneToOneField(
        Verification, on_delete=models.PROTECT, related_name="visit_rating"
    )
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="visit_ratings")
    station = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="visit_ratings"
    )
    stars = models.PositiveSmallIntegerField(_("stars"))
    comment = EncryptedTextField(_("comment"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("station visit rating")
        verbose_name_plural = _("station visit ratings")
        constraints = [
            models.CheckConstraint(
                condition=Q(stars__gte=1, stars__lte=5), name="visitrating_stars_1_to_5"
            )
        ]

    def __str__(self):
        return f"{self.case_id} · {self.stars}/5"


# --- the supervisor dashboard's rollup (casework/models_dashboard.py) ---

from .models_dashboard import (  # noqa: E402,F401
    DashboardOpenStats,
    DashboardRollup,
    DashboardWeekStats,
)
