"""The REST API (Django REST framework + drf-spectacular), Open311, caches and rate limits.

Rate limits are counted in the cache alias ``throttle``. With ``CACHE_URL`` or
``REDIS_URL`` set (``redis://host:6379/1``) that is Redis, so every web process
and node shares the same counters; without it each process counts alone in
memory (fine for the embedded demo, not for production). See docs/api.md.
"""

import os

from .base import INSTALLED_APPS

INSTALLED_APPS += [
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

_CACHE_URL = os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL", "")


def _cache(prefix: str) -> dict:
    if _CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _CACHE_URL,
            "KEY_PREFIX": prefix,
            "TIMEOUT": 300,
        }
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": prefix}


CACHES = {"default": _cache("yv"), "throttle": _cache("yv-throttle")}


def _rate(name: str, default: str) -> str:
    return os.environ.get(f"API_RATE_{name.upper()}", default)


# Rates per scope, "<count>/<second|minute|hour|day>"; each scope counts per user
# (signed in) and per client IP separately, and a request must pass both.
API_THROTTLE_RATES = {
    "submit": _rate("submit", "10/hour"),
    "public_token": _rate("public_token", "60/minute"),
    "open311_post": _rate("open311_post", "30/hour"),
    "login": _rate("login", "10/minute"),
    # Every other API call: generous, only against runaway clients.
    "api": _rate("api", "2000/hour"),
}
# Proxies in front of the web nodes that may set X-Forwarded-For (their count).
API_TRUSTED_PROXIES = int(os.environ.get("API_TRUSTED_PROXIES", "0"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated call gets 401 with WWW-Authenticate: Token.
        "casework.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "casework.api.pagination.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["casework.api.throttling.ApiUserThrottle"],
    "DEFAULT_THROTTLE_RATES": API_THROTTLE_RATES,
    "NUM_PROXIES": API_TRUSTED_PROXIES,
    "EXCEPTION_HANDLER": "casework.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "casework.api.schema.ApiAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Youth Voice Casework API",
    "DESCRIPTION": (
        "Cases, actions, timelines and coordination tasks for every role. "
        "Every failure has one body: {code, message, field_errors}. "
        "Case actions need the case's version (If-Match or a `version` field). "
        "See docs/api.md."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A case body leaves out the fields its viewer may not see, so none is "required".
    "COMPONENT_NO_READ_ONLY_REQUIRED": True,
    "ENUM_NAME_OVERRIDES": {
        "CaseStateEnum": "casework.states.CaseState",
        "RejectReasonEnum": "casework.models.Case.RejectReason",
        "ReportKindEnum": "casework.models.Report.Kind",
        "ReviewDecisionEnum": "casework.models.Review.Decision",
        "ComplaintStatusEnum": "casework.models.Complaint.Status",
        "EvidenceContentTypeEnum": "casework.models.Evidence.ContentType",
        "EscalationReasonEnum": [("manual", "manual"), ("beyond_capacity", "beyond capacity")],
        "NoShowDecisionEnum": "casework.models_stations.Appointment.NoShowDecision",
    },
}

# Open311 GeoReport v2 (casework.open311): the default window of GET requests and
# its largest page, as the specification suggests (90 days, 1000 requests).
OPEN311_DEFAULT_WINDOW_DAYS = int(os.environ.get("OPEN311_DEFAULT_WINDOW_DAYS", "90"))
OPEN311_MAX_REQUESTS = int(os.environ.get("OPEN311_MAX_REQUESTS", "1000"))
OPEN311_JURISDICTION = os.environ.get("OPEN311_JURISDICTION", "youthvoice")
OPEN311_CONTACT = os.environ.get("OPEN311_CONTACT", "")
