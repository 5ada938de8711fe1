"""The dispatcher at GPU pace (issue 7), on PostgreSQL:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/dispatch.py

Creates (and drops afterwards) a scratch database `omtx_bench_dispatch` on that
server and measures, each with a PASS/FAIL row:
1. throughput: N jobs of one batch drained claim → finalize by one dispatcher
   with a zero-cost executor (every call finishes at its first poll), with
   every SQL statement and transaction counted (an executemany counts one
   statement per row: the server runs each); then by 3 dispatcher processes;
2. claim cost: the claim query EXPLAIN ANALYZEd, and the whole claim timed,
   with 1k and with 100k jobs queued: it must walk an index and cost the same;
3. overhead: M jobs of the real `ligand-profile` model on the local executor,
   run by `loop.serve` as `manage.py dispatch` runs it: CPU of the dispatcher
   process and of its PostgreSQL backends against CPU of the worker
   processes doing the model work.
Timings are noisy on a shared 2-core machine: compare numbers from one run.
"""

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scratch import scratch_database, setup_django  # noqa: E402

SCRATCH = "omtx_bench_dispatch"
TARGET_JOBS_PER_SECOND = 1000
TARGET_OVERHEAD = 0.05
# The claim at 100k queued may cost at most this much more than at 1k.
CLAIM_RATIO_LIMIT = 2.0
CLAIM_SIZE = 256
TICKS = os.sysconf("SC_CLK_TCK")


class ZeroExecutor:
    """Finishes every call at its first poll."""

    name = "local"
    durable = False

    def __init__(self) -> None:
        self.calls: dict[str, Any] = {}

    def submit(self, request: Any, *, timeout_seconds: int) -> str:
        call_id = uuid.uuid4().hex
        self.calls[call_id] = request
        return call_id

    def poll(self, call_id: str) -> Any:
        from batches.engine.types import JobOutcome, PollResult

        request = self.calls.pop(call_id)
        outcomes = tuple(JobOutcome(job.job_id, ok=True, metrics={"qed": 0.5}) for job in request.jobs)
        return PollResult("done", outcomes=outcomes)

    def cancel(self, call_id: str) -> None:
        self.calls.pop(call_id, None)

    def shutdown(self) -> None:
        pass


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def queue_jobs(n: int, *, model: str = "ligand-profile", smiles: list[str] | None = None, options: Any = None) -> Any:
    from django.contrib.auth.models import User

    from batches.models import Batch, Job, Target

    user, _ = User.objects.get_or_create(username="bench")
    target, _ = Target.objects.get_or_create(sequence_sha256="0" * 64, defaults={"sequence": "MENFQ", "length": 5})
    batch = Batch.objects.create(
        owner=user,
        name="bench",
        model=model,
        model_version="1",
        target=target,
        n_total=n,
        n_queued=n,
        options=options or {},
    )
    smiles = smiles or ["C"]
    Job.objects.bulk_create(
        (
            Job(
                batch=batch,
                owner=user,
                index=i,
                name=f"l{i}",
                input_smiles=smiles[i % len(smiles)],
                canonical_smiles=smiles[i % len(smiles)],
            )
            for i in range(n)
        ),
        batch_size=5000,
    )
    return batch


def clear_jobs() -> None:
    from batches.models import Batch

    Batch.objects.all().delete()


# -- counting statements ---------------------------------------------------


class Counts:
    """Statements the server runs and transactions it commits, seen from Django."""

    def __init__(self) -> None:
        self.statements = 0
        self.transactions = 0
        # A statement ran in the current atomic block: its commit is a transaction
        # (an atomic block that ran none commits nothing on the server).
        self.open = False

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if many:
            params = list(params)
            self.statements += len(params)
        else:
            self.statements += 1
        if context["connection"].in_atomic_block:
            self.open = True
        else:
            self.transactions += 1  # autocommit: the statement is its own transaction
        return execute(sql, params, many, context)


@contextmanager
def counting(counts: Counts) -> Iterator[None]:
    from django.db import connection

    commit = connection.commit

    def counted_commit() -> None:
        counts.transactions += counts.open
        counts.open = False
        commit()

    connection.commit = counted_commit  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(counts):
            yield
    finally:
        del connection.commit


# -- 1. throughput -----------------------------------------------------------


def drain(capacity: int) -> int:
    from batches.engine.dispatcher import Dispatcher
    from batches.selectors import queue_has_work

    dispatcher = Dispatcher(executors={"local": ZeroExecutor()}, max_in_flight=10_000, capacity=capacity)
    passes = 0
    while queue_has_work() or dispatcher.calls or dispatcher.backlog:
        dispatcher.run_once()
        passes += 1
    return passes


def worker(url: str, capacity: int, ready: Any, go: Any) -> None:
    setup_django(url)
    from django.db import connection

    connection.ensure_connection()
    ready.release()
    go.wait()
    drain(capacity)


def throughput(url: str, jobs: int, capacity: int) -> bool:
    from django.db import connection

    from batches.models import Batch

    queue_jobs(jobs)
    counts = Counts()
    start = time.perf_counter()
    with counting(counts):
        passes = drain(capacity)
    seconds = time.perf_counter() - start
    batch = Batch.objects.get()
    assert batch.n_succeeded == jobs, f"drained {batch.n_succeeded} of {jobs}"
    rate = jobs / seconds
    print(f"  1 dispatcher: {jobs} jobs in {seconds:.2f} s, {passes} passes")
    print(
        f"  statements per job: {counts.statements / jobs:.3f}  transactions per job: {counts.transactions / jobs:.4f}"
        f"  ({counts.statements} statements, {counts.transactions} transactions)"
    )
    row(f"jobs/s claim→finalize, 1 dispatcher (target ≥ {TARGET_JOBS_PER_SECOND})", f"{rate:.0f}", rate >= 1000)

    clear_jobs()
    queue_jobs(jobs)
    connection.close()
    context = multiprocessing.get_context("spawn")
    ready, go = context.Semaphore(0), context.Event()
    procs = [context.Process(target=worker, args=(url, capacity, ready, go)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    start = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    seconds = time.perf_counter() - start
    batch = Batch.objects.get()
    assert batch.n_succeeded == jobs and all(p.exitcode == 0 for p in procs)
    three = jobs / seconds
    print(f"  3 dispatchers: {jobs} jobs in {seconds:.2f} s = {three:.0f} jobs/s ({three / rate:.2f} × 1)")
    clear_jobs()
    return rate >= TARGET_JOBS_PER_SECOND


# -- 2. claim cost -----------------------------------------------------------


def claim_cost(queued: int) -> tuple[float, float, str]:
    """(EXPLAIN ANALYZE execution ms of the claim query, median wall ms of a
    whole claim of CLAIM_SIZE jobs, the plan), with `queued` jobs queued and
    CLAIM_SIZE already in flight."""
    from django.db import connection
    from django.utils import timezone

    from batches.services.claims import claim_jobs, claimable_jobs

    batch = queue_jobs(queued)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE batches_job")
    claim_jobs(plan=[(batch.pk, CLAIM_SIZE)], token="warm", lease_seconds=60)
    sql, params = claimable_jobs(batch_id=batch.pk, now=timezone.now())[:CLAIM_SIZE].query.sql_with_params()
    explained = []
    with connection.cursor() as cursor:
        for _ in range(5):
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            explained.append(cursor.fetchone()[0][0])
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    walls = []
    for i in range(5):
        start = time.perf_counter()
        claim_jobs(plan=[(batch.pk, CLAIM_SIZE)], token=f"t{i}", lease_seconds=60)
        walls.append((time.perf_counter() - start) * 1000)
    clear_jobs()
    return statistics.median(e["Execution Time"] for e in explained), statistics.median(walls), plan


def claim_scaling() -> bool:
    small_ms, small_wall, _ = claim_cost(1_000)
    large_ms, large_wall, plan = claim_cost(100_000)
    indexed = "job_batch_queue" in plan and "Seq Scan on batches_job" not in plan
    print("  claim query plan at 100k queued:\n    " + plan.replace("\n", "\n    "))
    print(f"  whole claim of {CLAIM_SIZE} jobs (lock, select, update, counters, read back): ")
    print(f"    {small_wall:.1f} ms at 1k queued, {large_wall:.1f} ms at 100k queued")
    ratio = large_ms / small_ms
    ok = indexed and ratio <= CLAIM_RATIO_LIMIT
    row(
        f"claim query ms at 1k / 100k queued (ratio ≤ {CLAIM_RATIO_LIMIT}, uses job_batch_queue)",
        f"{small_ms:.2f} / {large_ms:.2f} (×{ratio:.2f}, index: {'yes' if indexed else 'NO'})",
        ok,
    )
    return ok


# -- 3. overhead with ligand-profile ----------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


class BackendSampler(threading.Thread):
    """Last seen CPU seconds of every client backend connected to the scratch
    database but the sampler's own, sampled until stopped (a backend that
    disconnects keeps its last sample)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.cpu: dict[int, float] = {}
        self.stopped = threading.Event()
        self.own_cpu = 0.0

    def sample(self) -> None:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
        for (pid,) in rows:
            with suppress(FileNotFoundError, ProcessLookupError):
                self.cpu[pid] = cpu_seconds(pid)

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self.sample()
        self.sample()
        self.own_cpu = time.thread_time()

    def stop(self) -> None:
        self.stopped.set()
        self.join()
        self.conn.close()


def overhead(url: str, jobs: int, workers: int) -> bool:
    from django.db import connection

    from batches.engine.dispatcher import Dispatcher
    from batches.engine.local import LocalExecutor
    from batches.engine.loop import serve
    from batches.models import Batch

    demo = (REPO / "batches" / "demo" / "cdk2_zinc.smi").read_text().split("\n")
    smiles = [line.split()[1] for line in demo if line.strip()]
    queue_jobs(jobs, smiles=smiles)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (main_backend,) = cursor.fetchone()
    backend_start = cpu_seconds(main_backend)
    sampler = BackendSampler(url)
    sampler.sample()
    before = {pid: cpu for pid, cpu in sampler.cpu.items()}
    sampler.start()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_cpu, start = time.process_time(), time.perf_counter()
    dispatcher = Dispatcher(executors={"local": LocalExecutor(workers)})
    passes = 0
    run_once = dispatcher.run_once

    def counted_pass() -> int:
        nonlocal passes
        passes += 1
        return run_once()

    dispatcher.run_once = counted_pass  # type: ignore[method-assign]
    counts = Counts()
    # As `manage.py dispatch --until-idle` runs it: heartbeat thread, idle interval 0.5 s.
    with counting(counts):
        serve(dispatcher, stop=threading.Event(), interval=0.5, until_idle=True)
    seconds = time.perf_counter() - start
    sampler.stop()
    main_cpu = time.process_time() - start_cpu - sampler.own_cpu
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    backends_cpu = sum(cpu - before.get(pid, 0.0) for pid, cpu in sampler.cpu.items())
    assert before.get(main_backend) == backend_start
    batch = Batch.objects.get()
    done = batch.n_succeeded + batch.n_failed
    assert done == jobs, f"finished {done} of {jobs}"
    share = (main_cpu + backends_cpu) / worker_cpu
    print(
        f"  {jobs} ligand-profile jobs, {workers} local workers: {seconds:.1f} s wall, {jobs / seconds:.0f} jobs/s,"
        f" {batch.n_failed} failed; {passes} passes, {counts.statements / jobs:.2f} statements"
        f" and {counts.transactions / jobs:.2f} transactions per job"
    )
    print(
        f"  CPU s: dispatcher process {main_cpu:.2f} + its PostgreSQL backends ({len(sampler.cpu)})"
        f" {backends_cpu:.2f} vs model work in workers {worker_cpu:.2f}"
        f" ({1000 * worker_cpu / jobs:.1f} ms/job, worker start-up included)"
    )
    row(
        f"dispatcher overhead with ligand-profile (target ≤ {TARGET_OVERHEAD:.0%})",
        f"{share:.1%}",
        share <= TARGET_OVERHEAD,
    )
    clear_jobs()
    return share <= TARGET_OVERHEAD


ROWS: list[tuple[str, str, bool]] = []


def row(what: str, value: str, ok: bool) -> None:
    ROWS.append((what, value, ok))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000, help="zero-cost jobs for the throughput run")
    parser.add_argument("--capacity", type=int, default=1000, help="jobs one dispatcher holds per pass")
    parser.add_argument("--profile-jobs", type=int, default=2000, help="ligand-profile jobs for the overhead run")
    parser.add_argument("--workers", type=int, default=2, help="local workers for the overhead run")
    parser.add_argument("--only", choices=("throughput", "claim", "overhead"))
    args = parser.parse_args()
    with scratch_database(SCRATCH) as url:
        try:
            setup_django(url)
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            if args.only in (None, "throughput"):
                print("throughput (zero-cost executor)")
                throughput(url, args.jobs, args.capacity)
            if args.only in (None, "claim"):
                print("claim cost")
                claim_scaling()
            if args.only in (None, "overhead"):
                print("overhead (ligand-profile, local executor)")
                overhead(url, args.profile_jobs, args.workers)
            print()
            for what, value, ok in ROWS:
                print(f"{verdict(ok)}  {what}: {value}")
        finally:
            from django.db import connections

            connections.close_all()
    sys.exit(0 if all(ok for _, _, ok in ROWS) else 1)


if __name__ == "__main__":
    main()
