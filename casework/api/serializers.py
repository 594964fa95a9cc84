"""Serializers check the shape of input and render output; they decide nothing.

Input serializers refuse any field they do not declare, so a client cannot slip
in ``state``, ``org``, ``assignee``, ``version`` or ``youth`` (the owner): those
change only through the services, never by being set.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject

from .. import permissions
from ..models import Case, CaseEvent, CaseMessage, Category, CoordinationTask, Organisation, User
from ..states import STAGE_OF_STATE, CaseState

# Fields that belong to the system, named so the refusal says why.
PROTECTED_FIELDS = frozenset(
    {
        "state",
        "org",
        "org_id",
        "organisation",
        "assignee",
        "assignee_id",
        "version",
        "youth",
        "youth_id",
        "owner",
        "reference",
        "public_token",
        "id",
        "pk",
    }
)


class StrictInput(serializers.Serializer):
    """An input serializer that refuses undeclared fields with 400 (never ignores them)."""

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [
                            str(
                                _("This field cannot be set.")
                                if name in PROTECTED_FIELDS
                                else _("Unknown field.")
                            )
                        ]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


class VersionedInput(StrictInput):
    """Case actions: ``version`` is the version the client last saw (or send If-Match)."""

    version = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="The case version the client last saw; or send it as If-Match.",
    )


# --- reference data ------------------------------------------------------------------


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["code", "name", "name_en", "sensitive"]


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "name", "name_en", "level", "kind", "region_code"]


class OrgRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    level = serializers.IntegerField()


class PersonRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="__str__")


class RoleSerializer(serializers.Serializer):
    org_id = serializers.IntegerField()
    org_path = serializers.CharField()
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    display_name = serializers.CharField()
    is_superuser = serializers.BooleanField()
    roles = RoleSerializer(many=True)


class TokenRequestSerializer(StrictInput):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


# --- cases ---------------------------------------------------------------------------


class TaskSerializer(serializers.ModelSerializer):
    case = serializers.CharField(source="case.reference", read_only=True)
    partner = OrgRefSerializer(read_only=True)

    class Meta:
        model = CoordinationTask
        fields = [
            "id",
            "case",
            "partner",
            "instructions",
            "required",
            "due_at",
            "status",
            "result",
            "created_at",
            "finished_at",
        ]


# Which fields each view of a case shows (casework.permissions.case_access).
YOUTH_FIELDS = (
    "reference",
    "state",
    "stage",
    "version",
    "category",
    "urgency",
    "region_code",
    "title",
    "description",
    "is_public",
    "public_token",
    "org",
    "requested_org",
    "stage_due_at",
    "escalation_count",
    "reopen_count",
    "appealed",
    "reject_reason",
    "outcome",
    "outcome_note",
    "submitted_at",
    "closed_at",
    "updated_at",
)
STAFF_FIELDS = (
    *YOUTH_FIELDS,
    "youth",
    "assignee",
    "station",
    "resume_state",
    "sla_breached",
    "channel",
)
PARTNER_FIELDS = ("reference", "state", "stage", "version", "category", "tasks")
# What the actor learns after an action that moved the case out of their sight
# (an escalation, a transfer): that it went through, and nothing more.
AFTER_MOVE_FIELDS = ("reference", "state", "version")


class CaseSerializer(serializers.ModelSerializer):
    """A case as its viewer may see it: fields outside their view are left out.

    Staff see everything; the youth everything but internal details; a partner
    only the reference, category and its own coordination tasks.
    """

    stage = serializers.SerializerMethodField()
    category = serializers.SlugRelatedField(slug_field="code", read_only=True)
    org = OrgRefSerializer(read_only=True)
    requested_org = OrgRefSerializer(read_only=True, allow_null=True)
    station = OrgRefSerializer(read_only=True, allow_null=True)
    assignee = PersonRefSerializer(read_only=True, allow_null=True)
    youth = PersonRefSerializer(read_only=True)
    tasks = serializers.SerializerMethodField()
    # Blank until set: the schema's enums must include "".
    outcome = serializers.ChoiceField(
        choices=Case.Outcome.choices, allow_blank=True, read_only=True
    )
    reject_reason = serializers.ChoiceField(
        choices=Case.RejectReason.choices, allow_blank=True, read_only=True
    )
    resume_state = serializers.ChoiceField(
        choices=CaseState.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = Case
        fields = list(dict.fromkeys((*STAFF_FIELDS, *PARTNER_FIELDS)))
        read_only_fields = fields

    def get_stage(self, case) -> str:
        return STAGE_OF_STATE.get(case.state, "")

    def get_tasks(self, case) -> list[dict]:
        tasks = self.context.get("partner_tasks", {}).get(case.pk, [])
        return TaskSerializer(tasks, many=True).data

    _plans: dict = {}  # keep -> plan, built once per process (see _plan)

    @classmethod
    def _plan_for(cls, keep: tuple[str, ...]) -> list:
        """How to render the fields in ``keep``: the same for every request, so built once."""
        plan = cls._plans.get(keep)
        if plan is None:
            fields = cls().fields  # an unbound template: no request, no context
            plan = cls._plans[keep] = _plan([f for f in fields.values() if f.field_name in keep])
        return plan

    def to_representation(self, case):
        access = self.context.get("access") or {}
        view = access.get(case.pk) if isinstance(access, dict) else access
        keep = {
            permissions.ACCESS_STAFF: STAFF_FIELDS,
            permissions.ACCESS_YOUTH: YOUTH_FIELDS,
            permissions.ACCESS_PARTNER: PARTNER_FIELDS,
        }.get(view, AFTER_MOVE_FIELDS)
        # Only the fields this viewer sees are computed (a partner's tasks are never
        # rendered for staff only to be dropped).
        return _render(case, self._plan_for(keep), self)


# --- rendering without DRF's per-row introspection -------------------------------------
#
# Serializer.to_representation asks, for every field of every row, whether the attribute
# is a callable (inspect.signature each time) and renders nested serializers through the
# same machinery, after building the fields anew for every request; a page of twenty
# cases spent most of its Python time there. The plan below is made once per process and
# kind of view: a plain attribute is read with getattr and given to the field's own
# to_representation (so every value is exactly what DRF renders, which
# tests/casework/test_api.py checks against DRF itself); ``get_<name>`` methods run on the
# request's serializer (its context); anything else goes through DRF.

_STR = object()  # the source "__str__": str(obj)


def _plan(fields) -> list:
    plan = []
    for field in fields:
        attrs = getattr(field, "source_attrs", None)
        if isinstance(field, serializers.SerializerMethodField):
            plan.append((field.field_name, None, field.method_name))  # on the serializer
        elif field.source == "*":
            plan.append((field.field_name, field, None))
        elif isinstance(field, serializers.Serializer) and not isinstance(
            field, serializers.ListSerializer
        ):
            child = _plan(list(field._readable_fields))
            plan.append((field.field_name, attrs[0], lambda v, child=child: _render(v, child)))
        elif attrs == ["__str__"]:
            plan.append((field.field_name, _STR, field.to_representation))
        elif attrs and len(attrs) == 1:
            plan.append((field.field_name, attrs[0], field.to_representation))
        else:
            plan.append((field.field_name, field, None))  # DRF's own way
    return plan


def _render(obj, plan, owner=None) -> dict:
    """``owner``: the serializer whose ``get_<field>`` methods (and context) apply."""
    data = {}
    for name, attr, render in plan:
        if render is None:  # attr is the field: DRF's Serializer.to_representation
            try:
                value = attr.get_attribute(obj)
            except SkipField:
                continue
            check = value.pk if isinstance(value, PKOnlyObject) else value
            data[name] = None if check is None else attr.to_representation(value)
        elif attr is None:  # a SerializerMethodField: render is the method's name
            data[name] = getattr(owner, render)(obj)
        else:
            value = str(obj) if attr is _STR else getattr(obj, attr)
            data[name] = None if value is None else render(value)
    return data


class CaseSubmitSerializer(StrictInput):
    category = serializers.SlugRelatedField(slug_field="code", queryset=Category.objects.all())
    region_code = serializers.RegexField(r"^\d{6}$", max_length=6)
    title = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=5000)
    urgency = serializers.ChoiceField(choices=Case.Urgency.choices, default=Case.Urgency.NORMAL)
    requested_org = serializers.PrimaryKeyRelatedField(
        queryset=Organisation.objects.all(), required=False, allow_null=True
    )
    is_public = serializers.BooleanField(default=True)
    birth_date = serializers.DateField(
        required=False,
        help_text="The youth's birth date, when their profile has none yet (needed once: "
        "under 14 a guardian's consent comes first).",
    )


class EventSerializer(serializers.ModelSerializer):
    org = serializers.CharField(source="org.name", default=None, allow_null=True)
    actor = serializers.SerializerMethodField()

    class Meta:
        model = CaseEvent
        fields = ["seq", "kind", "at", "from_state", "to_state", "org", "actor", "hash"]

    def get_actor(self, event) -> str | None:
        # The youth sees that staff acted, not who; staff see the name.
        if event.actor_id is None:
            return None
        if self.context.get("access") != permissions.ACCESS_STAFF:
            return "youth" if event.actor_id == event.case.youth_id else "staff"
        return str(event.actor)


class MessageSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = CaseMessage
        fields = ["id", "kind", "body", "internal", "created_at", "author"]

    def get_author(self, message) -> str | None:
        if message.author_id is None:
            return None
        if self.context.get("access") != permissions.ACCESS_STAFF:
            return "youth" if message.author_id == message.case.youth_id else "staff"
        return str(message.author)


class PublicCaseSerializer(serializers.Serializer):
    """casework.public.public_view: private cases carry only the first three fields."""

    reference = serializers.CharField()
    private = serializers.BooleanField()
    in_progress = serializers.BooleanField()
    state = serializers.ChoiceField(choices=CaseState.choices, required=False)
    stage = serializers.CharField(required=False)
    category = serializers.CharField(required=False)
    category_name = serializers.CharField(required=False)
    region_code = serializers.CharField(required=False, allow_blank=True)
    region = serializers.CharField(required=False, allow_blank=True)
    handling_level = serializers.IntegerField(required=False)
    submitted_on = serializers.DateField(required=False)
    closed_on = serializers.DateField(required=False, allow_null=True)
    last_update = serializers.DictField(required=False, allow_null=True)
    escalations = serializers.ListField(child=serializers.DictField(), required=False)
    escalation_count = serializers.IntegerField(required=False)
    outcome = serializers.CharField(required=False, allow_null=True)
    rating = serializers.DictField(required=False, allow_null=True)
    timeline = serializers.ListField(child=serializers.DictField(), required=False)


# --- action inputs -------------------------------------------------------------------


class NoInput(VersionedInput):
    pass


class RejectInput(VersionedInput):
    reason = serializers.ChoiceField(choices=Case.RejectReason.choices)
    note = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)


class StatementInput(VersionedInput):
    statement = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)


class ScheduleVerificationInput(VersionedInput):
    station = serializers.PrimaryKeyRelatedField(
        queryset=Organisation.objects.all(), required=False, allow_null=True
    )


class RecordVerificationInput(VersionedInput):
    confirmed = serializers.BooleanField()
    findings = serializers.CharField(max_length=5000)


class QuestionInput(VersionedInput):
    question = serializers.CharField(max_length=5000)


class AnswerInput(VersionedInput):
    answer = serializers.CharField(max_length=5000)


class ResolveInput(VersionedInput):
    outcome = serializers.ChoiceField(choices=Case.Outcome.choices)
    note = serializers.CharField(max_length=5000)


class FeedbackInput(VersionedInput):
    message = serializers.CharField(max_length=5000)


class RateInput(VersionedInput):
    timeliness = serializers.IntegerField(min_value=1, max_value=5)
    attitude = serializers.IntegerField(min_value=1, max_value=5)
    outcome = serializers.IntegerField(min_value=1, max_value=5)
    solved = serializers.ChoiceField(
        choices=[("solved", "solved"), ("partly", "partly"), ("not_solved", "not solved")]
    )
    comment = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)


class ReasonInput(VersionedInput):
    reason = serializers.CharField(max_length=2000)


class OptionalReasonInput(VersionedInput):
    reason = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class EscalateInput(VersionedInput):
    reason = serializers.ChoiceField(
        choices=[("manual", "manual"), ("beyond_capacity", "beyond capacity")]
    )
    note = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)


class MoveInput(VersionedInput):
    to_org = serializers.PrimaryKeyRelatedField(queryset=Organisation.objects.all())
    reason = serializers.CharField(max_length=2000)


class AssignInput(VersionedInput):
    # The one place an assignee may be named: the assign action itself.
    to_user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all())


class CommentInput(StrictInput):
    body = serializers.CharField(max_length=5000)
    internal = serializers.BooleanField(default=True)


class ReferInput(VersionedInput):
    partner = serializers.PrimaryKeyRelatedField(queryset=Organisation.objects.all())
    instructions = serializers.CharField(max_length=5000)
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    required = serializers.BooleanField(default=True)


class TaskResultInput(VersionedInput):
    result = serializers.CharField(max_length=5000)


class TaskWaiveInput(VersionedInput):
    reason = serializers.CharField(max_length=2000)


class VisitRateInput(VersionedInput):
    stars = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


# --- intake channels (casework.services.intake) ------------------------------------------


class _YouthAndConsent(StrictInput):
    youth_name = serializers.CharField(max_length=60, required=False, default="", allow_blank=True)
    youth_phone = serializers.CharField(max_length=32, required=False, default="", allow_blank=True)
    birth_date = serializers.DateField(help_text="Needed for the under-14 guardian-consent rule.")
    consent_by = serializers.ChoiceField(
        choices=[("youth", "youth"), ("guardian", "guardian")],
        help_text="Who consented to asking for help; under 14 it must be a guardian.",
    )
    guardian_name = serializers.CharField(
        max_length=60, required=False, default="", allow_blank=True
    )
    guardian_relationship = serializers.CharField(
        max_length=30, required=False, default="", allow_blank=True
    )
    category = serializers.SlugRelatedField(slug_field="code", queryset=Category.objects.all())
    region_code = serializers.RegexField(r"^\d{6}$", max_length=6)
    title = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=5000)
    urgency = serializers.ChoiceField(choices=Case.Urgency.choices, default=Case.Urgency.NORMAL)


class HandoffInput(_YouthAndConsent):
    """A question another platform service hands over (its id makes a repeat harmless)."""

    external_id = serializers.RegexField(
        r"^[A-Za-z0-9._:/-]{1,100}$",
        max_length=100,
        help_text="The caller's own id of the question: the same id gives the same case.",
    )


class HandoffResult(serializers.Serializer):
    reference = serializers.CharField()
    external_id = serializers.CharField()
    created = serializers.BooleanField(help_text="False when this id was handed over before.")
    state = serializers.ChoiceField(choices=CaseState.choices)
    channel = serializers.CharField()
    org = serializers.CharField(help_text="The organisation the case was routed to.")


class IntakeInput(_YouthAndConsent):
    """A case staff enter for a youth at a desk (walk-in) or on the 12355 line (phone)."""

    channel = serializers.ChoiceField(choices=[("walk_in", "walk-in"), ("phone", "phone")])
    desk = serializers.PrimaryKeyRelatedField(
        queryset=Organisation.objects.all(),
        required=False,
        allow_null=True,
        help_text="The organisation you enter it for; needed only if you work at several.",
    )
    consent_method = serializers.ChoiceField(
        choices=[("in_person", "in person"), ("written", "signed form"), ("phone", "by phone")],
        required=False,
        default="",
        allow_blank=True,
    )
    youth_name = serializers.CharField(max_length=60)
    youth_phone = serializers.CharField(max_length=32)
    is_public = serializers.BooleanField(default=False)
    requested_org = serializers.PrimaryKeyRelatedField(
        queryset=Organisation.objects.all(), required=False, allow_null=True
    )


class ClaimInput(StrictInput):
    reference = serializers.CharField(max_length=32)
    code = serializers.CharField(max_length=16, help_text="The code sent by SMS.")
