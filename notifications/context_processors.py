"""``notifications_unread``: the signed-in person's unread in-app count, for the page header."""

from .selectors import unread_count


def inbox(request):
    user = getattr(request, "user", None)
    return {"notifications_unread": (lambda: unread_count(user))}
