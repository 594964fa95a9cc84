"""Delivery channels. Each external channel is a function ``send(notification, user, message)``.

A channel raises ``TransientError`` for what may work later (timeouts, 5xx,
connection refused), ``PermanentError`` for what never will (4xx, a refused
address) and ``NoAddress`` when the person has no address for it. Every send
carries the notification's idempotency key so the receiver can drop a repeat.
The in-app channel is not here: it is a database write (``services``).
"""

from .base import NoAddress, PermanentError, RenderedMessage, TransientError


def get_sender(channel: str):
    from . import email, sms, webhook

    return {"email": email.send, "sms": sms.send, "webhook": webhook.send}[channel]


__all__ = ["NoAddress", "PermanentError", "RenderedMessage", "TransientError", "get_sender"]
