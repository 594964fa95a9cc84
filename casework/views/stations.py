"""Station pages: the public directory and map, a station's page, the youth's visit
forms and the station's list of visits.

The directory needs no sign-in and shows only what a station publishes (name, address,
point, hours, services). The map is ``static/js/station-map.js`` over vendored Leaflet;
its data travels in a ``json_script`` block, so no inline script is needed, and without
a tile server (``STATIONS_TILE_URL`` empty) it still shows every station's position.
The youth's visit forms each call one service of ``casework.services.stations``.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from .. import permissions, services
from ..errors import CaseConflict, CaseworkError, NotPermitted
from ..forms_stations import VisitConfirmForm, VisitTimeForm
from ..models import Case, Organisation, Region
from ..models_stations import Appointment, StationProfile, StationService
from ..services.stations import active_appointment, latest_appointment, station_week
from ..states import CaseState
from ..station_hours import DAY_KEYS, HoursError, format_hours
from .staff import apply_service_error
from .youth import _youth_case

DAYS_SHOWN = 14
DAY_NAMES = {
    "mon": _("Monday"),
    "tue": _("Tuesday"),
    "wed": _("Wednesday"),
    "thu": _("Thursday"),
    "fri": _("Friday"),
    "sat": _("Saturday"),
    "sun": _("Sunday"),
}
CLOSED_BECAUSE = {
    "exception": _("closed"),
    "holiday": _("closed: public holiday"),
    "weekly": _("closed"),
}


def _english() -> bool:
    return (get_language() or "").startswith("en")


def _name(obj) -> str:
    return (getattr(obj, "name_en", "") if _english() else "") or obj.name


def _address(profile: StationProfile) -> str:
    return (profile.address_en if _english() else "") or profile.address


def listed_profiles():
    return (
        StationProfile.objects.filter(
            listed=True, station__is_active=True, station__kind=Organisation.Kind.STATION
        )
        .select_related("station")
        .prefetch_related(
            Prefetch("services", queryset=StationService.objects.order_by("ordering"))
        )
        .order_by("station__region_code", "station__name")
    )


def _week_rows(station: Organisation) -> list[dict]:
    """The usual week in words: one row per day."""
    from ..station_hours import weekly_hours

    try:
        week = weekly_hours(station.opening_hours)
    except HoursError:
        return []
    if week is None:
        return [{"day": _("Every day"), "hours": _("open 24 hours")}]
    return [
        {"day": DAY_NAMES[key], "hours": format_hours(week.get(i, ())) or _("closed")}
        for i, key in enumerate(DAY_KEYS)
    ]


def _station_row(profile: StationProfile, districts: dict[str, str]) -> dict:
    station = profile.station
    return {
        "id": station.pk,
        "name": _name(station),
        "address": _address(profile),
        "district": districts.get(station.region_code, ""),
        "phone": profile.phone,
        "lat": float(profile.latitude),
        "lng": float(profile.longitude),
        "services": [_name(s) for s in profile.services.all()],
        "open24": bool((station.opening_hours or {}).get("24h")),
        "url": f"/stations/{station.pk}/",
    }


@require_GET
def directory(request):
    """Every listed station, filterable by district and service, as a list and on a map."""
    profiles = listed_profiles()
    all_codes = set(profiles.values_list("station__region_code", flat=True))
    regions = {r.code: r for r in Region.objects.filter(code__in=all_codes)}
    districts = {code: _name(region) for code, region in regions.items()}
    district = request.GET.get("district", "")
    service = request.GET.get("service", "")
    if district in districts:
        profiles = profiles.filter(station__region_code=district)
    else:
        district = ""
    service_rows = list(StationService.objects.filter(stations__listed=True).distinct())
    if service in {s.code for s in service_rows}:
        profiles = profiles.filter(services__code=service)
    else:
        service = ""
    rows = [_station_row(p, districts) for p in profiles]
    return render(
        request,
        "casework/stations/directory.html",
        {
            "stations": rows,
            "districts": sorted(districts.items(), key=lambda item: item[0]),
            "services": [(s.code, _name(s)) for s in service_rows],
            "district": district,
            "service": service,
            "map_config": {
                "tiles": settings.STATIONS_TILE_URL,
                "attribution": settings.STATIONS_TILE_ATTRIBUTION,
                "centre": list(settings.STATIONS_MAP_CENTRE),
                "stations": rows,
            },
        },
    )


@require_GET
def station_page(request, station_id: int):
    """One station: address, usual hours, the next two weeks (closures, holidays), services."""
    if station_id > 2**31 - 1:
        raise Http404(_("No such station."))
    profile = listed_profiles().filter(station_id=station_id).first()
    if profile is None:
        raise Http404(_("No such station."))
    station = profile.station
    region = Region.objects.filter(code=station.region_code).first()
    days = []
    try:
        week = station_week(station, profile=profile)
    except HoursError:
        week = None
    today = timezone.localdate()
    if week is not None:
        for offset in range(DAYS_SHOWN):
            day = today + timedelta(days=offset)
            hours = week.hours_on(day)
            rule = week.exceptions.get(day)
            days.append(
                {
                    "date": day,
                    "hours": format_hours(hours) if hours else "",
                    "closed": CLOSED_BECAUSE.get(week.why_closed(day), ""),
                    "note": rule.note if rule else "",
                }
            )
    return render(
        request,
        "casework/stations/station.html",
        {
            "profile": profile,
            "station": station,
            "name": _name(station),
            "address": _address(profile),
            "district": _name(region) if region else "",
            "services": [_name(s) for s in profile.services.all()],
            "week": _week_rows(station),
            "days": days,
            "map_config": {
                "tiles": settings.STATIONS_TILE_URL,
                "attribution": settings.STATIONS_TILE_ATTRIBUTION,
                "centre": [float(profile.latitude), float(profile.longitude)],
                "stations": [_station_row(profile, {})],
            },
        },
    )


# --- the youth's visit ------------------------------------------------------------


def visit_panel(case: Case, user) -> dict | None:
    """What the youth's case page shows about the station visit (None: no visit here)."""
    if case.station_id is None:
        return None
    latest = latest_appointment(case)
    visiting = case.state == CaseState.VERIFYING
    if latest is None and not visiting:
        return None
    bookable = StationProfile.objects.filter(station_id=case.station_id, visits_per_hour__gt=0)
    active = latest if latest is not None and latest.is_active else None
    can_move = active is not None and visiting
    return {
        "appointment": latest,
        "profile": bookable.first(),
        "can_book": visiting and active is None and bookable.exists(),
        "can_confirm": visiting and active is not None and active.status == "proposed",
        "can_reschedule": can_move,
    }


YOUTH_VISIT_ACTIONS = {
    "book": (
        VisitTimeForm,
        services.visit_book,
        _("Book a visit"),
        _("Your visit is booked."),
    ),
    "confirm": (
        VisitConfirmForm,
        services.visit_confirm,
        _("Confirm the visit time"),
        _("Thank you: the visit time is confirmed."),
    ),
    "reschedule": (
        VisitTimeForm,
        services.visit_reschedule,
        _("Choose another time"),
        _("Your visit was moved."),
    ),
}


@login_required
def youth_visit(request, reference: str, action: str):
    """Book, confirm or move the visit of one of the youth's cases (one service each)."""
    if action not in YOUTH_VISIT_ACTIONS:
        raise Http404(_("No such page."))
    case = _youth_case(request, reference)
    form_class, service, title, done = YOUTH_VISIT_ACTIONS[action]
    status = 200
    if request.method == "POST":
        form = form_class(request.POST, case=case, user=request.user)
        if form.is_valid():
            try:
                service(actor=request.user, case=case.pk, **form.service_kwargs())
            except NotPermitted as error:
                form.add_error(None, str(error.message))
                status = 403
            except CaseworkError as error:
                if isinstance(error, CaseConflict):
                    case = _youth_case(request, reference)
                    data = request.POST.copy()
                    data["version"] = str(case.version)
                    form = form_class(data, case=case, user=request.user)
                    form.is_valid()
                apply_service_error(form, error)
                status = 409 if error.code in ("conflict", "slot_full", "invalid_state") else 400
            else:
                messages.success(request, done)
                return redirect("casework:youth_case", reference=case.reference)
        else:
            status = 400
    else:
        form = form_class(case=case, user=request.user)
    station = Organisation.objects.filter(pk=case.station_id).first()
    profile = StationProfile.objects.filter(station=station).first() if station else None
    return render(
        request,
        "casework/stations/youth_visit.html",
        {
            "case": case,
            "form": form,
            "action": action,
            "title": title,
            "station_name": _name(station) if station else "",
            "address": _address(profile) if profile else "",
            "appointment": active_appointment(case),
            "week": _week_rows(station) if station else [],
        },
        status=status,
    )


# --- the station's visits -----------------------------------------------------------


@login_required
def station_visits(request):
    """Upcoming and recent visits at the stations where this person works."""
    org_ids = [
        r.org_id
        for r in permissions.roles_of(request.user)
        if r.role in (permissions.VERIFIER, permissions.HANDLER)
    ]
    if not org_ids:
        raise PermissionDenied(_("The list of visits is for the staff of stations."))
    since = timezone.now() - timedelta(days=2)
    rows = (
        Appointment.objects.filter(station_id__in=org_ids, slot__starts_at__gte=since)
        .exclude(status=Appointment.Status.CANCELLED)
        .select_related("case", "slot", "station")
        .order_by("slot__starts_at")[:200]
    )
    return render(request, "casework/stations/visits.html", {"rows": rows})


urlpatterns = [
    path("stations/", directory, name="station_directory"),
    path("stations/<int:station_id>/", station_page, name="station_page"),
    path("my/cases/<str:reference>/visit/<slug:action>/", youth_visit, name="youth_visit"),
    path("work/visits/", station_visits, name="station_visits"),
]
