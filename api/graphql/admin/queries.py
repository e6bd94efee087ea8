"""Root query fields of the admin domain."""

from __future__ import annotations

import strawberry

from api.graphql.admin.types import ApiKeyInfo, api_key_info
from api.graphql.context import Info
from api.graphql.permissions import IsAdmin

__all__ = ["AdminQueries"]


@strawberry.type
class AdminQueries:
    @strawberry.field(description="The API key making this request.")
    def me(self, info: Info) -> ApiKeyInfo:
        return api_key_info(info.context.principal)

    @strawberry.field(permission_classes=[IsAdmin],
                      description="Every API key, oldest first; needs the admin role.")
    def api_keys(self, info: Info) -> list[ApiKeyInfo]:
        return [api_key_info(k) for k in info.context.keys.list_keys()]
