"""Personal data protection: field encryption keys, retention, consent, hardening.

Imported at the end of base.py, so DEBUG and the Celery beat schedule are known here.
See docs/privacy.md for what each setting protects.
"""

import os
import sys
from datetime import timedelta

from .base import DEBUG, INSTALLED_APPS, MIDDLEWARE, SECRET_KEY
from .celery import CELERY_BEAT_SCHEDULE

# --- encryption at rest -------------------------------------------------------
# Comma-separated Fernet keys, newest first: the first encrypts, all decrypt.
# Generate one with `python manage.py rotate_keys --new-key`.
FIELD_ENCRYPTION_KEYS = [
    k.strip() for k in os.environ.get("FIELD_ENCRYPTION_KEYS", "").split(",") if k.strip()
]
# A fixed, public key so a developer's demo and the test suite run with no setup.
# Only when no key is configured and DEBUG is on (or under pytest); production
# settings refuse to start without a real key (config/settings/production.py).
DEV_FIELD_ENCRYPTION_KEY = "ZGV2LW9ubHktZmllbGQta2V5LU5PVC1mb3ItcHJvZCE="
_under_tests = "pytest" in sys.modules or os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(
    ".test"
)
if not FIELD_ENCRYPTION_KEYS and (DEBUG or _under_tests):
    FIELD_ENCRYPTION_KEYS = [DEV_FIELD_ENCRYPTION_KEY]


def _check_field_keys(keys: list[str]) -> None:
    """Production refuses to start with no key, a malformed key or the public dev key."""
    from cryptography.fernet import Fernet
    from django.core.exceptions import ImproperlyConfigured

    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set in production.")
    if DEV_FIELD_ENCRYPTION_KEY in keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds the public development key: refusing to start."
        )
    for key in keys:
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(python manage.py rotate_keys --new-key prints one)."
            ) from None


# The key of the search digests (casework.crypto.search_digest) that let an
# administrator find a person by exact name, e-mail or phone. Its own secret:
# rotating the encryption keys leaves it alone. Unset, it is derived from
# SECRET_KEY; after changing either, `rotate_keys` recomputes the digests.
SEARCH_DIGEST_KEY = os.environ.get("SEARCH_DIGEST_KEY", "").strip() or (
    "search-digest:" + SECRET_KEY
)

# --- who is a minor, and who needs a guardian's consent -----------------------
PRIVACY_MINOR_AGE = 18
PRIVACY_GUARDIAN_CONSENT_UNDER = int(os.environ.get("PRIVACY_GUARDIAN_CONSENT_UNDER", "14"))

# --- retention ------------------------------------------------------------------
# Personal data of a closed case is erased this long after closing (by the beat job).
PRIVACY_RETENTION = timedelta(days=int(os.environ.get("PRIVACY_RETENTION_DAYS", "365")))
PRIVACY_RETENTION_BATCH = int(os.environ.get("PRIVACY_RETENTION_BATCH", "200"))
PRIVACY_RETENTION_MAX_BATCHES = int(os.environ.get("PRIVACY_RETENTION_MAX_BATCHES", "50"))
CELERY_BEAT_SCHEDULE = {
    **CELERY_BEAT_SCHEDULE,
    "privacy-retention": {
        "task": "casework.privacy_retention",
        "schedule": timedelta(hours=1).total_seconds(),
        "options": {"queue": "sweeps", "expires": 3000},
    },
}

# --- hardening ------------------------------------------------------------------
# Argon2 first; older hashes still verify and are upgraded at the next login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

# Login throttling: this many failures for one username from one address lock
# that pair out for the lock period (counted in the cache).
LOGIN_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_LOCKOUT = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))

# Two-factor authentication (TOTP) for staff accounts flagged "requires 2FA".
INSTALLED_APPS = [*INSTALLED_APPS, "django_otp", "django_otp.plugins.otp_totp"]
_auth = MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware")
MIDDLEWARE = [
    *MIDDLEWARE[: _auth + 1],
    "django_otp.middleware.OTPMiddleware",
    "casework.security.RequireTwoFactorMiddleware",
    *MIDDLEWARE[_auth + 1 :],
    "casework.security.SecurityHeadersMiddleware",
]
OTP_TOTP_ISSUER = "Youth Voice"

# Security headers on every response (SecurityMiddleware and our own middleware).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURITY_PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=()"
# Error reports carry no form data and no local variables (they could hold personal data).
DEFAULT_EXCEPTION_REPORTER_FILTER = "casework.security.PersonalDataExceptionReporterFilter"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
