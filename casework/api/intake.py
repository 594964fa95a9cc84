"""Intake endpoints: hand-offs from other platform services, staff-entered cases, claims.

The hand-off endpoint authenticates the calling service by its own API key
(``Authorization: Bearer yvh_...``, ``manage.py intake_services create NAME``);
nothing else is accepted there, and a missing or wrong key is a 401.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..models import IntakeService
from ..services.intake import intake_service_check
from . import selectors, serializers, throttling
from .errors import authz_log
from .views import case_response

SCHEME = "Bearer"


class IntakeServiceKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <key>`` of a hand-off service; the request acts as its account."""

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        scheme, _sep, raw = header.partition(" ")
        if scheme != SCHEME:
            return None  # no key: 401 with WWW-Authenticate
        service = intake_service_check(raw.strip())
        if service is None:
            # No log_refusal here: it reads request.user, which is being decided.
            authz_log.warning("authorization refused code=bad_service_key route=handoffs")
            raise exceptions.AuthenticationFailed(_("Unknown or revoked service key."))
        return service.account, service

    def authenticate_header(self, request):
        return f'{SCHEME} realm="handoffs"'


class IsIntakeService(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, IntakeService)


class IntakeServiceKeyScheme(OpenApiAuthenticationExtension):
    target_class = IntakeServiceKeyAuthentication
    name = "handoffServiceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A hand-off service's key (manage.py intake_services create NAME).",
        }


class HandoffCreate(APIView):
    """Hand over a question this service could not solve; it becomes a case (idempotent).

    The same ``external_id`` again returns the case it became with 200 instead of 201.
    """

    authentication_classes = [IntakeServiceKeyAuthentication]
    permission_classes = [IsIntakeService]
    throttle_classes = [throttling.ApiUserThrottle]

    @extend_schema(
        request=serializers.HandoffInput,
        responses={200: serializers.HandoffResult, 201: serializers.HandoffResult},
        tags=["intake"],
        operation_id="intake_handoffs_create",
    )
    def post(self, request):
        data = serializers.HandoffInput(data=request.data)
        data.is_valid(raise_exception=True)
        case, created = services.handoff_receive(service=request.auth, **data.validated_data)
        body = {
            "reference": case.reference,
            "external_id": data.validated_data["external_id"],
            "created": created,
            "state": case.state,
            "channel": case.channel,
            "org": case.org.name,
        }
        return Response(
            serializers.HandoffResult(body).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class IntakeCreate(APIView):
    """Staff of a station or organisation enter a case for a youth (walk-in or phone).

    The youth gets a claim code by SMS. The answer shows as much of the case as the
    caller may see (only its reference and state when it was routed elsewhere).
    """

    def get_throttles(self):
        return [cls() for cls in (*throttling.SUBMIT, throttling.ApiUserThrottle)]

    @extend_schema(
        request=serializers.IntakeInput,
        responses={201: serializers.CaseSerializer},
        tags=["intake"],
        operation_id="intake_cases_create",
    )
    def post(self, request):
        data = serializers.IntakeInput(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.intake_enter(actor=request.user, **data.validated_data)
        seen = selectors.case_for(request.user, case.reference) or case
        return case_response(request, seen, http_status=status.HTTP_201_CREATED)


class ClaimCreate(APIView):
    """The youth claims a case entered for them, with the reference and the SMS code."""

    @extend_schema(
        request=serializers.ClaimInput,
        responses={200: serializers.CaseSerializer},
        tags=["intake"],
        operation_id="claims_create",
    )
    def post(self, request):
        data = serializers.ClaimInput(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_claim(actor=request.user, **data.validated_data)
        return case_response(request, selectors.case_for(request.user, case.reference) or case)
