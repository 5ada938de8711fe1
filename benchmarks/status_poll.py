"""HTTP benchmark: the status poll (and the batch list and detail) against a bare Django
JSON view, under the production server, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/status_poll.py

Creates (and drops afterwards) a scratch database `omtx_bench_http` on that server, seeds it
through the hub's own services (a user and API token, a 10,000-job batch, other users' active
batches so the status carries a queue position and a hub-rate ETA), then starts gunicorn with
the `web:` line of deploy/Procfile (same config module, same worker options) in production
mode. The only difference from production is the settings module, benchmarks/http_settings.py,
whose URLconf adds the floors: `/bench/bare` (a Django JSON view), `/bench/db` (the same after
one single-row query, and so the connection's health check) and `/bench/auth` (a DRF view
behind the API's token authentication). `--layout ARGS`, repeated, starts one server per
layout (ARGS appended to the Procfile's command) and measures them in the same rounds.
`--cache-compare` (needs REDIS_URL) starts two servers of the Procfile's layout instead, one
with the batch reads through the cache (OMTX_CACHE_READS=1) and one without, the same way.

A load generator in this process keeps 32 connections busy (keep-alive when the server allows
it, reconnecting when it answers `Connection: close`) and runs the endpoints in rounds,
interleaved, so every ratio compares numbers measured seconds apart. It shares the machine's
cores with the server: the CPU it used is printed beside each line, and the server's CPU per
request (gunicorn's workers and their PostgreSQL backends, from /proc), which neighbours on a
shared machine disturb far less than req/s. Targets (issue 7): status ≥ 0.5 × bare req/s,
status p99 ≤ 50 ms at 32 connections.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This file is named like the standard library's `http`: its directory must not shadow it.
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import timedelta  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402

# Another name lets two runs share a PostgreSQL server.
SCRATCH = os.environ.get("OMTX_BENCH_DATABASE", "omtx_bench_http")
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
SHARED = Path(os.environ.get("OMTX_SHARED_DATA", REPO.parent / "shared" / "data"))


# --- load generator -------------------------------------------------------------------------


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # this process's CPU seconds while measuring
    answered: int = 0  # requests answered, the warm-up's too
    server_cpu: float = 0.0  # the workers' and their PostgreSQL backends' CPU seconds, warm-up too

    def add(self, other: "Sample") -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.seconds += other.seconds
        self.cpu += other.cpu
        self.answered += other.answered
        self.server_cpu += other.server_cpu

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def server_cpu_per_request(self) -> float:
        return self.server_cpu / self.answered if self.answered else float("nan")

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else float("nan")


async def _one_connection(port: int, request: bytes, until: float, sample: Sample, record_from: float) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < until:
        start = time.perf_counter()
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert reader is not None
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").lower().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        await reader.readexactly(int(headers.get("content-length", "0")))
        end = time.perf_counter()
        sample.answered += 1
        if end >= record_from:
            sample.latencies.append(end - start)
            sample.errors += not lines[0].startswith("http/1.1 200")
        if headers.get("connection") == "close":
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def load(path: str, token: str, *, connections: int, seconds: float, warmup: float, server: "Server") -> Sample:
    """`connections` clients, each sending the next request as soon as the last is answered."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    sample = Sample()

    async def run() -> None:
        now = time.perf_counter()
        await asyncio.gather(
            *(
                _one_connection(server.port, request, now + warmup + seconds, sample, now + warmup)
                for _ in range(connections)
            )
        )

    cpu, server_cpu = time.process_time(), server.cpu()
    asyncio.run(run())
    sample.seconds = seconds
    sample.cpu = time.process_time() - cpu
    sample.server_cpu = server.cpu() - server_cpu
    return sample


# --- the server -----------------------------------------------------------------------------


@dataclass
class Server:
    process: "subprocess.Popen[bytes]"
    database: "psycopg.Connection[Any]"
    port: int

    def cpu(self) -> float:
        """CPU seconds used so far by gunicorn's workers and their PostgreSQL backends: what a
        request costs the machine, whatever else shares it (req/s here depend on neighbours)."""
        pid = self.process.pid
        workers = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        rows = self.database.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [SCRATCH])
        return sum(_cpu_seconds(int(p)) for p in [*workers, *(r[0] for r in rows)])


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def procfile_web(port: int, extra: str) -> list[str]:
    """deploy/Procfile's `web:` command, bound to `port`, with `extra` arguments appended."""
    for line in (REPO / "deploy" / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            command = line.removeprefix("web:").replace("${PORT:-8000}", str(port))
            return [str(Path(sys.executable).parent / "gunicorn"), *shlex.split(command)[1:], *shlex.split(extra)]
    raise SystemExit("deploy/Procfile has no web: line")


def start_server(url: str, port: int, extra: str, var_dir: str, cache_reads: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.http_settings",
        "ENVIRONMENT": "production",
        # Served over plain HTTP on localhost, with no TLS proxy in front (docs/security.md).
        "SECURE_SSL_REDIRECT": "false",
        # One client polls (or submits) far past a scientist's limits: the limiter stays on, its
        # limits ×1000, and quotas off, so the endpoint is measured, not a wall of 429s.
        "RATE_LIMIT_SCALE": "1000",
        "RATE_LIMIT_QUOTAS_ENABLED": "false",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": url,
        "OMTX_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
        "OMTX_CACHE_READS": cache_reads,
    }
    command = procfile_web(port, extra)
    print("server:", shlex.join(command[1:]))
    server = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    # gunicorn's master listens before its workers have imported the hub: wait for an answer.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/bare", timeout=5) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not answer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- data -----------------------------------------------------------------------------------


def seed(jobs: int) -> tuple[str, str]:
    """A user with an API token and a batch of `jobs` queued jobs behind other users' active
    batches (some running), through the hub's services. Returns (raw token, batch id)."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import override_settings
    from django.utils import timezone

    from accounts.services import token_create
    from batches.models import Batch
    from batches.services.submission import Submission, batch_create
    from batches.states import BatchStatus
    from batches.validation.files import read_ligand_file

    call_command("migrate", verbosity=0)
    fasta = (REPO / "batches" / "demo" / "cdk2_human.fasta").read_text()
    ligands = list(read_ligand_file((SHARED / "ligands" / "chembl2321810.smi").read_bytes(), "chembl.smi"))
    few = ligands[:20]
    owner = User.objects.create_user("bench")
    _, raw = token_create(user=owner, name="bench")
    others = [User.objects.create_user(f"other{i}") for i in range(4)]
    for i in range(40):
        user = others[i % 4] if i % 5 else owner
        submission = Submission(name=f"small {i}", model="ligand-profile", protein_sequence=fasta, ligands=few)
        batch, _ = batch_create(owner=user, submission=submission)
        if i % 3 == 0:  # running, with a rate the hub ETA reads
            started = timezone.now() - timedelta(minutes=5)
            Batch.objects.filter(pk=batch.pk).update(
                status=BatchStatus.RUNNING, started_at=started, n_queued=10, n_succeeded=10
            )
    many = (ligands * (jobs // len(ligands) + 1))[:jobs]
    submission = Submission(
        name="bench 10k", model="ligand-profile", protein_sequence=fasta, ligands=many, allow_duplicates=True
    )
    # Validated inline, whatever its size: the poll of a queued batch (progress, queue position
    # and hub-rate ETA) is what clients repeat; a `validating` one has no queue to compute yet.
    with override_settings(OMTX_INLINE_VALIDATION_LIGANDS=jobs):
        batch, _ = batch_create(owner=owner, submission=submission)
    assert batch.status == BatchStatus.QUEUED, batch.status
    print(f"seeded: {batch.n_total} jobs in the polled batch, {Batch.objects.count()} batches")
    return raw, str(batch.pk)


# --- the run --------------------------------------------------------------------------------


def report(results: dict[str, Sample]) -> tuple[bool, bool]:
    """Prints the table and the verdicts; returns (targets met, every answer a 200)."""
    bare = results["bare"].rate
    columns = ("req/s", "× bare", "p50 ms", "p95 ms", "p99 ms", "errors", "µs CPU", "× bare", "client")
    print(f"{'endpoint':<10}", *(f"{c:>7}" for c in columns))
    print(f"{'':<10}", " " * 47, "server CPU per request, and bare's ÷ it; this process's CPU")
    for name, s in results.items():
        print(
            f"{name:<10} {s.rate:7.0f} {s.rate / bare:7.2f} {s.percentile(50):7.1f} {s.percentile(95):7.1f} "
            f"{s.percentile(99):7.1f} {s.errors:7d} {s.server_cpu_per_request * 1e6:7.0f} "
            f"{results['bare'].server_cpu_per_request / s.server_cpu_per_request:7.2f} {s.cpu / s.seconds:7.0%}"
        )
    status = results.get("status")
    targets = [
        (f"status ≥ {TARGET_RATIO} × bare req/s", status is not None and status.rate / bare >= TARGET_RATIO),
        (f"status p99 ≤ {TARGET_P99_MS:.0f} ms", status is not None and status.percentile(99) <= TARGET_P99_MS),
    ]
    answered = not any(s.errors for s in results.values())
    for label, ok in [*targets, ("every answer a 200", answered)]:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return all(ok for _, ok in targets), answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=2.0, help="measured per endpoint per round")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured, before each measurement")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument(
        "--layout",
        action="append",
        help="gunicorn arguments appended to the Procfile's web command; repeat to compare layouts "
        "in one run, interleaved (default: the Procfile as it is)",
    )
    parser.add_argument(
        "--cache-compare",
        action="store_true",
        help="two servers, batch reads through the cache (Redis, REDIS_URL) and not, measured interleaved",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed, not only on errors")
    parser.add_argument("--only", default="", help="comma-separated endpoints besides bare (default: all)")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL server (this benchmark measures PostgreSQL)")
    if args.cache_compare and not os.environ.get("REDIS_URL"):
        sys.exit("--cache-compare measures the Redis cache: set REDIS_URL")
    admin = psycopg.connect(base, autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
    admin.execute(f"CREATE DATABASE {SCRATCH}")
    url = base.rsplit("/", 1)[0] + f"/{SCRATCH}"
    var_dir = tempfile.mkdtemp(prefix="omtx-bench-http-")
    os.environ.update(DATABASE_URL=url, OMTX_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="omtx_hub.settings")
    servers: dict[str, Server] = {}
    try:
        import django

        django.setup()
        token, batch_id = seed(args.jobs)
        from django.db import connections

        connections.close_all()
        cache_reads = os.environ.get("OMTX_CACHE_READS", "1")
        layouts = {layout or "Procfile": (layout, cache_reads) for layout in args.layout or [""]}
        if args.cache_compare:
            layouts = {"cache off": ("", "0"), "cache on": ("", "1")}
        for name, (layout, reads) in layouts.items():
            port = free_port()
            servers[name] = Server(start_server(url, port, layout, var_dir, reads), admin, port)
        paths = {
            "bare": "/bench/bare",
            "db": "/bench/db",
            "auth": "/bench/auth",
            "status": f"/api/v3/batches/{batch_id}/status",
            "results": f"/api/v3/batches/{batch_id}/results?status=all&limit=50",
            "list": "/api/v3/batches",
            "detail": f"/api/v3/batches/{batch_id}",
        }
        if args.only:
            paths = {k: v for k, v in paths.items() if k == "bare" or k in args.only.split(",")}
        for server in servers.values():
            for path in paths.values():  # every worker imports and warms every view
                load(path, token, connections=args.connections, seconds=0, warmup=2, server=server)
        results = {layout: {name: Sample() for name in paths} for layout in servers}
        for round_ in range(args.rounds):
            for layout, server in servers.items():
                for name, path in paths.items():
                    sample = load(
                        path,
                        token,
                        connections=args.connections,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        server=server,
                    )
                    results[layout][name].add(sample)
                    print(
                        f"round {round_ + 1} {layout[:24]:<24} {name:<7} {sample.rate:6.0f} req/s"
                        f"  p99 {sample.percentile(99):6.1f} ms  {sample.server_cpu_per_request * 1e6:5.0f} µs CPU/req"
                    )
        met = answered = True
        for layout, by_endpoint in results.items():
            print(f"\n{layout}: {args.connections} connections, {args.rounds} × {args.seconds:g} s per endpoint")
            layout_met, layout_answered = report(by_endpoint)
            met, answered = met and layout_met, answered and layout_answered
    finally:
        for server in servers.values():
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
    sys.exit(0 if answered and (met or not args.check) else 1)


if __name__ == "__main__":
    main()
