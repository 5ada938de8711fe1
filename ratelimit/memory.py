"""The in-process counters and blocked set: the backend without Redis, and the fallback
while the breaker is open. Each counter expires `window` seconds after its first event,
like the INCR + EXPIRE NX pair it stands in for."""

import threading
import time


class MemoryCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}
        # Address → epoch seconds it is blocked until: blocks published by this process.
        self.blocked: dict[str, float] = {}

    def incr(self, key: str, *, window: int) -> int:
        now = time.monotonic()
        with self._lock:
            count, expires = self._counts.get(key, (0, now + window))
            if expires <= now:
                count, expires = 0, now + window
            self._counts[key] = (count + 1, expires)
            if len(self._counts) > 50_000:
                self._drop_expired(now)
            return count + 1

    def get(self, key: str) -> int:
        count, expires = self._counts.get(key, (0, 0.0))
        return count if expires > time.monotonic() else 0

    def _drop_expired(self, now: float) -> None:
        for key in [key for key, (_, expires) in self._counts.items() if expires <= now]:
            del self._counts[key]
