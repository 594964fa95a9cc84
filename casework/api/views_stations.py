"""API of the station directory and of verification visits.

The directory and a station's free slots are public (what the public directory page
shows). A case's visit is read by whoever may read the case's timeline (staff and the
youth); the visit actions are case actions like the others (``views.Action``): POST
with If-Match or ``version``, one service each, and the services decide who may act.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models_stations import StationProfile
from ..services.stations import latest_appointment, station_slots
from ..views.stations import listed_profiles
from . import serializers_stations as s
from . import throttling
from .errors import CaseNotVisible
from .serializers import NoInput
from .views import Action, _by, _staff_or_youth, visible_case

STATION_ID = OpenApiParameter("station_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class StationList(generics.ListAPIView):
    """The stations of the public directory (filter by ``region_code`` or ``service``)."""

    permission_classes = [AllowAny]
    serializer_class = s.StationSerializer
    throttle_classes = throttling.PUBLIC_TOKEN

    def get_queryset(self):
        rows = listed_profiles()
        region = self.request.query_params.get("region_code", "")
        service = self.request.query_params.get("service", "")
        if region:
            rows = rows.filter(station__region_code=region[:12])
        if service:
            rows = rows.filter(services__code=service[:40])
        return rows

    @extend_schema(
        tags=["stations"],
        auth=[],
        parameters=[
            OpenApiParameter("region_code", OpenApiTypes.STR, description="A district code."),
            OpenApiParameter("service", OpenApiTypes.STR, description="A service code."),
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _listed_station(station_id: str) -> StationProfile:
    profile = None
    if station_id.isdigit() and len(station_id) < 10:
        profile = listed_profiles().filter(station_id=int(station_id)).first()
    if profile is None:
        raise CaseNotVisible(_("No such station."))
    return profile


class StationSlots(APIView):
    """A station's visit slots over the booking period, with the seats still free."""

    permission_classes = [AllowAny]
    throttle_classes = throttling.PUBLIC_TOKEN

    @extend_schema(
        responses=s.SlotSerializer(many=True), parameters=[STATION_ID], tags=["stations"], auth=[]
    )
    def get(self, request, station_id: str):
        profile = _listed_station(station_id)
        slots = station_slots(profile.station)
        return Response(
            s.SlotSerializer(
                [
                    {
                        "starts_at": slot.starts_at,
                        "ends_at": slot.ends_at,
                        "capacity": slot.capacity,
                        "free": slot.free,
                    }
                    for slot in slots
                ],
                many=True,
            ).data
        )


class CaseVisit(APIView):
    """The case's latest station visit (staff and the youth); 404 when none was arranged."""

    @extend_schema(responses=s.AppointmentSerializer, tags=["stations"])
    def get(self, request, reference: str):
        case = visible_case(request, reference)
        _staff_or_youth(request, case)
        appointment = latest_appointment(case)
        if appointment is None:
            raise CaseNotVisible(_("No visit arranged for this case."))
        return Response(s.AppointmentSerializer(appointment).data)


VISIT_ACTIONS = [
    Action("book-visit", s.VisitInput, _by("visit_book"), "The youth books a visit slot."),
    Action(
        "propose-visit",
        s.VisitInput,
        _by("visit_propose"),
        "The station proposes a visit slot (the youth confirms).",
    ),
    Action("confirm-visit", NoInput, _by("visit_confirm"), "The youth confirms the proposed slot."),
    Action(
        "reschedule-visit",
        s.VisitInput,
        _by("visit_reschedule"),
        "Move the visit (the youth or the station), within the rules.",
    ),
    Action(
        "record-no-show",
        NoInput,
        _by("visit_no_show"),
        "The station records that the youth did not come.",
    ),
    Action(
        "decide-no-show",
        s.NoShowDecisionInput,
        _by("visit_decide_no_show"),
        "The handler decides after a no-show.",
    ),
]
