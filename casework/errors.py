"""Domain errors: what a caller did wrong, in words a person can act on.

Each has a stable ``code`` for the API and a translated ``message`` for pages.
"""

from django.utils.translation import gettext_lazy as _


class CaseworkError(Exception):
    code = "error"
    default_message = _("The request could not be completed.")

    def __init__(self, message=None, *, field_errors: dict | None = None):
        self.message = message or self.default_message
        self.field_errors = field_errors or {}
        super().__init__(str(self.message))


class InvalidTransition(CaseworkError):
    """The case is not in a state that allows this action."""

    code = "invalid_state"
    default_message = _("This action is not possible in the case's current state.")


class NotPermitted(CaseworkError):
    """The actor has no role that allows this action on this case."""

    code = "forbidden"
    default_message = _("You are not permitted to do this for this case.")


class ValidationFailed(CaseworkError):
    """Input is missing or malformed (e.g. a reason is required)."""

    code = "invalid"
    default_message = _("Some fields are missing or invalid.")


class CaseConflict(CaseworkError):
    """Someone else changed the case first; reload and try again."""

    code = "conflict"
    default_message = _("Someone else changed this case at the same time. Reload it and try again.")


class NotFound(CaseworkError):
    code = "not_found"
    default_message = _("No such case.")
