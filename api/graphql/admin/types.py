"""GraphQL types of the admin domain."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.keys import ApiKey, Role

__all__ = ["ApiKeyInfo", "api_key_info"]

strawberry.enum(Role)


@strawberry.type(description="An API key: id, name, role and creation time (its secret is "
                             "never stored).")
class ApiKeyInfo:
    id: str
    name: str
    role: Role
    created: datetime


def api_key_info(key: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(id=key.id, name=key.name, role=key.role, created=key.created)
