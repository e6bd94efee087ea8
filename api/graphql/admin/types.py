"""GraphQL types of the admin domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.keys import ApiKey, Role

__all__ = ["ApiKeyInfo", "IngestFailed", "IngestResult", "Ingested", "LabelCount", "api_key_info"]

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


@strawberry.type(description="A count per node label or relationship type.")
class LabelCount:
    name: str
    count: int


@strawberry.type(description="The files were ingested: the snapshot's name and what the "
                             "write changed (labels and types with no change left out).")
class Ingested:
    snapshot: str
    changed: bool
    added: list[LabelCount]
    updated: list[LabelCount]
    removed: list[LabelCount]


@strawberry.type(description="Nothing was ingested (the store is unchanged): why, and where "
                             "(the file, its row or JSON path, the field) when a file was "
                             "rejected.")
class IngestFailed:
    message: str
    source: str | None
    row: str | None
    field: str | None


IngestResult = Annotated[Ingested | IngestFailed, strawberry.union("IngestResult")]
