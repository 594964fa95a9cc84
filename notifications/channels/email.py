"""E-mail through Django's backends: the console by default, SMTP in production."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMessage

from .base import NoAddress, PermanentError, RenderedMessage, TransientError


def send(notification, user, message: RenderedMessage) -> None:
    address = (user.email or "").strip()
    if not address:
        raise NoAddress("no e-mail address")
    email = EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        # A stable Message-ID lets mail servers and clients drop a repeat.
        headers={
            "Message-ID": f"<{notification.key}@youthvoice>",
            "X-Idempotency-Key": notification.key,
        },
    )
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused:
        raise PermanentError("recipient refused") from None
    except (smtplib.SMTPException, OSError) as error:
        raise TransientError(f"mail server: {type(error).__name__}") from None
