"""The one error format of the API: ``{"code", "message", "field_errors"}`` for every failure.

``code`` is stable (clients branch on it), ``message`` is for people (translated),
``field_errors`` maps a field name to its messages (``{}`` when none). Domain
errors from the services map to HTTP statuses here and nowhere else:

| code | status | when |
|---|---|---|
| invalid | 400 | input missing or malformed, or a field the caller may not set |
| parse_error | 400 | the body is not valid JSON or form data |
| not_authenticated | 401 | no or bad credentials |
| forbidden | 403 | the caller sees the case but may not do this |
| not_found | 404 | no such case, or one the caller may not see (never 403: no leaks) |
| method_not_allowed | 405 | |
| conflict | 409 | the version given is not the case's current version (stale client) |
| invalid_state | 409 | the case's current state does not allow the action |
| slot_full | 409 | every seat of the chosen visit slot is taken (casework.services.stations) |
| version_required | 428 | a case action without If-Match or ``version`` |
| throttled | 429 | a rate limit; ``Retry-After`` says when to try again |
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from ..errors import CaseworkError

authz_log = logging.getLogger("casework.authz")

DOMAIN_STATUS = {
    "invalid": status.HTTP_400_BAD_REQUEST,
    "forbidden": status.HTTP_403_FORBIDDEN,
    "not_found": status.HTTP_404_NOT_FOUND,
    "conflict": status.HTTP_409_CONFLICT,
    "invalid_state": status.HTTP_409_CONFLICT,
    "slot_full": status.HTTP_409_CONFLICT,
}


class ErrorSerializer(serializers.Serializer):
    """The body of every failed API call."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `conflict`.")
    message = serializers.CharField(help_text="What went wrong, for a person.")
    field_errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per input field; empty when the error is not about a field.",
    )


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_code = "version_required"
    default_detail = _(
        "Send the case's version (If-Match header or a `version` field) with every action."
    )


class CaseNotVisible(exceptions.NotFound):
    """The case does not exist or the caller may not see it: the same answer for both."""

    default_detail = _("No such case.")


def error_body(code: str, message, field_errors: dict | None = None) -> dict:
    return {"code": code, "message": str(message), "field_errors": field_errors or {}}


def _field_errors(detail) -> dict[str, list[str]]:
    """DRF's nested validation detail flattened to ``{"field": [messages]}``."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value):
        if isinstance(value, dict):
            for key, sub in value.items():
                name = "non_field_errors" if key == "non_field_errors" and not prefix else key
                walk(f"{prefix}.{name}" if prefix else str(name), sub)
        elif (
            isinstance(value, list) and value and all(not isinstance(v, dict | list) for v in value)
        ):
            out.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in value)
        elif isinstance(value, list):
            for index, sub in enumerate(value):
                walk(f"{prefix}.{index}" if prefix else str(index), sub)
        else:
            out.setdefault(prefix or "non_field_errors", []).append(str(value))

    walk("", detail)
    return out


def log_refusal(request, code: str) -> None:
    """Log a refused authorization: user id only, route and code; no personal data."""
    user = getattr(request, "user", None)
    match = getattr(request, "resolver_match", None)
    authz_log.warning(
        "authorization refused code=%s user=%s method=%s route=%s",
        code,
        getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else "anonymous",
        request.method,
        match.view_name if match else "?",
    )


def exception_handler(exc, context):
    """DRF's exception handler: every failure becomes the one error body."""
    request = context.get("request")
    headers = {}
    if isinstance(exc, CaseworkError):
        code = exc.code
        http_status = DOMAIN_STATUS.get(code, status.HTTP_400_BAD_REQUEST)
        body = error_body(code, exc.message, exc.field_errors)
        if code in ("forbidden", "not_found") and request is not None:
            log_refusal(request, code)
        return Response(body, status=http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django report it as a 500
    if isinstance(exc, exceptions.ValidationError):
        body = error_body(
            "invalid", _("Some fields are missing or invalid."), _field_errors(exc.detail)
        )
    else:
        code = {
            exceptions.NotAuthenticated: "not_authenticated",
            exceptions.AuthenticationFailed: "not_authenticated",
            exceptions.PermissionDenied: "forbidden",
            exceptions.NotFound: "not_found",
            exceptions.MethodNotAllowed: "method_not_allowed",
            exceptions.NotAcceptable: "not_acceptable",
            exceptions.UnsupportedMediaType: "unsupported_media_type",
            exceptions.Throttled: "throttled",
            exceptions.ParseError: "parse_error",
        }.get(type(exc)) or next(
            (
                code
                for cls, code in (
                    (CaseNotVisible, "not_found"),
                    (exceptions.NotFound, "not_found"),
                    (exceptions.Throttled, "throttled"),
                )
                if isinstance(exc, cls)
            ),
            getattr(exc, "default_code", "error"),
        )
        detail = exc.detail
        message = detail if isinstance(detail, str) else exc.default_detail
        body = error_body(code, message)
        # CaseNotVisible was logged where it was raised.
        if code == "forbidden" and request is not None:
            log_refusal(request, code)
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    return Response(body, status=exc.status_code, headers=headers)
