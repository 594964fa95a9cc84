"""Notifications: outbox relay, retries, channels (in-app, email, SMS, webhook).

Every value comes from the environment so production, CI and a laptop differ
only in variables. No value here is personal data.
"""

import os

from .celery import CELERY_BEAT_SCHEDULE


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# Queues: delivery and sweeps are kept apart so a big escalation sweep never
# waits behind ten thousand e-mails, and the other way round.
NOTIFICATIONS_QUEUE = os.environ.get("NOTIFICATIONS_QUEUE", "notifications")
CELERY_SWEEPS_QUEUE = os.environ.get("CELERY_SWEEPS_QUEUE", "sweeps")

# Channels a person gets until they set their own preferences.
NOTIFICATIONS_DEFAULT_CHANNELS = [
    c.strip()
    for c in os.environ.get("NOTIFICATIONS_DEFAULT_CHANNELS", "inapp,email").split(",")
    if c.strip()
]

# The relay (run by beat) re-publishes rows still pending after the grace period.
NOTIFICATIONS_RELAY_GRACE_SECONDS = _float("NOTIFICATIONS_RELAY_GRACE_SECONDS", 30)
NOTIFICATIONS_RELAY_INTERVAL_SECONDS = _float("NOTIFICATIONS_RELAY_INTERVAL_SECONDS", 10)
NOTIFICATIONS_RELAY_BATCH = _int("NOTIFICATIONS_RELAY_BATCH", 2000)
# Messages published per delivery task (one task delivers a small batch of rows).
NOTIFICATIONS_TASK_BATCH = _int("NOTIFICATIONS_TASK_BATCH", 50)
# A case change's outbox event goes to the fan-out task from a background thread of
# the process that committed it, together with the other changes the process
# committed within this many milliseconds: one message for all of them. 0: one
# message per change, sent by the committing thread right after its commit.
NOTIFICATIONS_PUBLISH_WINDOW_MS = _float("NOTIFICATIONS_PUBLISH_WINDOW_MS", 50)

# Retries: exponential backoff base * 2**(attempt-1), capped; dead letter after N failures.
NOTIFICATIONS_MAX_ATTEMPTS = _int("NOTIFICATIONS_MAX_ATTEMPTS", 6)
NOTIFICATIONS_BACKOFF_BASE_SECONDS = _float("NOTIFICATIONS_BACKOFF_BASE_SECONDS", 30)
NOTIFICATIONS_BACKOFF_MAX_SECONDS = _float("NOTIFICATIONS_BACKOFF_MAX_SECONDS", 3600)
# An external send is claimed for this long; a worker that dies holding it
# loses the claim when it runs out and the relay sends again. Keep it well
# above the HTTP timeout.
NOTIFICATIONS_LEASE_SECONDS = _float("NOTIFICATIONS_LEASE_SECONDS", 60)
NOTIFICATIONS_HTTP_TIMEOUT_SECONDS = _float("NOTIFICATIONS_HTTP_TIMEOUT_SECONDS", 5)

# SMS: console (default), file, or the generic HTTP gateway.
NOTIFICATIONS_SMS_BACKEND = os.environ.get(
    "NOTIFICATIONS_SMS_BACKEND", "notifications.channels.sms.ConsoleSMSBackend"
)
NOTIFICATIONS_SMS_FILE_PATH = os.environ.get("NOTIFICATIONS_SMS_FILE_PATH", "var/sms")
NOTIFICATIONS_SMS_GATEWAY_URL = os.environ.get("NOTIFICATIONS_SMS_GATEWAY_URL", "")
NOTIFICATIONS_SMS_GATEWAY_TOKEN = os.environ.get("NOTIFICATIONS_SMS_GATEWAY_TOKEN", "")
NOTIFICATIONS_SMS_SENDER = os.environ.get("NOTIFICATIONS_SMS_SENDER", "YouthVoice")

# Webhook: one integration endpoint (e.g. a messaging-app bridge); signed JSON POSTs.
NOTIFICATIONS_WEBHOOK_URL = os.environ.get("NOTIFICATIONS_WEBHOOK_URL", "")
NOTIFICATIONS_WEBHOOK_SECRET = os.environ.get("NOTIFICATIONS_WEBHOOK_SECRET", "")

# E-mail: Django's backends; the console by default, SMTP in production.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "").lower() in {"1", "true", "yes", "on"}
EMAIL_TIMEOUT = _int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "noreply@youthvoice.local")

# Redis redelivers an unacknowledged message (a worker killed mid-task) after
# this long; the relay covers sooner, so it only needs to beat the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _int("CELERY_VISIBILITY_TIMEOUT", 600),
}
# Publishing must not hang a request when the broker is down: the outbox row
# is already committed and the relay will publish it later.
CELERY_BROKER_CONNECTION_TIMEOUT = _float("CELERY_BROKER_CONNECTION_TIMEOUT", 2)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}

# Mutated in place so that every settings module adding beat entries keeps the others'.
CELERY_BEAT_SCHEDULE["notifications-relay"] = {
    "task": "notifications.tasks.relay",
    "schedule": NOTIFICATIONS_RELAY_INTERVAL_SECONDS,
}
