"""What every channel shares: the rendered message, the errors, one HTTP POST."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str
    language: str


class DeliveryError(Exception):
    """A send failed. ``str(error)`` must never hold personal data: it is stored."""


class TransientError(DeliveryError):
    """May work on a later attempt."""


class PermanentError(DeliveryError):
    """Will never work: dead-letter at once."""


class NoAddress(PermanentError):
    """The person has no address for this channel: skip, nothing to retry."""


def post_json(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST ``body`` as JSON; return the status, or raise the error class it calls for."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(
            request, timeout=settings.NOTIFICATIONS_HTTP_TIMEOUT_SECONDS
        ) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        # 408 and 429 say "later"; other 4xx say "never"; 5xx may pass later.
        if 400 <= error.code < 500 and error.code not in (408, 409, 425, 429):
            raise PermanentError(f"HTTP {error.code}") from None
        raise TransientError(f"HTTP {error.code}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TransientError(f"connection failed: {type(reason).__name__}") from None


def dumps(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
