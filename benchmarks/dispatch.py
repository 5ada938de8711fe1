"""Dispatcher throughput, claim → finalize, with a zero-cost executor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/dispatch.py [--jobs N]

Creates (and drops afterwards) a scratch database `omtx_bench_dispatch` on that
server, queues N jobs in one batch, and drains it with 1 dispatcher (in this
process), then again with 3 dispatcher processes. Target (issue 5): ≥ 1,000
jobs/s on PostgreSQL. Timings are noisy on a shared 2-core machine: compare
numbers from one run.
"""

import argparse
import multiprocessing
import os
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SCRATCH = "omtx_bench_dispatch"
TARGET_JOBS_PER_SECOND = 1000


class ZeroExecutor:
    """Finishes every call at its first poll."""

    name = "local"
    durable = False

    def __init__(self) -> None:
        self.calls: dict[str, object] = {}

    def submit(self, request, *, timeout_seconds):  # type: ignore[no-untyped-def]
        call_id = uuid.uuid4().hex
        self.calls[call_id] = request
        return call_id

    def poll(self, call_id):  # type: ignore[no-untyped-def]
        from batches.engine.types import JobOutcome, PollResult

        request = self.calls.pop(call_id)
        outcomes = tuple(JobOutcome(job.job_id, ok=True, metrics={"qed": 0.5}) for job in request.jobs)  # type: ignore[attr-defined]
        return PollResult("done", outcomes=outcomes)

    def cancel(self, call_id):  # type: ignore[no-untyped-def]
        self.calls.pop(call_id, None)

    def shutdown(self) -> None:
        pass


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omtx_hub.settings")
    import django

    django.setup()


def queue_jobs(n: int) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from batches.models import Batch, Job, Target

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench")
    target, _ = Target.objects.get_or_create(sequence_sha256="0" * 64, defaults={"sequence": "MENFQ", "length": 5})
    batch = Batch.objects.create(
        owner=user, name="bench", model="ligand-profile", model_version="1", target=target, n_total=n, n_queued=n
    )
    Job.objects.bulk_create(
        (Job(batch=batch, owner=user, index=i, name=f"l{i}", input_smiles="C", canonical_smiles="C") for i in range(n)),
        batch_size=5000,
    )


def drain(capacity: int) -> int:
    from batches.engine.dispatcher import Dispatcher
    from batches.selectors import queue_has_work

    dispatcher = Dispatcher(executors={"local": ZeroExecutor()}, max_in_flight=10_000, capacity=capacity)
    passes = 0
    while queue_has_work() or dispatcher.calls:
        dispatcher.run_once()
        passes += 1
    return passes


def worker(url: str, capacity: int) -> None:
    setup_django(url)
    drain(capacity)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--capacity", type=int, default=1000, help="jobs one dispatcher holds per pass")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL server (this benchmark measures PostgreSQL)")
    import psycopg

    admin = psycopg.connect(base, autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
    admin.execute(f"CREATE DATABASE {SCRATCH}")
    url = base.rsplit("/", 1)[0] + f"/{SCRATCH}"
    try:
        setup_django(url)
        from django.db import connection

        rates = []
        for dispatchers in (1, 3):
            queue_jobs(args.jobs)
            connection.close()
            start = time.perf_counter()
            procs = [
                multiprocessing.get_context("spawn").Process(target=worker, args=(url, args.capacity))
                for _ in range(dispatchers)
            ]
            for proc in procs:
                proc.start()
            for proc in procs:
                proc.join()
            seconds = time.perf_counter() - start
            rates.append(args.jobs / seconds)
            print(
                f"{dispatchers} dispatcher(s): {args.jobs} jobs in {seconds:6.2f} s = {args.jobs / seconds:7.0f} jobs/s"
            )
        verdict = "meets" if rates[0] >= TARGET_JOBS_PER_SECOND else "MISSES"
        print(
            f"1 dispatcher {verdict} the target of {TARGET_JOBS_PER_SECOND} jobs/s; 3 vs 1: {rates[1] / rates[0]:.2f} ×"
        )
    finally:
        from django.db import connections

        connections.close_all()
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")


if __name__ == "__main__":
    main()
