"""Production: DEBUG off, HTTPS only, secure cookies, HSTS; secrets from the environment.

Required environment: DJANGO_SECRET_KEY (50+ random characters), DJANGO_ALLOWED_HOSTS,
DATABASE_URL (PostgreSQL), FIELD_ENCRYPTION_KEYS; recommended: CACHE_URL or REDIS_URL
(shared rate limits), CELERY_BROKER_URL. `DJANGO_SETTINGS_MODULE=config.settings.production
python manage.py check --deploy` reports no warnings with these set (CI checks it).
"""

import os

from django.core.exceptions import ImproperlyConfigured

# Before base is read, so every module that looks at DEBUG while loading sees it off.
os.environ["DJANGO_DEBUG"] = "false"

from .base import *  # noqa: F403
from .base import SECRET_KEY, env_bool
from .privacy import _check_field_keys

DEBUG = False


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production.")
    return value


_required("DJANGO_SECRET_KEY")
if SECRET_KEY.startswith("dev-only") or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be 50+ random characters in production.")
_required("DJANGO_ALLOWED_HOSTS")
# Only real keys: the public development key of config/settings/privacy.py never applies here.
FIELD_ENCRYPTION_KEYS = [
    k.strip() for k in _required("FIELD_ENCRYPTION_KEYS").split(",") if k.strip()
]
_check_field_keys(FIELD_ENCRYPTION_KEYS)  # no dev key, no malformed key (privacy.py)

# HTTPS everywhere. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_NAME
# (usually HTTP_X_FORWARDED_PROTO) so Django knows the original request was HTTPS.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
_proxy_header = os.environ.get("SECURE_PROXY_SSL_HEADER_NAME", "")
if _proxy_header:
    SECURE_PROXY_SSL_HEADER = (_proxy_header, "https")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]

# Persistent database connections: opening one costs a PostgreSQL backend start and
# authentication (several milliseconds of CPU on both sides), more than most API
# requests need in all. Each worker thread keeps its own connection this many seconds
# (DATABASE_CONN_MAX_AGE; 0 behind PgBouncer in transaction mode, docs/deploy.md), and
# Django checks a reused connection once per request before its first query.
if "DATABASE_CONN_MAX_AGE" not in os.environ:
    for _alias in DATABASES.values():  # noqa: F405
        _alias["CONN_MAX_AGE"] = 300
for _alias in DATABASES.values():  # noqa: F405
    _alias["CONN_HEALTH_CHECKS"] = True
