"""Histograms merge by addition and give percentiles within the bucket width."""

import random

import pytest

from monitoring.latency import BUCKETS, RATIO, Histogram, bucket_middle_ms, bucket_of

TOLERANCE = RATIO**0.5 - 1  # half a bucket, geometrically


def exact_percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


@pytest.mark.parametrize("p", [50, 95, 99])
def test_percentiles_within_half_a_bucket(p: float) -> None:
    generator = random.Random(8)
    values = [generator.lognormvariate(3, 1.2) for _ in range(5000)]
    histogram = Histogram()
    for value in values:
        histogram.observe(value, error=False)
    estimate = histogram.percentile_ms(p)
    assert estimate is not None
    assert abs(estimate / exact_percentile(values, p) - 1) <= TOLERANCE + 1e-9


def test_merged_parts_equal_the_whole() -> None:
    generator = random.Random(3)
    whole, parts = Histogram(), [Histogram() for _ in range(4)]
    for i in range(2000):
        value, error = generator.expovariate(1 / 40), i % 7 == 0
        whole.observe(value, error=error)
        parts[i % 4].observe(value, error=error)
    merged = Histogram()
    for part in parts:
        merged.add_fields(part.fields())
    assert merged == whole
    assert merged.summary() == whole.summary()


def test_empty_histogram_reports_nothing() -> None:
    assert Histogram().summary() == {
        "requests": 0,
        "errors": 0,
        "avg_ms": None,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
    }


def test_buckets_cover_every_duration() -> None:
    assert bucket_of(0) == 0
    assert bucket_of(1e9) == BUCKETS - 1
    for ms in (0.15, 1, 12.5, 999, 60_000):
        index = bucket_of(ms)
        assert bucket_middle_ms(index) / RATIO**0.5 <= ms < bucket_middle_ms(index) * RATIO**0.5
