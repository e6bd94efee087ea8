"""A careful JSON-RPC client: retries with backoff, chunked log reads, batched ``eth_call``.

Built on web3.py (provider, ABI encoding and decoding, event decoding). What it adds is what a
long ingest against a hosted endpoint needs:

- the first request (:meth:`Rpc.connect`, ``eth_chainId``) checks that the endpoint answers:
  it may take ``connect_timeout`` seconds and is retried ``connect_retries`` times, so that
  an unreachable endpoint fails in seconds ("cannot reach the RPC endpoint …");
- every request is retried on timeouts, connection errors, HTTP 429 and 5xx, and JSON-RPC
  rate-limit errors, waiting ``backoff × 2^k`` seconds (at most 30, or the server's
  ``Retry-After``), up to ``max_retries`` times; each retry is reported (``on_retry``, or a
  warning of the ``ingest.rpc`` logger) as it happens;
- ``eth_getLogs`` ranges that a node refuses as too large (too many results, range limit,
  response size) are halved until they pass;
- ``eth_call`` reads at one block go as JSON-RPC batches of ``batch_size`` calls.

Errors raise :class:`~graph.errors.IngestError`; the RPC URL is never printed beyond its
scheme and host (hosted endpoints carry API keys in the path).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import requests
from eth_abi.exceptions import DecodingError
from eth_typing import ChecksumAddress
from web3 import HTTPProvider, Web3
from web3.exceptions import Web3RPCError
from web3.types import FilterParams, LogReceipt, RPCResponse

from graph.errors import IngestError

__all__ = ["Call", "Rpc", "redact_url"]

T = TypeVar("T")

log = logging.getLogger(__name__)

_RATE_LIMIT_CODES = {429, -32005, -32029, -32090}
_RATE_LIMIT_WORDS = ("rate limit", "too many requests", "exceeded the quota", "capacity")
_RANGE_WORDS = ("more than", "too many results", "block range", "range is too large",
                "range too large", "response size", "limit exceeded", "query timeout",
                "exceed maximum block range", "log response size")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def redact_url(url: str) -> str:
    """``https://host/...`` without path, query or credentials (they may hold API keys)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


@dataclass(frozen=True)
class Call:
    """One ``eth_call``: the contract address, the ABI-encoded call data, and the output types
    to decode the result with (``("uint256",)``; ``None``: the raw bytes)."""

    to: str
    data: str
    outputs: tuple[str, ...] | None


def _connection_failure(e: BaseException) -> str:
    """Why a connection failed, in a few words: the system's reason where the message of
    requests (and of the urllib3 errors inside it) carries one.

    >>> _connection_failure(OSError("HTTPConnectionPool(host='127.0.0.1', port=9): Max "
    ...     "retries exceeded (Caused by NewConnectionError('<urllib3.connection object>: "
    ...     "Failed to establish a new connection: [Errno 111] Connection refused'))"))
    'connection refused'
    >>> _connection_failure(OSError("something else"))
    'connection failed'
    """
    m = _ERRNO.search(str(e))
    return m.group(1).strip().rstrip(".").lower() if m else "connection failed"


class _Retryable(Exception):
    def __init__(self, why: str, wait: float | None = None) -> None:
        super().__init__(why)
        self.wait = wait


class _RangeTooLarge(Exception):
    pass


def _rpc_error_kind(code: Any, message: str) -> str | None:
    msg = message.lower()
    if code in _RATE_LIMIT_CODES or any(w in msg for w in _RATE_LIMIT_WORDS):
        # -32005 is also "query returned more than 10000 results" at some providers
        if any(w in msg for w in _RANGE_WORDS) and "rate" not in msg:
            return "range"
        return "rate"
    if any(w in msg for w in _RANGE_WORDS):
        return "range"
    return None


class Rpc:
    """One endpoint. ``sleep`` is injectable so that callers may account for waiting;
    ``on_retry`` is told of every retry, before its wait (default: a logged warning).

    Nothing listens on port 9 here:

    >>> Rpc("http://127.0.0.1:9", connect_retries=0).connect()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    graph.errors.IngestError: cannot reach the RPC endpoint http://127.0.0.1:9 after 1 attempt (...)
    """

    def __init__(self, url: str, *, timeout: float = 30.0, max_retries: int = 6,
                 backoff: float = 0.5, batch_size: int = 100, connect_timeout: float = 5.0,
                 connect_retries: int = 2, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str], None] | None = None) -> None:
        self.url = url
        self.where = redact_url(url)
        self.max_retries = max_retries
        self.connect_retries = connect_retries
        self.backoff = backoff
        self.batch_size = batch_size
        self.sleep = sleep
        self.on_retry = on_retry or log.warning
        self.retries = 0  # how many requests were retried (for reports and tests)
        self.splits = 0  # how many log ranges were halved
        provider = HTTPProvider(url, request_kwargs={"timeout": timeout},
                                exception_retry_configuration=None)
        self.w3 = Web3(provider)
        # the first request, with its own (short) time limit
        self._probe = Web3(HTTPProvider(url, request_kwargs={"timeout": connect_timeout},
                                        exception_retry_configuration=None))

    # ------------------------------------------------------------------ retry
    def _attempt(self, what: str, fn: Callable[[], T], *, retries: int | None = None,
                 failure: Callable[[int, str], IngestError] | None = None) -> T:
        """``fn()``, retried ``retries`` times (default ``max_retries``) on a retryable
        error; ``failure(attempts, why)`` is the error raised once they are all spent."""
        most = self.max_retries if retries is None else retries
        for attempt in range(most + 1):
            try:
                return self._classify(fn)
            except _Retryable as e:
                if attempt == most:
                    if failure is not None:
                        raise failure(attempt + 1, str(e)) from None
                    raise IngestError(f"{what} failed after {attempt + 1} tries at "
                                      f"{self.where}: {e}") from None
                self.retries += 1
                wait = min(e.wait if e.wait is not None else self.backoff * 2 ** attempt, 30.0)
                self.on_retry(f"{what} at {self.where}: {e}; retry {attempt + 1} of {most} "
                              f"in {wait:.1f} s")
                self.sleep(wait)
        raise AssertionError("unreachable")

    def _classify(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except requests.ConnectTimeout as e:
            raise _Retryable("connection timed out") from e
        except requests.Timeout as e:
            raise _Retryable(f"timed out ({e.__class__.__name__})") from e
        except requests.ConnectionError as e:
            raise _Retryable(_connection_failure(e)) from e
        except requests.HTTPError as e:
            status = e.response.status_code if e.response is not None else 0
            if status == 429 or status >= 500:
                after = e.response.headers.get("Retry-After") if e.response is not None else None
                wait = float(after) if after and after.replace(".", "", 1).isdigit() else None
                raise _Retryable(f"HTTP {status}", wait) from e
            raise IngestError(f"HTTP {status} from {self.where}") from e
        except Web3RPCError as e:
            err = e.rpc_response.get("error") if e.rpc_response else None
            code = err.get("code") if isinstance(err, dict) else None
            message = str(err.get("message", e)) if isinstance(err, dict) else str(e)
            kind = _rpc_error_kind(code, message)
            if kind == "rate":
                raise _Retryable(f"rate limited ({message})") from e
            if kind == "range":
                raise _RangeTooLarge(message) from e
            raise IngestError(f"JSON-RPC error from {self.where}: {message}") from e

    # ------------------------------------------------------------------ simple reads
    def connect(self) -> int:
        """The chain id, read as the first request: it checks that the endpoint answers,
        within ``connect_timeout`` seconds an attempt and ``connect_retries`` retries."""
        def failure(attempts: int, why: str) -> IngestError:
            return IngestError(f"cannot reach the RPC endpoint {self.where} after {attempts} "
                               f"attempt{'s' if attempts != 1 else ''} ({why})")

        return int(self._attempt("eth_chainId", lambda: self._probe.eth.chain_id,
                                 retries=self.connect_retries, failure=failure))

    def chain_id(self) -> int:
        return int(self._attempt("eth_chainId", lambda: self.w3.eth.chain_id))

    def head(self) -> int:
        return int(self._attempt("eth_blockNumber", lambda: self.w3.eth.block_number))

    def block(self, number: int) -> tuple[str, int]:
        """``(hash, timestamp)`` of block ``number``."""
        b = self._attempt("eth_getBlockByNumber", lambda: self.w3.eth.get_block(number))
        return str(b["hash"].to_0x_hex()), int(b["timestamp"])

    # ------------------------------------------------------------------ logs
    def logs(self, addresses: Sequence[str], topics: Sequence[str], start: int, end: int,
             chunk: int) -> Iterator[tuple[int, list[LogReceipt]]]:
        """Logs of ``addresses`` whose first topic is one of ``topics``, blocks ``start`` to
        ``end`` inclusive, as ``(last block covered, logs)`` per chunk in block order."""
        lo = start
        size = chunk
        while lo <= end:
            hi = min(end, lo + size - 1)
            params: FilterParams = {"address": [cast(ChecksumAddress, a) for a in addresses],
                                    "fromBlock": lo,
                                    "toBlock": hi, "topics": [list(topics)]}
            try:
                found = self._attempt(f"eth_getLogs {lo}-{hi}",
                                      lambda p=params: self.w3.eth.get_logs(p))  # type: ignore[misc]
            except _RangeTooLarge as e:
                if hi == lo:
                    raise IngestError(f"eth_getLogs refused a single block {lo} at "
                                      f"{self.where}: {e}") from None
                self.splits += 1
                size = max(1, (hi - lo + 1) // 2)
                continue
            yield hi, sorted(found, key=lambda x: (x["blockNumber"], x["logIndex"]))
            lo = hi + 1
            size = min(chunk, size * 2)

    # ------------------------------------------------------------------ calls
    def calls(self, calls: Sequence[Call], block: int) -> list[Any]:
        """Results of ``calls`` at ``block``, in order (decoded as each call says); a call
        that reverts gives ``None``."""
        out: list[Any] = []
        tag = hex(block)
        for i in range(0, len(calls), self.batch_size):
            part = calls[i:i + self.batch_size]
            reqs = [("eth_call", [{"to": c.to, "data": c.data}, tag]) for c in part]
            responses = self._attempt(f"eth_call batch of {len(part)} at block {block}",
                                      lambda r=reqs: self._batch(r))  # type: ignore[misc]
            for c, resp in zip(part, responses, strict=True):
                out.append(self._decode(c, resp, block))
        return out

    def _batch(self, reqs: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        resp = self.w3.provider.make_batch_request(reqs)  # type: ignore[attr-defined]
        if isinstance(resp, dict):  # the whole batch was refused
            err = resp.get("error") or {}
            raise Web3RPCError(str(err.get("message", resp)),
                               rpc_response=cast(RPCResponse, resp))
        items = list(resp)
        if len(items) != len(reqs):
            raise _Retryable(f"batch answered {len(items)} of {len(reqs)} calls")
        for item in items:
            err = item.get("error")
            if isinstance(err, dict) and _rpc_error_kind(err.get("code"),
                                                         str(err.get("message", ""))):
                raise Web3RPCError(str(err.get("message")),
                                   rpc_response=cast(RPCResponse, item))
        return items

    def _decode(self, call: Call, resp: dict[str, Any], block: int) -> Any:
        err = resp.get("error")
        if err is not None:
            msg = str(err.get("message", err)) if isinstance(err, dict) else str(err)
            if "revert" in msg.lower():
                return None
            raise IngestError(f"eth_call to {call.to} at block {block} failed: {msg}")
        raw = bytes.fromhex(str(resp.get("result") or "0x")[2:])
        if call.outputs is None:
            return raw
        if not raw:
            return None  # no contract there, or a function it lacks
        try:
            return self.w3.codec.decode(list(call.outputs), raw)
        except DecodingError:
            return None
