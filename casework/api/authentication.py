"""Token authentication: the token, its user and the user's memberships in one statement.

DRF's ``TokenAuthentication`` reads the token with its user (a query Django compiles
and PostgreSQL plans on every request); the first case or list read then asks for
the person's memberships (``permissions.roles_of``), a second query. On PostgreSQL
this class reads all three in one prepared statement (``casework.prepared.ModelRead``:
compiled once per process, planned once per connection) and caches the memberships
on the user. Same answers and errors as DRF's class; elsewhere it is DRF's class.
"""

from __future__ import annotations

import functools

from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from .. import permissions
from ..models import Membership, Organisation


class _TokenRead:
    @classmethod
    @functools.cache
    def get(cls) -> _TokenRead:
        """The statement, compiled once per process."""
        return cls()

    def __init__(self):
        from ..prepared import ModelRead

        token = f'"{Token._meta.db_table}"'
        roles = (
            "(SELECT json_agg(json_build_array(m.organisation_id, mo.path, m.role)) "
            f'FROM "{Membership._meta.db_table}" m '
            f'JOIN "{Organisation._meta.db_table}" mo ON mo.id = m.organisation_id '
            f"WHERE m.user_id = {token}.user_id)"
        )
        queryset = Token.objects.select_related("user").filter(user_id=ModelRead.PROBE).order_by()
        self.read = ModelRead(queryset, where=f"WHERE {token}.key = %s", extra=roles)


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, with the memberships read alongside."""

    def authenticate_credentials(self, key):
        connection = connections[router.db_for_read(Token)]
        if connection.vendor != "postgresql":
            return super().authenticate_credentials(key)
        found = _TokenRead.get().read.run(connection, [key])
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token, (roles,) = found
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        permissions.remember_roles(
            user, tuple(permissions.Role(org, path, role) for org, path, role in roles or ())
        )
        return (user, token)
