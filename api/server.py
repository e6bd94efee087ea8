"""The HTTP server: the GraphQL endpoint behind CORS, authentication, rate limiting and a
body-size limit, on uvicorn.

Requests pass, outermost first:

1. CORS (starlette's ``CORSMiddleware``): browsers may call from ``ApiSettings.cors_origins``
   only; preflight requests are answered here.
2. :class:`SecurityMiddleware`: gives the request an id (``X-Request-ID`` on every response,
   ``extensions.requestId`` in every result, and in every log line about it), refuses a body
   over ``max_body_bytes`` (413), authenticates ``Authorization: Bearer <API key>`` (401) and
   takes a token from the key's bucket (429 with ``Retry-After``).
3. ``/graphql``: strawberry's ASGI app (POST only) with the request's :class:`Context`.
   ``/healthz`` answers without authentication, for load balancers and compose.
4. ``/explore``: the graph explorer, a static page (no data in it, so no authentication)
   that asks for an API key and then talks to ``/graphql`` like any other client. Its
   front-end library is copied from ``node_modules`` by ``scripts/bootstrap``.

Websockets (``/graphql``, protocol ``graphql-transport-ws``, for subscriptions): browsers
cannot set headers on a websocket, so the API key may come in the ``connection_init``
payload, ``{"authorization": "Bearer <key>"}``, as well as in the handshake's
``Authorization`` header. A handshake with a bad header is refused (HTTP 403); a connection
whose ``connection_init`` carries no valid key is closed with 4403 (and one that subscribes
before ``connection_init`` with 4401, by the protocol). Opening a connection takes a token
from the key's rate-limit bucket.

The served store must exist: a ``memory:PATH`` file that is not there is an error at startup
(``contagion load`` or ``contagion ingest`` creates one; the admin ``ingest`` mutation then
writes into it), not an empty graph to serve. It is opened once per server and shared by
every request; store calls run on a thread pool of ``store_threads`` threads. Scenario runs
are executed by the server's :class:`~api.runs.RunManager` in worker processes, one manager
per server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from uvicorn.supervisors import Multiprocess

from api.fragility import FragilityService
from api.gateway import StoreGateway
from api.graphql.context import Context
from api.graphql.loaders import Loaders
from api.graphql.schema import build_schema
from api.keys import ApiKey, KeyFileError, KeyStore
from api.ratelimit import RateLimiter
from api.runs import RunManager
from api.settings import ApiSettings
from graph.store import GraphStore

__all__ = ["SecurityMiddleware", "app_from_env", "bind_socket", "create_app", "key_of",
           "run_server", "run_workers"]

log = logging.getLogger("contagion.api")

_PUBLIC_PATHS = frozenset({"/healthz"})
_PUBLIC_PREFIXES = ("/explore",)
EXPLORER_DIR = Path(__file__).resolve().parent / "explorer"
_VENDOR = EXPLORER_DIR / "vendor" / "cytoscape.min.js"
# the explorer loads only its own files and talks only to this server
_EXPLORER_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                 "img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; "
                 "form-action 'none'; frame-ancestors 'none'")


def _error_body(message: str, code: str, request_id: str) -> bytes:
    return json.dumps({"errors": [{"message": message, "extensions": {
        "code": code, "requestId": request_id}}]}).encode()


def key_of(keys: KeyStore, header: str) -> tuple[ApiKey | None, str]:
    """The key an ``Authorization`` value names, or None and why not (raises
    :class:`KeyFileError` when the key file cannot be read)."""
    if not header:
        return None, "missing API key: send the header 'Authorization: Bearer <key>'"
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, (f"the Authorization header must be 'Bearer <key>' (got a "
                      f"{scheme[:20]!r} header)")
    try:
        key = keys.authenticate(token.strip())
    except KeyFileError as e:
        # fail closed: no key is trusted while the key file cannot be read
        log.error("API key file unreadable, refusing requests: %s", e)
        raise
    if key is None:
        return None, "invalid API key (unknown, revoked or malformed)"
    return key, ""


class SecurityMiddleware:
    """Request ids, body-size limit, API-key authentication and per-key rate limiting."""

    def __init__(self, app: ASGIApp, keys: KeyStore, settings: ApiSettings,
                 limiter: RateLimiter) -> None:
        self.app = app
        self.keys = keys
        self.settings = settings
        self.limiter = limiter

    async def _refuse(self, send: Send, status: int, message: str, code: str, rid: str,
                      headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        body = _error_body(message, code, rid)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()), *headers]})
        await send({"type": "http.response.body", "body": body})

    def _authenticate(self, scope: Scope) -> tuple[ApiKey | None, str]:
        header = ""
        for k, v in scope.get("headers", ()):
            if k == b"authorization":
                header = v.decode("latin-1")
                break
        return key_of(self.keys, header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] not in ("http", "websocket") or scope["path"] in _PUBLIC_PATHS
                or scope["path"].startswith(_PUBLIC_PREFIXES)):
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        if scope["type"] == "websocket":
            # no header: the key comes in connection_init (ContagionGraphQL.on_ws_connect)
            has_header = any(k == b"authorization" for k, _ in scope.get("headers", ()))
            key = None
            if has_header:
                try:
                    key, _ = self._authenticate(scope)
                except KeyFileError:
                    key = None
                if key is None or self.limiter.acquire(key.id) > 0:
                    await send({"type": "websocket.close", "code": 4401})
                    return
            state["principal"] = key
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        # the body, read up to the limit before anything else happens
        limit = self.settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, 413, f"request body must be at most {limit} bytes "
                                              f"(got more)", "BODY_TOO_LARGE", rid)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            key, problem = self._authenticate(scope)
        except KeyFileError:
            await self._refuse(send, 503, "the server cannot read its API key file; try again "
                                          "later", "UNAVAILABLE", rid)
            return
        if key is None:
            await self._refuse(send, 401, problem, "UNAUTHENTICATED", rid,
                               [(b"www-authenticate", b'Bearer realm="contagion"')])
            return
        wait = self.limiter.acquire(key.id)
        if wait > 0:
            await self._refuse(send, 429, f"rate limit of {self.settings.rate_limit:g} "
                                          f"requests/s (burst {self.settings.rate_burst}) "
                                          f"exceeded for API key {key.id}; retry in "
                                          f"{wait:.2f} s", "RATE_LIMITED", rid,
                               [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
            return
        state["principal"] = key
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_id)


class ContagionGraphQL(GraphQL[Context, None]):
    """strawberry's ASGI view, with the request's :class:`Context`."""

    def __init__(self, store: GraphStore, keys: KeyStore, settings: ApiSettings,
                 executor: ThreadPoolExecutor, runs: RunManager, limiter: RateLimiter,
                 fragility: FragilityService) -> None:
        super().__init__(build_schema(settings), graphql_ide=None, allow_queries_via_get=False,
                         subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
                         allowed_origins=settings.cors_origins)
        self.store, self.keys, self.settings, self.executor = store, keys, settings, executor
        self.runs, self.limiter, self.fragility = runs, limiter, fragility

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        state = request.scope["state"]
        gateway = StoreGateway(self.store, self.executor, self.settings.store_timeout_s)
        # a websocket without an Authorization header has no principal until connection_init
        # (on_ws_connect); the protocol runs no operation before that
        return Context(request_id=state["request_id"],
                       principal=cast(ApiKey, state.get("principal")), gateway=gateway,
                       loaders=Loaders(gateway), settings=self.settings, keys=self.keys,
                       runs=self.runs, fragility=self.fragility)

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        """Authenticate a websocket by its ``connection_init`` payload (unless its handshake
        had a valid ``Authorization`` header); no valid key: close with 4403."""
        if context.principal is not None:
            return None
        params = context.connection_params or {}
        value = params.get("authorization") or params.get("Authorization") or ""
        try:
            key, problem = key_of(self.keys, value if isinstance(value, str) else "")
        except KeyFileError:
            key, problem = None, "the server cannot read its API key file"
        if key is None or self.limiter.acquire(key.id) > 0:
            log.info("request %s: websocket refused: %s", context.request_id,
                     problem or "rate limited")
            raise ConnectionRejectionError({"message": problem or "rate limited"})
        context.principal = key
        return None


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _explore(request: Request) -> Response:
    if not _VENDOR.exists():
        return PlainTextResponse(f"the explorer is not built: {_VENDOR} is missing (run "
                                 "scripts/bootstrap, which copies it from node_modules)",
                                 status_code=503)
    return FileResponse(EXPLORER_DIR / "index.html",
                        headers={"content-security-policy": _EXPLORER_CSP,
                                 "x-content-type-options": "nosniff",
                                 "cache-control": "no-cache"})


def create_app(store: GraphStore, keys: KeyStore, settings: ApiSettings | None = None, *,
               owns_store: bool = False) -> Starlette:
    """The ASGI application serving ``store`` to the holders of ``keys`` (closing the store
    when it shuts down if it ``owns_store``)."""
    settings = settings or ApiSettings()
    from graph.store.neo4j import Neo4jStore

    if isinstance(store, Neo4jStore):  # the server stops a read that runs past the limit too
        store.query_timeout = settings.store_timeout_s
    executor = ThreadPoolExecutor(settings.store_threads, thread_name_prefix="contagion-store")
    unavailable = None
    if settings.workers > 1:
        unavailable = (f"this server runs {settings.workers} processes (--workers "
                       f"{settings.workers}), which cannot share a run queue; scenario runs "
                       "are launched, cancelled and watched on a server with --workers 1")
    runs = RunManager(settings.runs_dir, store.uri, snapshot=store.read_snapshot,
                      prices=settings.prices,
                      history_days=settings.history_days,
                      max_concurrent=settings.max_concurrent_runs, unavailable=unavailable)
    limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
    fragility = FragilityService(store, settings.model_path)
    graphql = ContagionGraphQL(store, keys, settings, executor, runs, limiter, fragility)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(runs.start)
        try:
            yield
        finally:
            await asyncio.to_thread(runs.close)
            executor.shutdown(wait=False, cancel_futures=True)
            if owns_store:
                store.close()

    app = Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), WebSocketRoute("/graphql", graphql),
                Route("/healthz", _health), Route("/explore", _explore, methods=["GET"]),
                Mount("/explore/static", StaticFiles(directory=EXPLORER_DIR, check_dir=False),
                      name="explorer")],
        middleware=[
            Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                       allow_methods=["POST"],
                       allow_headers=["authorization", "content-type"],
                       expose_headers=["x-request-id", "retry-after"], max_age=600),
            Middleware(SecurityMiddleware, keys=keys, settings=settings, limiter=limiter),
        ],
        lifespan=lifespan,
    )
    app.state.runs = runs
    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free port the system picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it a reply on a kept-alive connection waits out the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def run_server(app: Starlette, sock: socket.socket, *, log_level: str = "info") -> None:
    """Serve ``app`` on ``sock`` until interrupted."""
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


_ENV = "CONTAGION_SERVE"


def app_from_env() -> Starlette:
    """The application of one worker process of :func:`run_workers`: it opens its own store
    (by URI) and key store, with the settings the parent passed in ``CONTAGION_SERVE``."""
    from graph.store import open_store

    spec = json.loads(os.environ[_ENV])
    store = open_store(spec["store"])
    return create_app(store, KeyStore(Path(spec["keys"])),
                      ApiSettings.model_validate_json(spec["settings"]), owns_store=True)


def run_workers(store_uri: str, keys: Path, settings: ApiSettings, sock: socket.socket, *,
                log_level: str = "info", ready: Callable[[], None] | None = None) -> None:
    """Serve with ``settings.workers`` processes sharing ``sock``, each with its own store
    connection (a memory store is loaded by each), until interrupted. The store is opened
    here once first, so that a missing store file or an unreachable server is an error at
    startup rather than a failure of every worker; ``ready`` is called once it opened."""
    from graph.store import open_store

    if store_uri == "memory:":
        raise ValueError("--workers above 1 needs a store other processes can open (a Neo4j "
                         "server or memory:PATH), not memory:")
    open_store(store_uri).close()
    if ready is not None:
        ready()
    os.environ[_ENV] = json.dumps({"store": store_uri, "keys": str(keys),
                                   "settings": settings.model_dump_json()})
    # a worker answers the parent's health checks only once it has imported the package
    config = uvicorn.Config("api.server:app_from_env", factory=True, workers=settings.workers,
                            log_level=log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5, timeout_worker_healthcheck=60)
    Multiprocess(config, sockets=[sock]).run()
