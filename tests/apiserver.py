"""Real API servers for the tests: uvicorn on 127.0.0.1 at a free port, in a thread of the
test process, serving a real store (the embedded one or the suite's Neo4j) to real HTTP
clients, with a key file holding one key per role. Fixtures: ``tests/api/conftest.py``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.keys import KeyStore
from api.runs import RunManager
from api.server import bind_socket, create_app
from api.settings import ApiSettings
from graph.snapshot import Snapshot
from graph.store import GraphStore, open_store

__all__ = ["NEO4J_URI", "ROLES", "ApiServer", "Reply", "make_keys", "open_backend",
           "serve_backend", "start_server"]

NEO4J_URI = os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687")

ROLES = ("viewer", "analyst", "admin")


@dataclass
class Reply:
    """One HTTP exchange with the GraphQL endpoint."""

    status: int
    body: dict[str, Any]
    headers: httpx.Headers

    @property
    def data(self) -> Any:
        assert "errors" not in self.body, self.body
        return self.body["data"]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors") or [])

    @property
    def error(self) -> tuple[str, str | None]:
        """The only error: (message, code)."""
        assert len(self.errors) == 1, self.body
        e = self.errors[0]
        return e["message"], (e.get("extensions") or {}).get("code")


@dataclass
class ApiServer:
    """A running server and a client for it."""

    url: str
    store: GraphStore
    keys: KeyStore
    tokens: dict[str, str]
    backend: str
    server: uvicorn.Server
    thread: threading.Thread
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def post(self, body: Any, *, role: str | None = "viewer", token: str | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        h = dict(headers or {})
        if token is not None or role is not None:
            h["authorization"] = f"Bearer {token if token is not None else self.tokens[role]}"
        return self.client.post("/graphql", json=body, headers=h)

    def gql(self, query: str, variables: dict[str, Any] | None = None, *,
            role: str | None = "viewer", token: str | None = None) -> Reply:
        r = self.post({"query": query, "variables": variables or {}}, role=role, token=token)
        return Reply(r.status_code, r.json(), r.headers)

    @property
    def runs(self) -> RunManager:
        """The server's run manager (the server runs in this process)."""
        return self.server.config.app.state.runs  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the API server did not stop"


def make_keys(path: Path) -> tuple[KeyStore, dict[str, str]]:
    keys = KeyStore(path)
    return keys, {role: keys.create(f"test {role}", role)[1] for role in ROLES}


def start_server(store: GraphStore, keys: KeyStore, tokens: dict[str, str], backend: str,
                 settings: ApiSettings | None = None) -> ApiServer:
    """Serve ``store`` on 127.0.0.1 at a port the system picks; returns once it answers."""
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(store, keys, settings), log_level="warning",
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the API server did not start on port {port}")
        time.sleep(0.02)
    return ApiServer(f"http://127.0.0.1:{port}", store, keys, tokens, backend, server, thread)


def open_backend(backend: str, tmp: Path, snapshot: Snapshot) -> GraphStore:
    """A store of ``backend`` holding ``snapshot``, opened by URI as ``contagion load`` does
    (the Neo4j one is the suite's server, which this replaces the content of)."""
    uri = f"memory:{tmp / 'store.zip'}" if backend == "memory" else NEO4J_URI
    store = open_store(uri, create=True)
    store.write_snapshot(snapshot)
    return store


def serve_backend(request: Any, tmp: Any, key_file: tuple[KeyStore, dict[str, str]],
                  snapshot: Snapshot, settings: ApiSettings | None = None
                  ) -> Iterator[ApiServer]:
    """The body of a module-scoped server fixture parametrised by backend (``request.param``
    is "memory" or "neo4j"; a Neo4j one fails loudly through the ``neo4j_store`` fixture when
    the server is down)."""
    if request.param == "neo4j":
        request.getfixturevalue("neo4j_store")
    where = tmp.mktemp(request.param)
    store = open_backend(request.param, where, snapshot)
    settings = settings or ApiSettings()
    if settings.runs_dir == ApiSettings().runs_dir:  # never the working directory's
        settings = settings.model_copy(update={"runs_dir": where / "runs"})
    server = start_server(store, *key_file, request.param, settings)
    yield server
    server.stop()
    store.close()
