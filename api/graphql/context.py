"""The per-request context every resolver receives as ``info.context``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry

from api.fragility import FragilityService
from api.gateway import StoreGateway
from api.graphql.loaders import Loaders
from api.keys import ApiKey, KeyStore
from api.runs import RunManager
from api.settings import ApiSettings

__all__ = ["Context", "Info"]


@dataclass
class Context:
    """What one request carries: its id (in logs, error messages and the ``X-Request-ID``
    header), the API key that made it, the store gateway (counted, time-limited calls), the
    request's own DataLoaders, the server's settings and key store, and the cost the limiter
    computed."""

    request_id: str
    principal: ApiKey
    gateway: StoreGateway
    loaders: Loaders
    settings: ApiSettings
    keys: KeyStore
    runs: RunManager
    fragility: FragilityService
    cost: int = 0
    #: the ``connection_init`` payload of a websocket connection (None over HTTP)
    connection_params: dict[str, Any] | None = None


Info = strawberry.Info[Context, None]
