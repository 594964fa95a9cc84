"""Rate limits, per user and per client IP, counted in the shared ``throttle`` cache.

With Redis behind that cache alias (config/settings/api.py) every process and node
counts together. Scopes and rates: settings.API_THROTTLE_RATES. The same classes
serve DRF views (``throttle_classes``) and plain Django views (:func:`check_rate`).
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle


class _ScopedThrottle(SimpleRateThrottle):
    scope = "api"
    per = "user"  # "user" or "ip"

    @property
    def cache(self):
        return caches["throttle"]

    def get_rate(self):
        # Read live, so a deployment (or a test) can change rates through settings.
        return settings.API_THROTTLE_RATES[self.scope]

    def get_cache_key(self, request, view):
        if self.per == "user":
            user = getattr(request, "user", None)
            if user is None or not user.is_authenticated:
                return None  # anonymous callers are counted by IP
            ident = f"u{user.pk}"
        else:
            ident = f"ip{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"


def scoped(scope: str) -> list[type[_ScopedThrottle]]:
    """The pair of throttles (per user, per IP) for ``scope``."""
    user_cls = type(f"{scope.title()}UserThrottle", (_ScopedThrottle,), {"scope": scope})
    ip_cls = type(f"{scope.title()}IpThrottle", (_ScopedThrottle,), {"scope": scope, "per": "ip"})
    return [user_cls, ip_cls]


class ApiUserThrottle(_ScopedThrottle):
    """The default of every API view: a generous ceiling per signed-in user."""

    scope = "api"


SUBMIT = scoped("submit")
PUBLIC_TOKEN = scoped("public_token")
OPEN311_POST = scoped("open311_post")
LOGIN = scoped("login")


def check_rate(request, throttles) -> float | None:
    """For plain Django views: None when allowed, else the seconds to wait."""
    waits = []
    for cls in throttles:
        throttle = cls()
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait() or 1)
    return max(waits) if waits else None
