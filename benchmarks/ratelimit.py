"""The limiter's cost on the status endpoint: the same requests with RATE_LIMIT_ENABLED off
and on, alternating in one run, through Django's WSGI handler (no network, so the
difference is the limiter's own). Counts every Redis round trip (the cache's and the
limiter's) per request in both modes: the limiter's share is the difference.

    RATE_LIMIT_REDIS_URL=redis://127.0.0.1:6379/4 python benchmarks/ratelimit.py [--requests 2000] [--rounds 5]

Without RATE_LIMIT_REDIS_URL it measures the in-process limiter. A Redis PING from the same
process, timed in the same run, says what one round trip costs on the machine at the time.

Results in docs/rate-limiting.md."""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omtx_hub.settings")
os.environ.setdefault("OMTX_VAR_DIR", tempfile.mkdtemp(prefix="omtx-bench-"))
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.services import token_create  # noqa: E402
from batches.services.submission import Submission, batch_create  # noqa: E402
from batches.validation.ligands import raw_from_json  # noqa: E402
from ratelimit.backend import get_backend, reset_backend  # noqa: E402

CDK2_FASTA = (REPO / "batches" / "demo" / "cdk2_human.fasta").read_text()


class RoundTrips:
    """Counts redis-py commands and pipelines sent, whoever sends them."""

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> None:
        counter = self
        command = redis.Redis.execute_command
        pipeline = redis.client.Pipeline.execute

        def counted_command(client: Any, *args: Any, **options: Any) -> Any:
            counter.count += 1
            return command(client, *args, **options)

        def counted_pipeline(pipe: Any, *args: Any, **options: Any) -> Any:
            counter.count += 1
            return pipeline(pipe, *args, **options)

        redis.Redis.execute_command = counted_command  # type: ignore[method-assign]
        redis.client.Pipeline.execute = counted_pipeline  # type: ignore[method-assign]


def setup() -> tuple[Client, str]:
    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench-ratelimit")
    submission = Submission(
        name="bench", model="ligand-profile", protein_sequence=CDK2_FASTA, ligands=raw_from_json(["CCO", "CCN"])
    )
    settings.RATE_LIMIT_QUOTAS_ENABLED = False
    batch, _ = batch_create(owner=user, submission=submission)
    _, raw = token_create(user=user, name="bench")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}"), f"/api/v3/batches/{batch.pk}/status"


def run(client: Client, url: str, n: int, trips: RoundTrips) -> tuple[float, float]:
    """(µs per request, Redis round trips per request)."""
    before = trips.count
    start = time.perf_counter()
    for _ in range(n):
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    seconds = time.perf_counter() - start
    return seconds / n * 1e6, (trips.count - before) / n


def ping_round_trip(n: int = 2000) -> float:
    client = get_backend().client
    if client is None:
        return 0.0
    start = time.perf_counter()
    for _ in range(n):
        client.ping()
    return (time.perf_counter() - start) / n * 1e6


def mode(enabled: bool) -> Callable[[], None]:
    def apply() -> None:
        settings.RATE_LIMIT_ENABLED = enabled

    return apply


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # Never refused: the cost of the check is measured, not of 429s.
    settings.RATE_LIMIT_SCALE = 1e6
    settings.RATE_LIMIT_KEY_PREFIX = f"omtx:rl:bench:{os.getpid()}"
    reset_backend()
    client, url = setup()
    trips = RoundTrips()
    trips.install()
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for enabled in (False, True):  # warm both paths (token cache, script load, tier memo)
        mode(enabled)()
        run(client, url, 50, trips)
    for _ in range(args.rounds):
        for enabled in (False, True):
            mode(enabled)()
            results[enabled].append(run(client, url, args.requests, trips))
    off = statistics.median(us for us, _ in results[False])
    on = statistics.median(us for us, _ in results[True])
    trips_off = statistics.median(t for _, t in results[False])
    trips_on = statistics.median(t for _, t in results[True])
    print(f"status endpoint, {args.rounds} rounds x {args.requests} requests each way, backend {get_backend().name}")
    print(f"limiter off  {off:8.0f} µs/request   {trips_off:.3f} Redis round trips/request")
    print(f"limiter on   {on:8.0f} µs/request   {trips_on:.3f} Redis round trips/request")
    added = trips_on - trips_off
    print(f"one Redis PING {ping_round_trip():8.0f} µs (same process, same run)")
    print(f"limiter adds {on - off:+8.0f} µs/request ({on / off - 1:+.1%})   {added:+.3f} round trips/request")
    # One bucket call per request; besides, each limiter-on round starts after the off
    # round's silence, so its first request re-reads the blocked set once (docs/rate-limiting.md).
    if added > 1.0 + 1.0 / args.requests:
        sys.exit("the limiter made more than one Redis round trip per request")


if __name__ == "__main__":
    main()
