"""Rate limits, per user and per client IP, counted in the shared ``throttle`` cache.

With Redis behind that cache alias (config/settings/api.py) every process and node
counts together. Scopes and rates: settings.API_THROTTLE_RATES. The same classes
serve DRF views (``throttle_classes``) and plain Django views (:func:`check_rate`).

Counting is a fixed window: one integer per scope, caller and period (the hour of
"2000/hour", the minute of "60/minute", counted from the epoch), incremented
atomically in the cache and expiring with its period. A request over the limit is
refused and not counted; the refusal says to wait until the period ends. DRF's own
``SimpleRateThrottle`` keeps a list of every request's time in the period instead
(up to 2,000 per user for the API's default rate), read, unpickled, pruned and
written back whole on every request, and two processes at once could lose each
other's writes. The price of the window: a caller can spend one period's allowance
at the end of a period and the next one's at the start of the next, so at most
twice the rate within a short span around the boundary (docs/api.md).
"""

from __future__ import annotations

import contextlib

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

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        period = int(self.now // self.duration)
        self.period_end = (period + 1) * self.duration
        key = f"{self.key}:{period}"
        # Kept a little past the period's end (clocks of several nodes), then gone.
        timeout = int(self.period_end - self.now) + 2
        if self._count(key, timeout) > self.num_requests:
            self._uncount(key)  # refused: not counted, as with DRF's history
            return self.throttle_failure()
        return True

    def _count(self, key: str, timeout: int) -> int:
        cache = self.cache
        try:
            return cache.incr(key)  # the usual case: the period's count exists
        except ValueError:
            pass
        if cache.add(key, 1, timeout):
            return 1
        try:
            return cache.incr(key)  # another process made it in between
        except ValueError:  # pragma: no cover - made and expired in between
            cache.set(key, 1, timeout)
            return 1

    def _uncount(self, key: str) -> None:
        with contextlib.suppress(ValueError):  # already expired
            self.cache.decr(key)

    def wait(self):
        """Seconds until the period ends and the count starts again."""
        return max(1.0, self.period_end - self.timer())

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
