"""Fakes for the figures other layers measure (monitoring.sources), with values
a test sets. Import `fake_sources_fixture` into a test module to use the
`fake_sources` fixture (a module of its own, not a conftest, to stay out of
the way of other monitoring tests)."""

from collections.abc import Iterator
from typing import Any

import pytest

from monitoring import sources


class FakeSources:
    def __init__(self) -> None:
        self.perf: dict[str, Any] = {
            "requests": 120,
            "requests_per_second": 0.4,
            "error_rate": 0.025,
            "avg_response_time_ms": 41.5,
            "p50_response_time_ms": 30.0,
            "p95_response_time_ms": 180.0,
            "p99_response_time_ms": 420.0,
            "routes": [],
        }
        self.cache: dict[str, Any] = {
            "hit_rate_percentage": 87.5,
            "hits": 70,
            "misses": 10,
            "cache_errors": 1,
            "connected_to_redis": True,
            "backend": "redis",
        }
        self.cache_ok: tuple[bool, str] = (True, "redis answered PING in 0.2 ms")
        self.limiter: dict[str, Any] = {"enabled": True, "backend": "redis", "breaker_state": "closed", "rejections": 3}
        self.performance_windows: list[int] = []

    def performance(self, *, window_seconds: int) -> dict[str, Any]:
        self.performance_windows.append(window_seconds)
        return {**self.perf, "window_seconds": window_seconds}

    def set_p95(self, value: float | None) -> None:
        self.perf["p95_response_time_ms"] = value


@pytest.fixture(name="fake_sources")
def fake_sources_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSources]:
    fake = FakeSources()
    monkeypatch.setattr(sources, "performance", fake.performance)
    monkeypatch.setattr(sources, "cache_stats", lambda: dict(fake.cache))
    monkeypatch.setattr(sources, "cache_ready", lambda: fake.cache_ok)
    monkeypatch.setattr(sources, "limiter_status", lambda: dict(fake.limiter))
    yield fake


@pytest.fixture
def clean_migrations_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees a process that has not yet found its migrations clean."""
    from monitoring import readiness

    monkeypatch.setattr(readiness, "_migrations_clean", False)
