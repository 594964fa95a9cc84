"""SMS: a small backend interface, a console and a file backend, one HTTP gateway.

``NOTIFICATIONS_SMS_BACKEND`` names the backend class. A backend sends one
text to one number and passes ``client_ref`` (the idempotency key) so the
gateway can drop a repeat.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from .base import NoAddress, RenderedMessage, dumps, post_json

# One SMS is at most this long here; gateways split longer ones and bill each part.
MAX_LENGTH = 280


def masked(phone: str) -> str:
    """The last four digits only: console output is a log."""
    return "*" * max(len(phone) - 4, 0) + phone[-4:]


class SMSBackend:
    def send(self, *, to: str, text: str, client_ref: str) -> None:
        raise NotImplementedError


class ConsoleSMSBackend(SMSBackend):
    """Prints each SMS (number masked) to standard output: for development."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def send(self, *, to: str, text: str, client_ref: str) -> None:
        self.stream.write(f"[sms] to={masked(to)} ref={client_ref}\n{text}\n")
        self.stream.flush()


class FileSMSBackend(SMSBackend):
    """Appends each SMS as a JSON line to ``NOTIFICATIONS_SMS_FILE_PATH/sms-<date>.jsonl``."""

    _lock = threading.Lock()

    def send(self, *, to: str, text: str, client_ref: str) -> None:
        folder = Path(settings.NOTIFICATIONS_SMS_FILE_PATH)
        folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {"to": to, "text": text, "client_ref": client_ref, "at": timezone.now().isoformat()},
            ensure_ascii=False,
        )
        with self._lock, open(folder / f"sms-{timezone.now():%Y%m%d}.jsonl", "a") as out:
            out.write(line + "\n")


class HTTPGatewaySMSBackend(SMSBackend):
    """A generic JSON gateway: POST {to, text, sender, client_ref} with a bearer token.

    2xx is success; 4xx (but 408/429) is permanent; 5xx, timeouts and refused
    connections are retried. The gateway should treat a repeated
    ``client_ref`` as the same message.
    """

    def send(self, *, to: str, text: str, client_ref: str) -> None:
        body = dumps(
            {
                "to": to,
                "text": text,
                "sender": settings.NOTIFICATIONS_SMS_SENDER,
                "client_ref": client_ref,
            }
        )
        headers = {"Idempotency-Key": client_ref}
        if settings.NOTIFICATIONS_SMS_GATEWAY_TOKEN:
            headers["Authorization"] = f"Bearer {settings.NOTIFICATIONS_SMS_GATEWAY_TOKEN}"
        post_json(settings.NOTIFICATIONS_SMS_GATEWAY_URL, body, headers)


def get_backend() -> SMSBackend:
    return import_string(settings.NOTIFICATIONS_SMS_BACKEND)()


def send(notification, user, message: RenderedMessage) -> None:
    phone = (user.phone or "").strip()
    if not phone:
        raise NoAddress("no phone number")
    text = f"{message.subject} {message.body}".strip()[:MAX_LENGTH]
    get_backend().send(to=phone, text=text, client_ref=notification.key)
