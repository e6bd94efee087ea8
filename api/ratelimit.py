"""Per-key rate limiting: one token bucket per API key.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per second; a request
takes one token, and a request that finds the bucket empty is refused with the seconds until
the next token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets keyed by API key id.

    >>> limiter = RateLimiter(rate=1.0, burst=2, clock=lambda: 0.0)
    >>> [limiter.acquire("k") for _ in range(3)]
    [0.0, 0.0, 1.0]
    """

    def __init__(self, rate: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number of requests per second "
                             f"(got {rate})")
        if burst < 1:
            raise ValueError(f"burst must be at least 1 (got {burst})")
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at time)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take a token for ``key``: 0.0 if granted, else the seconds to wait for one."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
