"""Read replicas: send the reads of read-only pages to the ``replica`` alias, conservatively.

Active only when ``DATABASE_REPLICA_URL`` is set (config/settings/base.py adds the
``replica`` alias and this router). Everything stays on the primary unless all of
these hold (docs/deploy.md):

- the code runs inside :func:`replica_reads` (a decorator or ``with`` block put on
  views and selectors that only read and tolerate a second of replication lag:
  the public pages, the supervisor dashboard);
- no transaction is open on the primary (a read inside ``atomic()`` may be
  followed by a write that depends on it, and must see the primary's rows);
- nothing has been written yet in this request or block (read your own writes);
- the request does not carry the "recently wrote" cookie: a browser that changed
  something in the last ``DATABASE_REPLICA_PIN_SECONDS`` reads the primary, so
  the page after a form post shows the change even if the replica lags;
- the model is not one of the sign-in models (sessions, users, tokens, TOTP
  devices): a session created a moment ago on the primary must be found; nor
  one of the dashboard's rollup tables, which are unlogged (not on a standby).

Migrations run only on the primary; the replica follows by streaming replication.
"""

from __future__ import annotations

import contextvars
import functools
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
PIN_COOKIE = "yv_primary"
# Sign-in state is read on every request and written a moment before: primary only.
PRIMARY_ONLY_APPS = frozenset(
    {"sessions", "auth", "authtoken", "contenttypes", "admin", "otp_totp", "otp_static"}
)

# The supervisor dashboard's rollup tables are UNLOGGED (casework migration 0022): a
# standby has no rows for them.
PRIMARY_ONLY_MODELS = frozenset(
    {"casework.DashboardRollup", "casework.DashboardOpenStats", "casework.DashboardWeekStats"}
)


@dataclass
class _Routing:
    replica_ok: bool = False
    wrote: bool = False


_state: contextvars.ContextVar[_Routing | None] = contextvars.ContextVar(
    "yv_db_routing", default=None
)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def _primary_only(model) -> bool:
    meta = model._meta
    return (
        meta.app_label in PRIMARY_ONLY_APPS
        or meta.label == settings.AUTH_USER_MODEL
        or meta.label in PRIMARY_ONLY_MODELS
    )


@contextmanager
def replica_reads(*, allowed: bool = True):
    """Reads in this block may go to the replica (see the module's rules)."""
    outer = _state.get()
    state = _Routing(replica_ok=allowed, wrote=bool(outer and outer.wrote))
    token = _state.set(state)
    try:
        yield state
    finally:
        _state.reset(token)
        if outer is not None and state.wrote:
            outer.wrote = True


def use_replica(view):
    """Decorator for read-only views: their reads may go to the replica."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        pinned = PIN_COOKIE in getattr(request, "COOKIES", {})
        with replica_reads(allowed=not pinned):
            return view(request, *args, **kwargs)

    return wrapper


class PrimaryReplicaRouter:
    """``db_for_read`` → ``replica`` only under the rules above; writes → primary."""

    def db_for_read(self, model, **hints):
        state = _state.get()
        if state is None or not state.replica_ok or state.wrote:
            return DEFAULT_DB_ALIAS
        if not replica_configured() or _primary_only(model):
            return DEFAULT_DB_ALIAS
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return REPLICA

    def db_for_write(self, model, **hints):
        state = _state.get()
        if state is not None:
            state.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # The replica holds the same rows as the primary: objects of both may relate.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


class ReplicaPinMiddleware:
    """One routing state per request; after an unsafe request, pin the browser to the primary.

    Put it after SessionMiddleware. A POST (or any write) sets the short-lived
    ``yv_primary`` cookie; while it lives, :func:`use_replica` views read the primary.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with replica_reads(allowed=False) as state:
            response = self.get_response(request)
        if state.wrote or request.method not in ("GET", "HEAD", "OPTIONS"):
            seconds = int(getattr(settings, "DATABASE_REPLICA_PIN_SECONDS", 5))
            response.set_cookie(
                PIN_COOKIE,
                "1",
                max_age=seconds,
                httponly=True,
                secure=settings.SESSION_COOKIE_SECURE,
                samesite="Lax",
            )
        return response
