"""Template helpers for the page header: which parts of the site a person works in."""

from django import template

from ..permissions import HANDLER, PARTNER, SUPERVISOR, VERIFIER, roles_of

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_roles(context) -> dict:
    """What the header offers the signed-in person: youth pages, workbench, console.

    Uses the memberships cached on the user (one query per request at most).
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"youth": False, "staff": False, "supervisor": False}
    kinds = {r.role for r in roles_of(user)}
    staff = bool(kinds & {HANDLER, VERIFIER, PARTNER})
    supervisor = SUPERVISOR in kinds
    return {"youth": not (staff or supervisor), "staff": staff, "supervisor": supervisor}
