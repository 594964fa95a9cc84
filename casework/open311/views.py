"""Open311 GeoReport v2 endpoints (https://wiki.open311.org/GeoReport_v2), JSON and XML.

- Services are the categories; a service definition lists the attributes a POST
  may carry (region, urgency, title).
- Requests are cases. Every request record comes from casework.public.public_view,
  so it shows exactly what the public progress page shows: cases in sensitive
  categories or kept private are left out of lists and, looked up by id, say only
  whether they are open. ``agency_responsible`` is the handling organisation unless
  the category is sensitive.
- POST requests needs an ``api_key`` (``manage.py open311_keys create NAME``); the
  personal fields of the specification (name, e-mail, phone, device) are not
  stored: the case belongs to the key's account.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from .. import services
from ..api import throttling
from ..errors import CaseworkError
from ..models import Case, Category
from ..public import public_queryset, public_view, region_names_for
from .keys import open311_key_check
from .render import error, respond

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2025-01-01T00:00:00Z"
ID_RE = re.compile(r"^[A-Za-z0-9-]{1,32}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The open states of Open311 ("open"/"closed") from the case states.
STATUSES = ("open", "closed")


def _service(category: Category) -> dict:
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": category.name_en or category.name,
        "metadata": True,
        "type": "realtime",
        "keywords": category.code,
        "group": "sensitive" if category.sensitive else "general",
    }


def _definition(category: Category) -> dict:
    urgencies = [{"key": value, "name": str(label)} for value, label in Case.Urgency.choices]
    return {
        "service_code": category.code,
        "attributes": [
            {
                "variable": True,
                "code": "region_code",
                "datatype": "string",
                "required": False,
                "datatype_description": "GB/T 2260 district code, e.g. 440105 "
                "(or send it as address_id); one of the two is required.",
                "order": 1,
                "description": "Region (district) where help is needed",
            },
            {
                "variable": True,
                "code": "urgency",
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": "",
                "order": 2,
                "description": "How urgent the request is (default normal)",
                "values": urgencies,
            },
            {
                "variable": True,
                "code": "title",
                "datatype": "string",
                "required": False,
                "datatype_description": "At most 120 characters (default: start of description).",
                "order": 3,
                "description": "A short title",
            },
        ],
    }


def _datetime_of_day(day: str | None) -> str | None:
    """A day of public_view as the W3C datetime Open311 wants (local midnight: dates to the day)."""
    if not day:
        return None
    value = timezone.make_aware(datetime.combine(parse_date(day), time()))
    return value.isoformat()


STAGE_NOTES = {
    "intake": "received online, waiting for intake review",
    "verification": "offline verification",
    "coordination": "coordinating a solution",
    "paused": "waiting for information from the requester",
    "feedback": "outcome recorded, feedback pending",
    "rating": "feedback given, waiting for the rating",
    "closed": "closed",
}


def request_record(case: Case, view: dict) -> dict:
    """One Open311 request from the case's public view (and its handling organisation)."""
    status = "open" if view["in_progress"] else "closed"
    agency = "" if case.category.sensitive else case.org.name
    if view["private"]:
        return {
            "service_request_id": view["reference"],
            "status": status,
            "status_notes": "in progress" if view["in_progress"] else "closed",
            "agency_responsible": agency,
            "service_notice": "",
        }
    last = view["last_update"]
    notes = STAGE_NOTES.get(view["stage"], view["stage"])
    if last:
        notes = f"{notes}; latest update: {last['kind'].replace('_', ' ')} on {last['on']}"
    if view["outcome"]:
        notes = f"{notes}; outcome: {view['outcome']}"
    return {
        "service_request_id": view["reference"],
        "status": status,
        "status_notes": notes,
        "service_name": view["category_name"],
        "service_code": view["category"],
        "description": "",
        "agency_responsible": agency,
        "service_notice": "",
        "requested_datetime": _datetime_of_day(view["submitted_on"]),
        "updated_datetime": _datetime_of_day(last["on"] if last else view["submitted_on"]),
        "expected_datetime": None,
        "address": view["region"],
        "address_id": view["region_code"],
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


def _records(cases) -> list[dict]:
    cases = list(cases)
    names = region_names_for(cases)
    return [request_record(c, public_view(c, region_names=names)) for c in cases]


def _throttled(request, fmt, throttles):
    wait = throttling.check_rate(request, throttles)
    if wait is None:
        return None
    return error(
        fmt,
        429,
        _("Too many requests; try again later."),
        headers={"Retry-After": str(int(wait) + 1)},
    )


# --- endpoints -------------------------------------------------------------------------


@require_GET
def discovery(request, fmt):
    base = request.build_absolute_uri("/open311/v2/")
    return respond(
        fmt,
        "discovery",
        {
            "changeset": CHANGESET,
            "contact": settings.OPEN311_CONTACT,
            "key_service": "python manage.py open311_keys create NAME (ask the operator)",
            "endpoints": [
                {
                    "specification": SPEC_URL,
                    "url": base,
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": ["application/json", "text/xml"],
                }
            ],
        },
    )


@require_GET
def service_list(request, fmt):
    return respond(fmt, "services", [_service(c) for c in Category.objects.all()])


@require_GET
def service_definition(request, service_code, fmt):
    category = Category.objects.filter(code=service_code).first()
    if category is None:
        return error(fmt, 404, _("No such service_code."))
    return respond(fmt, "service_definition", _definition(category))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def requests_view(request, fmt):
    if request.method == "POST":
        return _post_request(request, fmt)
    return _list_requests(request, fmt)


def _split(value: str) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _parse_when(value: str):
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(value)
        parsed = datetime.combine(day, time())
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _list_requests(request, fmt):
    params = request.GET
    ids = _split(params.get("service_request_id", ""))
    if ids:
        # Looked up by id: every other filter is ignored, as the specification says.
        if len(ids) > settings.OPEN311_MAX_REQUESTS or not all(ID_RE.match(i) for i in ids):
            return error(fmt, 400, _("Invalid service_request_id."))
        cases = public_queryset().filter(reference__in=ids).order_by("-submitted_at")
        return respond(fmt, "service_requests", _records(cases))

    try:
        start = _parse_when(params["start_date"]) if params.get("start_date") else None
        end = _parse_when(params["end_date"]) if params.get("end_date") else None
    except (ValueError, OverflowError):
        return error(fmt, 400, _("start_date and end_date must be W3C datetimes."))
    window = timedelta(days=settings.OPEN311_DEFAULT_WINDOW_DAYS)
    if start is None and end is None:
        end = timezone.now()
    if start is None:
        start = end - window
    if end is None:
        end = start + window
    if end < start or end - start > window:
        return error(
            fmt,
            400,
            _("The date range may not be negative or span more than %(days)s days.")
            % {"days": settings.OPEN311_DEFAULT_WINDOW_DAYS},
        )
    statuses = _split(params.get("status", ""))
    if any(s not in STATUSES for s in statuses):
        return error(fmt, 400, _("status must be open, closed or both."))
    codes = _split(params.get("service_code", ""))

    # Only cases the public may follow; private ones would show nothing but their id.
    cases = public_queryset().filter(
        is_public=True,
        category__sensitive=False,
        submitted_at__gte=start,
        submitted_at__lte=end,
    )
    if hasattr(Case, "hidden_from_public"):
        cases = cases.filter(hidden_from_public=False)
    if codes:
        cases = cases.filter(category__code__in=codes)
    if statuses == ["open"]:
        cases = cases.filter(closed_at__isnull=True).exclude(state__in=_closed_states())
    elif statuses == ["closed"]:
        cases = cases.filter(state__in=_closed_states())
    cases = cases.order_by("-submitted_at")[: settings.OPEN311_MAX_REQUESTS]
    return respond(fmt, "service_requests", _records(cases))


def _closed_states():
    from ..states import TERMINAL_STATES

    return [s.value for s in TERMINAL_STATES]


def _post_request(request, fmt):
    data = request.POST
    key = open311_key_check(data.get("api_key"))
    if key is None:
        return error(fmt, 403, _("Invalid or missing api_key."))
    request.user = key.account  # rate limits count per key's account and per IP
    throttled = _throttled(request, fmt, throttling.OPEN311_POST)
    if throttled:
        return throttled
    category = Category.objects.filter(code=data.get("service_code", "")).first()
    if category is None:
        return error(fmt, 400, _("Invalid or missing service_code."))
    region = (data.get("attribute[region_code]") or data.get("address_id") or "").strip()
    if not region:
        return error(
            fmt,
            400,
            _("A location is required: address_id or attribute[region_code] (a district code)."),
        )
    description = (data.get("description") or "").strip()
    title = (data.get("attribute[title]") or description[:40]).strip()
    urgency = (data.get("attribute[urgency]") or Case.Urgency.NORMAL).strip()
    try:
        case = services.case_submit(
            youth=key.account,
            category=category,
            region_code=region,
            title=title[:120],
            description=description,
            urgency=urgency,
        )
    except CaseworkError as failure:
        detail = "; ".join(
            f"{field}: {' '.join(str(m) for m in messages)}"
            for field, messages in failure.field_errors.items()
        )
        return error(fmt, 400, detail or failure.message)
    return respond(
        fmt,
        "service_requests",
        [
            {
                "service_request_id": case.reference,
                "token": case.public_token,
                "service_notice": _("Follow the case at its public progress page."),
                "account_id": None,
            }
        ],
        status=201,
    )


@require_GET
def request_detail(request, service_request_id, fmt):
    case = (
        public_queryset().filter(reference=service_request_id).first()
        if ID_RE.match(service_request_id)
        else None
    )
    if case is None:
        return error(fmt, 404, _("No such service_request_id."))
    return respond(fmt, "service_requests", _records([case]))


@require_GET
def token_lookup(request, token, fmt):
    throttled = _throttled(request, fmt, throttling.PUBLIC_TOKEN)
    if throttled:
        return throttled
    case = (
        Case.objects.filter(public_token=token).only("reference").first()
        if TOKEN_RE.match(token)
        else None
    )
    if case is None:
        return error(fmt, 404, _("No such token."))
    return respond(
        fmt, "service_requests", [{"service_request_id": case.reference, "token": token}]
    )
