"""Offline service stations: the directory map and the verification-visit rules.

docs/stations.md explains each setting to an administrator.
"""

import os
from datetime import timedelta
from urllib.parse import urlsplit

from .privacy import CELERY_BEAT_SCHEDULE as _BEAT
from .security import CONTENT_SECURITY_POLICY

# The map's tile server, e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png".
# Empty: the map shows the stations' positions on a blank background (no request
# leaves the site); the list beside it works either way.
STATIONS_TILE_URL = os.environ.get("STATIONS_TILE_URL", "")
STATIONS_TILE_ATTRIBUTION = os.environ.get("STATIONS_TILE_ATTRIBUTION", "")
# Where the map opens when no station is listed (Guangzhou).
STATIONS_MAP_CENTRE = (23.1291, 113.2644)

# Booking: how far ahead slots are offered, and the shortest notice for a booking.
STATIONS_BOOKING_DAYS = int(os.environ.get("STATIONS_BOOKING_DAYS", "14"))
STATIONS_BOOKING_MIN_NOTICE = timedelta(hours=int(os.environ.get("STATIONS_MIN_NOTICE_H", "2")))
# Rescheduling: not later than this before the visit, and at most this many times.
STATIONS_RESCHEDULE_MIN_NOTICE = timedelta(
    hours=int(os.environ.get("STATIONS_RESCHEDULE_NOTICE_H", "12"))
)
STATIONS_MAX_RESCHEDULES = int(os.environ.get("STATIONS_MAX_RESCHEDULES", "2"))
# The reminder goes out this long before the visit (through the notification outbox).
STATIONS_REMINDER_BEFORE = timedelta(hours=int(os.environ.get("STATIONS_REMINDER_H", "24")))
# The verification deadline follows the appointment: the visit's end plus this much
# business time for the verifier to record the findings.
STATIONS_RECORD_WITHIN_HOURS = float(os.environ.get("STATIONS_RECORD_WITHIN_H", "8"))
# A station open around the clock offers visits only in these hours.
STATIONS_ROUND_THE_CLOCK_VISITS = (("08:00", "22:00"),)
STATIONS_REMINDER_BATCH = 200


def with_tile_origin(policy: dict, tile_url: str) -> dict:
    """The policy with the tile server's origin added to img-src (its images are the map)."""
    parts = urlsplit(tile_url.replace("{s}", "*"))
    if not (parts.scheme in ("http", "https") and parts.netloc):
        return policy
    origin = f"{parts.scheme}://{parts.netloc}"
    return {**policy, "img-src": [*policy["img-src"], origin]}


CONTENT_SECURITY_POLICY = with_tile_origin(CONTENT_SECURITY_POLICY, STATIONS_TILE_URL)

CELERY_BEAT_SCHEDULE = {
    **_BEAT,
    # Appointment reminders: a partial index finds the due ones (casework.services.stations).
    "station-visit-reminders": {
        "task": "casework.visit_reminders",
        "schedule": 300.0,
        "options": {"queue": "sweeps", "expires": 290},
    },
}
