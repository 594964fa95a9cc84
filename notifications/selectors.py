"""Reads for the inbox pages: a fixed number of queries each."""

from django.db.models import QuerySet

from .models import InboxItem


def inbox_for(user, *, unread_only: bool = False) -> QuerySet[InboxItem]:
    items = InboxItem.objects.filter(user=user).select_related("case")
    if unread_only:
        items = items.filter(read_at__isnull=True)
    return items


def unread_count(user) -> int:
    if user is None or not user.is_authenticated:
        return 0
    return InboxItem.objects.filter(user=user, read_at__isnull=True).count()
