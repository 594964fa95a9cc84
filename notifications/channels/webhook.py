"""Webhook: a JSON POST signed with HMAC-SHA256 over the timestamp and the body.

Headers: ``X-YouthVoice-Timestamp`` (Unix seconds), ``X-YouthVoice-Signature``
(``sha256=<hex>`` of HMAC(secret, "<timestamp>." + body)) and
``Idempotency-Key``. A receiver recomputes the signature, refuses stale
timestamps, and drops a key it has already handled. The body names the
recipient by user id only; the bridge maps ids to its own accounts.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings

from .base import NoAddress, RenderedMessage, dumps, post_json


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, tolerance: int = 300) -> bool:
    """What a receiver does: check the signature and that the timestamp is fresh."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def payload(notification, user, message: RenderedMessage) -> dict:
    return {
        "id": notification.key,
        "event": notification.kind,
        "audience": notification.audience,
        "recipient": user.pk,
        "case": (notification.context or {}).get("ref", ""),
        "language": message.language,
        "subject": message.subject,
        "text": message.body,
        "created_at": notification.created_at.isoformat(),
    }


def send(notification, user, message: RenderedMessage) -> None:
    url = settings.NOTIFICATIONS_WEBHOOK_URL
    if not url:
        raise NoAddress("no webhook endpoint configured")
    body = dumps(payload(notification, user, message))
    timestamp = str(int(time.time()))
    headers = {
        "X-YouthVoice-Timestamp": timestamp,
        "X-YouthVoice-Signature": sign(settings.NOTIFICATIONS_WEBHOOK_SECRET, timestamp, body),
        "Idempotency-Key": notification.key,
    }
    post_json(url, body, headers)
