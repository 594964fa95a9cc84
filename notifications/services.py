"""Notifications: outbox rows written in the same transaction as the change they report."""


def notify_event(case, event) -> None:
    """Write the outbox rows that ``event`` calls for (inside the caller's transaction)."""


def notify_events_bulk(pairs) -> None:
    """The same for many (case, event) pairs at once, in bulk (for sweeps)."""
