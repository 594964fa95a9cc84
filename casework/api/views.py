"""API views: check the input's shape, call one service or selector, render the result.

Who may list what: casework.selectors.cases_visible_to (via .selectors.api_cases).
What a person sees of one case: casework.permissions.case_access. What they may
do: the services themselves (NotPermitted -> 403). A case outside someone's scope
is a 404 whatever the reason, so a stranger learns nothing about it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.authtoken.models import Token
from rest_framework.decorators import api_view, permission_classes, schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from casework.services import privacy
from casework.services.privacy import record_personal_data_access

from .. import permissions, services
from ..errors import NotPermitted, ValidationFailed
from ..models import Case, Category, CoordinationTask, Organisation
from ..public import public_queryset, public_view
from . import selectors, serializers, throttling
from .errors import CaseNotVisible, PreconditionRequired, log_refusal
from .filters import CaseFilter, TaskFilter

REFERENCE_RE = re.compile(r"^[A-Za-z0-9-]{1,32}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description='The case version last seen, as returned in ETag (e.g. "3"); '
    "or send `version` in the body.",
)


def _etag(case: Case) -> str:
    return f'"{case.version}"'


def expected_version(request, data: dict) -> int:
    """The version the client acts on: If-Match or ``version``; one is required (428)."""
    header = request.headers.get("If-Match", "").strip()
    body = data.get("version")
    from_header = None
    if header:
        raw = header.removeprefix("W/").strip().strip('"')
        if not raw.isdigit() or len(raw) > 18:
            raise ValidationFailed(
                field_errors={"If-Match": [str(_('Send the version as a number, e.g. "3".'))]}
            )
        from_header = int(raw)
    if from_header is not None and body is not None and from_header != body:
        raise ValidationFailed(field_errors={"version": [str(_("If-Match and version disagree."))]})
    version = from_header if from_header is not None else body
    if version is None:
        raise PreconditionRequired()
    return version


def visible_case(request, reference: str) -> Case:
    """The case if the caller may see it; 404 otherwise (logged, without personal data)."""
    case = selectors.case_for(request.user, reference) if REFERENCE_RE.match(reference) else None
    if case is None:
        log_refusal(request, "not_found")
        raise CaseNotVisible()
    return case


def after_action(request, reference: str) -> Response:
    """The case after an action; the actor may no longer see it (moved elsewhere)."""
    case = selectors.case_for(request.user, reference) or Case.objects.get(reference=reference)
    return case_response(request, case)


def case_response(request, case: Case, *, http_status=status.HTTP_200_OK) -> Response:
    access, tasks = selectors.access_for(request.user, [case])
    body = serializers.CaseSerializer(
        case, context={"access": access, "partner_tasks": tasks, "request": request}
    ).data
    return Response(body, status=http_status, headers={"ETag": _etag(case)})


# --- session, reference data ------------------------------------------------------------


class TokenView(APIView):
    """Exchange a username and password for an API token (rate-limited per user name and IP)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = throttling.LOGIN

    @extend_schema(
        request=serializers.TokenRequestSerializer,
        responses={200: serializers.TokenSerializer},
        operation_id="auth_token_create",
        tags=["auth"],
    )
    def post(self, request):
        data = serializers.TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            log_refusal(request, "bad_credentials")
            raise ValidationFailed(_("Wrong user name or password."))
        if user.requires_2fa:
            # A password alone must not open an account that signs in with a TOTP code.
            log_refusal(request, "two_factor_required")
            raise NotPermitted(_("This account signs in with a two-factor code; no API token."))
        token, _created = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class MeView(APIView):
    """Who the caller is and the roles they hold."""

    @extend_schema(responses=serializers.MeSerializer, tags=["auth"])
    def get(self, request):
        user = request.user
        return Response(
            serializers.MeSerializer(
                {
                    "id": user.pk,
                    "username": user.username,
                    "display_name": user.display_name,
                    "is_superuser": user.is_superuser,
                    "roles": permissions.roles_of(user),
                }
            ).data
        )


class CategoryList(generics.ListAPIView):
    """The service categories (public)."""

    permission_classes = [AllowAny]
    serializer_class = serializers.CategorySerializer
    queryset = Category.objects.all()
    pagination_class = None

    @extend_schema(tags=["reference"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class OrganisationList(generics.ListAPIView):
    """Active organisations (to name one when asking for help, or to move a case to)."""

    serializer_class = serializers.OrganisationSerializer
    queryset = Organisation.objects.filter(is_active=True).order_by("path")
    filterset_fields = ["kind", "region_code", "level"]

    @extend_schema(tags=["reference"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- cases ------------------------------------------------------------------------------


class CaseList(generics.ListCreateAPIView):
    """The cases the caller may see (filters below), and asking for help (submitting)."""

    serializer_class = serializers.CaseSerializer
    filterset_class = CaseFilter

    def get_queryset(self):
        return selectors.api_cases(self.request.user)

    def page_rows(self, ids):
        """The page's cases, read by id (``pagination.LeanPaginator``), scope checked."""
        return selectors.cases_by_ids(self.request.user, ids)

    def get_throttles(self):
        if self.request.method == "POST":
            return [cls() for cls in (*throttling.SUBMIT, throttling.ApiUserThrottle)]
        return super().get_throttles()

    @extend_schema(tags=["cases"])
    def get(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        access, tasks = selectors.access_for(request.user, page)
        data = serializers.CaseSerializer(
            page, many=True, context={"access": access, "partner_tasks": tasks}
        ).data
        return self.get_paginated_response(data)

    @extend_schema(
        request=serializers.CaseSubmitSerializer,
        responses={201: serializers.CaseSerializer},
        tags=["cases"],
    )
    def post(self, request, *args, **kwargs):
        data = serializers.CaseSubmitSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        born = fields.pop("birth_date", None)
        if born is not None:
            request.user = privacy.declare_birth_date(user=request.user, born=born)
        case = services.case_submit(youth=request.user, **fields)
        case = selectors.case_for(request.user, case.reference)
        return case_response(request, case, http_status=status.HTTP_201_CREATED)


class CaseDetail(APIView):
    """One case, as much of it as the caller may see; ETag carries its version."""

    @extend_schema(responses=serializers.CaseSerializer, tags=["cases"])
    def get(self, request, reference: str):
        case = visible_case(request, reference)
        # Who opened the youth's data, and why (docs/privacy.md); the youth's own look is not.
        record_personal_data_access(actor=request.user, case=case)
        return case_response(request, case)


def _staff_or_youth(request, case: Case) -> str:
    access = permissions.case_access(case, request.user)
    if access not in (permissions.ACCESS_STAFF, permissions.ACCESS_YOUTH):
        log_refusal(request, "forbidden")
        raise NotPermitted()
    return access


class CaseEvents(APIView):
    """The case's timeline (staff and the youth; partners see only their task)."""

    @extend_schema(responses=serializers.EventSerializer(many=True), tags=["cases"])
    def get(self, request, reference: str):
        case = visible_case(request, reference)
        access = _staff_or_youth(request, case)
        events = selectors.case_events(case)
        return Response(
            serializers.EventSerializer(events, many=True, context={"access": access}).data
        )


class CaseMessages(APIView):
    """Questions, answers, feedback and notes; internal notes only for staff."""

    @extend_schema(responses=serializers.MessageSerializer(many=True), tags=["cases"])
    def get(self, request, reference: str):
        case = visible_case(request, reference)
        access = _staff_or_youth(request, case)
        messages = selectors.case_messages(
            case, include_internal=access == permissions.ACCESS_STAFF
        )
        return Response(
            serializers.MessageSerializer(messages, many=True, context={"access": access}).data
        )


class CaseComment(APIView):
    """Add a note (staff: internal unless said otherwise; the youth's notes are never internal)."""

    @extend_schema(
        request=serializers.CommentInput,
        responses={200: serializers.CaseSerializer},
        tags=["case actions"],
        operation_id="cases_comment",
    )
    def post(self, request, reference: str):
        case = visible_case(request, reference)
        data = serializers.CommentInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.case_comment(case=case.pk, actor=request.user, **data.validated_data)
        return after_action(request, reference)


@dataclass(frozen=True)
class Action:
    """One case action: its input and the one service call it makes."""

    name: str
    input: type
    call: Callable
    summary: str


def _by(name: str) -> Callable:
    service = getattr(services, name)
    return lambda case, actor, version, **data: service(
        case=case, actor=actor, expected_version=version, **data
    )


def _renamed(name: str, **renames) -> Callable:
    service = getattr(services, name)

    def call(case, actor, version, **data):
        for old, new in renames.items():
            data[new] = data.pop(old)
        return service(case=case, actor=actor, expected_version=version, **data)

    return call


ACTIONS = [
    Action("accept", serializers.NoInput, _by("case_accept"), "Accept at intake review."),
    Action("reject", serializers.RejectInput, _by("case_reject"), "Reject, with a reason."),
    Action("appeal", serializers.StatementInput, _by("case_appeal"), "Appeal a rejection."),
    Action(
        "schedule-verification",
        serializers.ScheduleVerificationInput,
        _by("case_schedule_verification"),
        "Send for offline verification (optionally to a station).",
    ),
    Action(
        "record-verification",
        serializers.RecordVerificationInput,
        _by("case_record_verification"),
        "Record what the verifier found (confirmed or not).",
    ),
    Action(
        "request-info",
        serializers.QuestionInput,
        _by("case_request_info"),
        "Ask the youth for information.",
    ),
    Action("provide-info", serializers.AnswerInput, _by("case_provide_info"), "Answer a question."),
    Action("resolve", serializers.ResolveInput, _by("case_resolve"), "Record the outcome."),
    Action(
        "give-feedback",
        serializers.FeedbackInput,
        _by("case_give_feedback"),
        "Tell the youth the outcome.",
    ),
    Action("rate", serializers.RateInput, _by("case_rate"), "Rate the handling (the youth)."),
    Action("dispute", serializers.ReasonInput, _by("case_dispute"), "Dispute the outcome."),
    Action(
        "withdraw", serializers.OptionalReasonInput, _by("case_withdraw"), "Withdraw the request."
    ),
    Action("escalate", serializers.EscalateInput, _by("case_escalate"), "Move one level up."),
    Action(
        "transfer",
        serializers.MoveInput,
        _by("case_transfer"),
        "Hand to a sibling organisation.",
    ),
    Action("delegate", serializers.MoveInput, _by("case_delegate"), "Hand down to a child org."),
    Action(
        "reassign",
        serializers.MoveInput,
        _by("case_reassign"),
        "Supervisor: move to any org in the subtree.",
    ),
    Action(
        "pull-up", serializers.ReasonInput, _by("case_pull_up"), "Supervisor: take the case up."
    ),
    Action(
        "rate-visit",
        serializers.VisitRateInput,
        _by("visit_rate"),
        "Rate the station visit (the youth, once per visit).",
    ),
    Action(
        "assign",
        serializers.AssignInput,
        _renamed("case_assign", to_user="assignee"),
        "Assign a handler.",
    ),
]


def action_view(action: Action):
    """A view class for one action: POST with the input, If-Match or ``version``."""

    class CaseActionView(APIView):
        @extend_schema(
            request=action.input,
            responses={200: serializers.CaseSerializer},
            parameters=[IF_MATCH],
            tags=["case actions"],
            operation_id=f"cases_{action.name.replace('-', '_')}",
            summary=action.summary,
        )
        def post(self, request, reference: str):
            case = visible_case(request, reference)
            data = action.input(data=request.data)
            data.is_valid(raise_exception=True)
            values = dict(data.validated_data)
            version = expected_version(request, {"version": values.pop("version", None)})
            action.call(case.pk, request.user, version, **values)
            return after_action(request, reference)

    CaseActionView.__name__ = "Case" + action.name.title().replace("-", "") + "View"
    CaseActionView.__doc__ = action.summary
    return CaseActionView.as_view()


class CaseRefer(APIView):
    """Give a partner body a coordination task on the case."""

    @extend_schema(
        request=serializers.ReferInput,
        responses={201: serializers.TaskSerializer},
        parameters=[IF_MATCH],
        tags=["case actions"],
        operation_id="cases_refer",
    )
    def post(self, request, reference: str):
        case = visible_case(request, reference)
        data = serializers.ReferInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        version = expected_version(request, {"version": values.pop("version", None)})
        task = services.case_refer(
            case=case.pk, actor=request.user, expected_version=version, **values
        )
        return Response(serializers.TaskSerializer(task).data, status=status.HTTP_201_CREATED)


# --- coordination tasks ------------------------------------------------------------------


class TaskList(generics.ListAPIView):
    """Coordination tasks: a partner body's own, and those of cases the caller handles."""

    serializer_class = serializers.TaskSerializer
    filterset_class = TaskFilter

    def get_queryset(self):
        return selectors.tasks_visible_to(self.request.user)

    @extend_schema(tags=["coordination"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


TASK_ID = OpenApiParameter("task_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _visible_task(request, task_id: str) -> CoordinationTask:
    task = None
    if task_id.isdigit() and len(task_id) < 19:
        task = selectors.tasks_visible_to(request.user).filter(pk=int(task_id)).first()
    if task is None:
        log_refusal(request, "not_found")
        raise CaseNotVisible(_("No such task."))
    return task


class TaskComplete(APIView):
    """The partner body reports what it did (needs the case's version)."""

    @extend_schema(
        request=serializers.TaskResultInput,
        responses={200: serializers.TaskSerializer},
        parameters=[IF_MATCH, TASK_ID],
        tags=["coordination"],
    )
    def post(self, request, task_id: str):
        task = _visible_task(request, task_id)
        data = serializers.TaskResultInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        version = expected_version(request, {"version": values.pop("version", None)})
        task = services.coordination_complete(
            task=task.pk, actor=request.user, expected_version=version, **values
        )
        return Response(serializers.TaskSerializer(task).data)


class TaskWaive(APIView):
    """The handler decides a task is no longer needed (needs the case's version)."""

    @extend_schema(
        request=serializers.TaskWaiveInput,
        responses={200: serializers.TaskSerializer},
        parameters=[IF_MATCH, TASK_ID],
        tags=["coordination"],
    )
    def post(self, request, task_id: str):
        task = _visible_task(request, task_id)
        data = serializers.TaskWaiveInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        version = expected_version(request, {"version": values.pop("version", None)})
        task = services.coordination_waive(
            task=task.pk, actor=request.user, expected_version=version, **values
        )
        return Response(serializers.TaskSerializer(task).data)


# --- public ------------------------------------------------------------------------------


class PublicCase(APIView):
    """A case's public progress at its unguessable token: exactly the public page's fields."""

    permission_classes = [AllowAny]
    throttle_classes = throttling.PUBLIC_TOKEN

    @extend_schema(responses=serializers.PublicCaseSerializer, tags=["public"], auth=[])
    def get(self, request, token: str):
        case = (
            public_queryset().filter(public_token=token).first() if TOKEN_RE.match(token) else None
        )
        if case is None:
            raise CaseNotVisible()
        return Response(public_view(case))


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
@schema(None)
def not_found(request):
    """Unknown API paths: the one error body, 404."""
    raise CaseNotVisible(_("No such API endpoint."))
