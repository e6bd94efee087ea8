"""Field permissions by role (:class:`api.keys.Role`): small classes with a message.

Every request is authenticated before it reaches the schema (``api.server``), so every
resolver may read queries as a viewer; mutations need an analyst, key administration an admin.
"""

from __future__ import annotations

from typing import Any, ClassVar

from graphql import GraphQLError
from strawberry.permission import BasePermission

from api.graphql.context import Info
from api.keys import Role

__all__ = ["IsAdmin", "IsAnalyst"]


class _HasRole(BasePermission):
    role: ClassVar[Role]
    message = "this API key's role does not allow this field"
    error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012 - declared by BasePermission

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        held = info.context.principal.role
        if not held.allows(self.role):
            # the message names the field and both roles, so it is raised here rather than
            # set on this instance (shared by every request)
            raise GraphQLError(f"{info.path.typename}.{info.field_name} needs the "
                               f"{self.role} role or higher (this API key has {held})",
                               extensions=self.error_extensions)
        return True


class IsAnalyst(_HasRole):
    """The analyst or admin role: running and validating scenarios."""

    role = Role.ANALYST


class IsAdmin(_HasRole):
    """The admin role: key administration, ingest and rescoring."""

    role = Role.ADMIN
