"""A circuit breaker around the limiter's Redis. Closed: every call goes to Redis. After
`failures` failures in a row it opens: calls go straight to the in-process fallback for
`reset_seconds`, so a dead Redis costs no timeout per request. Then half-open: one caller
at a time probes Redis; success closes the breaker, failure opens it for another period."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass
class BreakerCounts:
    consecutive_failures: int = 0
    total_failures: int = 0
    times_opened: int = 0
    last_error: str = ""


class CircuitBreaker:
    def __init__(self, *, failures: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.counts = BreakerCounts()
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at < self.reset_seconds:
            return "open"
        return "half_open"

    def allow(self) -> bool:
        """May this call go to Redis? In half-open, only the one probe in flight."""
        with self._lock:
            state = self.state
            if state == "closed":
                return True
            if state == "open" or self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> bool:
        """Record a call that worked; whether it ended a run of failures (Redis is back)."""
        with self._lock:
            recovered = self._opened_at is not None or self.counts.consecutive_failures > 0
            self._opened_at = None
            self._probing = False
            self.counts.consecutive_failures = 0
        return recovered

    def failure(self, error: BaseException) -> None:
        with self._lock:
            self.counts.consecutive_failures += 1
            self.counts.total_failures += 1
            self.counts.last_error = f"{type(error).__name__}: {error}"[:200]
            closed = self._opened_at is None
            if not closed or self.counts.consecutive_failures >= self.failures:
                # A failed probe (or a call begun before the breaker opened) restarts the wait.
                self.counts.times_opened += closed
                self._opened_at = self.clock()
            self._probing = False
