"""Websocket benchmark: ≥ 500 clients watch one batch while jobs complete; how soon does each
committed change reach every client? (issue 10; target p95 ≤ 500 ms.)

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/11 \\
        .venv/bin/python benchmarks/websockets.py --clients 500 --seconds 30

Creates (and drops afterwards) a scratch database `omtx_bench_ws`, seeds it through the hub's
services (a user and one API token that every client shares, one batch of every ligand in the
shared ChEMBL, ZINC and CDK2 sets, all its jobs claimed), starts daphne as production runs it
(`daphne -b 127.0.0.1 -p <port> omtx_hub.asgi:application`, Redis channel layer) and opens the
clients in this process (the `websockets` library, token in the Authorization header). A
writer process then completes the jobs through the engine's ingest service, a few per
transaction at a steady rate, and stamps each commit (its batch version and wall-clock time,
taken after the commit returned); its broadcaster sends the deltas, as a dispatcher's does.

Latency of one update to one client: from the commit's stamp to the client's receipt of the
first delta at or past that version (the deltas are coalesced, so one delta covers several
commits). Delivered: the share of (commit, client) pairs reached within 5 s. Clients, daphne
and the writer share the machine's two cores: the numbers include that contention.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This file is named like the `websockets` library: its directory must not shadow it.
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import bisect  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402
from uuid import UUID  # noqa: E402

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from benchmarks.scratch import scratch_database, setup_django  # noqa: E402

SCRATCH = os.environ.get("OMTX_BENCH_DATABASE", "omtx_bench_ws")
SHARED = Path(os.environ.get("OMTX_SHARED_DATA", REPO.parent / "shared" / "data"))
TARGET_P95_MS = 500.0
DELIVERY_WINDOW = 5.0
TOKEN_NAME = "websocket benchmark"


# --- seeding and the writer (Django) --------------------------------------------------------


def ligands() -> list[dict[str, str]]:
    found: dict[str, str] = {}
    # (file, column of the SMILES, separator)
    for path, column, sep in (("chembl2321810.smi", 0, None), ("cdk2_zinc.smi", 1, None), ("zinc100.tsv", 0, "\t")):
        for number, line in enumerate((SHARED / "ligands" / path).read_text().splitlines()[1 if sep else 0 :]):
            parts = line.split(sep)
            if len(parts) > column:
                found.setdefault(parts[column], f"{path}:{number}")
    return [{"name": name, "smiles": smiles} for smiles, name in found.items()]


def seed() -> tuple[str, str]:
    """The batch id and the shared raw token."""
    from django.contrib.auth.models import User

    from accounts.services import token_create
    from batches.services.claims import claim_jobs
    from batches.services.submission import Submission, batch_create
    from batches.validation.ligands import raw_from_json

    user = User.objects.create_user("ws-bench", password="ws-bench-pw-123")
    _, raw = token_create(user=user, name=TOKEN_NAME)
    target = json.loads((SHARED / "targets" / "targets.json").read_text())
    sequence = target["CDK2_HUMAN"]["sequence"]
    submission = Submission(
        name="websocket benchmark",
        model="ligand-profile",
        protein_sequence=sequence,
        ligands=raw_from_json(ligands()),
    )
    batch, _ = batch_create(owner=user, submission=submission)
    claim_jobs(plan=[(batch.pk, batch.n_total)], token="bench", lease_seconds=3600)
    return str(batch.pk), raw


def writer(batch_id: str, rate: float, per_commit: int, seconds: float) -> None:
    """Complete held jobs, `per_commit` per transaction, `rate` transactions a second; print
    each commit's version and time as a JSON line."""
    from batches.engine.types import JobOutcome
    from batches.live.broadcaster import broadcaster
    from batches.models import Batch, Job
    from batches.services.ingest import Delivery, deliveries_apply

    held = list(
        Job.objects.filter(batch_id=batch_id, claim_token="bench").order_by("index").values_list("pk", flat=True)
    )
    commits = min(len(held) // per_commit, int(rate * seconds))
    due = time.monotonic()
    for number in range(commits):
        chunk = held[number * per_commit : (number + 1) * per_commit]
        outcomes = [JobOutcome(job_id=str(pk), ok=True, metrics={"qed": 0.5, "mol_weight": 300.0}) for pk in chunk]
        deliveries_apply(deliveries=[Delivery(UUID(batch_id), "bench", outcome) for outcome in outcomes])
        stamp = time.time()
        version = Batch.objects.filter(pk=batch_id).values_list("version", flat=True).get()
        print(json.dumps([version, stamp]), flush=True)
        due += 1 / rate
        time.sleep(max(0.0, due - time.monotonic()))
    broadcaster.drain(30)
    print(json.dumps({"broadcaster": dict(broadcaster.stats)}), flush=True)


# --- the clients (no Django) ----------------------------------------------------------------


@dataclass
class Client:
    versions: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    gaps: int = 0
    snapshot_version: int = 0


async def open_client(url: str, token: str) -> tuple[ClientConnection, Client]:
    ws = await connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        subprotocols=["omtx.v1"],  # type: ignore[list-item]
        compression=None,
        proxy=None,
        open_timeout=60,
        max_size=None,
    )
    client = Client()
    snapshot = json.loads(await ws.recv())
    assert snapshot["type"] == "snapshot", snapshot["type"]
    client.snapshot_version = snapshot["version"]
    return ws, client


async def listen(ws: ClientConnection, client: Client) -> None:
    version = client.snapshot_version
    async for text in ws:
        now = time.time()
        message = json.loads(text)
        if message["type"] != "delta" or message["version"] <= version:
            continue
        client.gaps += message["since"] > version
        version = message["version"]
        client.versions.append(version)
        client.times.append(now)


async def watch(url: str, token: str, count: int, drive: Any) -> tuple[list[Client], float, Any]:
    started = time.monotonic()
    opened: list[tuple[ClientConnection, Client]] = []
    for start in range(0, count, 50):  # 50 handshakes at a time
        opened += await asyncio.gather(*(open_client(url, token) for _ in range(start, min(count, start + 50))))
    connect_seconds = time.monotonic() - started
    listeners = [asyncio.create_task(listen(ws, client)) for ws, client in opened]
    result = await drive()
    await asyncio.sleep(DELIVERY_WINDOW)
    await asyncio.gather(*(ws.close() for ws, _ in opened), return_exceptions=True)
    await asyncio.gather(*listeners, return_exceptions=True)
    return [client for _, client in opened], connect_seconds, result


def latencies(commits: list[tuple[int, float]], clients: list[Client]) -> tuple[list[float], int]:
    found: list[float] = []
    missed = 0
    for client in clients:
        for version, stamp in commits:
            at = bisect.bisect_left(client.versions, version)
            delay = client.times[at] - stamp if at < len(client.versions) else None
            if delay is None or delay > DELIVERY_WINDOW:
                missed += 1
            else:
                found.append(max(delay, 0.0))
    return found, missed


def breakdown(commits: list[tuple[int, float]], clients: list[Client]) -> tuple[list[float], list[float]]:
    """Per delta: from its last commit to the first client's receipt (the sender's read,
    Redis, daphne's relay), and from the first client's receipt to the last's (the fan-out)."""
    stamps = dict(commits)
    receipts: dict[int, list[float]] = {}
    for client in clients:
        for version, at in zip(client.versions, client.times, strict=True):
            receipts.setdefault(version, []).append(at)
    first = [min(times) - stamps[version] for version, times in receipts.items() if version in stamps]
    spread = [max(times) - min(times) for times in receipts.values()]
    return first, spread


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"daphne did not listen on {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long jobs complete")
    parser.add_argument("--rate", type=float, default=20.0, help="commits a second")
    parser.add_argument("--per-commit", type=int, default=2, help="jobs completed per commit")
    parser.add_argument("--coalesce-ms", type=int, help="the writer's OMTX_LIVE_COALESCE_MS (default: the setting's)")
    parser.add_argument("--writer", nargs=1, metavar="BATCH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        setup_django(os.environ["DATABASE_URL"])
        writer(args.writer[0], args.rate, args.per_commit, args.seconds)
        return
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        sys.exit("set REDIS_URL: the benchmark measures the Redis channel layer")
    with scratch_database(SCRATCH) as url:
        # One batch of ~1,160 ligands, validated inline.
        setup_django(url, OMTX_INLINE_VALIDATION_LIGANDS="5000")
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        batch_id, token = seed()
        connections.close_all()
        run(url, redis_url, batch_id, token, args)


def run(db_url: str, redis_url: str, batch_id: str, token: str, args: argparse.Namespace) -> None:
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url, "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    port = free_port()
    daphne = Path(sys.executable).parent / "daphne"
    command = [str(daphne), "-b", "127.0.0.1", "-p", str(port), "omtx_hub.asgi:application"]
    log = tempfile.NamedTemporaryFile(prefix="omtx-bench-daphne-", suffix=".log", delete=False)  # noqa: SIM115
    print(f"daphne's log (its access log included): {log.name}")
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        url = f"ws://127.0.0.1:{port}/ws/v3/batches/{batch_id}/"
        writer_command = [sys.executable, __file__, "--writer", batch_id, "--rate", str(args.rate)]
        writer_command += ["--per-commit", str(args.per_commit), "--seconds", str(args.seconds)]

        writer_env = dict(env)
        if args.coalesce_ms is not None:
            writer_env["OMTX_LIVE_COALESCE_MS"] = str(args.coalesce_ms)

        async def drive() -> tuple[list[tuple[int, float]], dict[str, Any], float]:
            cpu_before = cpu_seconds(server.pid)
            mine_before = time.process_time()
            process = await asyncio.create_subprocess_exec(*writer_command, env=writer_env, stdout=subprocess.PIPE)
            commits: list[tuple[int, float]] = []
            stats: dict[str, Any] = {}
            assert process.stdout is not None
            async for line in process.stdout:
                value = json.loads(line)
                if isinstance(value, list):
                    commits.append((int(value[0]), float(value[1])))
                else:
                    stats = value["broadcaster"]
            await process.wait()
            stats["clients_cpu_s"] = round(time.process_time() - mine_before, 1)
            return commits, stats, cpu_seconds(server.pid) - cpu_before

        clients, connect_seconds, (commits, stats, server_cpu) = asyncio.run(watch(url, token, args.clients, drive))
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(args, clients, connect_seconds, commits, stats, server_cpu)


def report(
    args: argparse.Namespace,
    clients: list[Client],
    connect_seconds: float,
    commits: list[tuple[int, float]],
    stats: dict[str, Any],
    server_cpu: float,
) -> None:
    found, missed = latencies(commits, clients)
    pairs = len(found) + missed
    p50, p95, p99 = (1000 * percentile(found, q) for q in (0.50, 0.95, 0.99))
    received = sum(len(client.versions) for client in clients)
    span = commits[-1][1] - commits[0][1] if len(commits) > 1 else 0.0
    print(f"clients: {len(clients)} connected in {connect_seconds:.1f} s (snapshot each)")
    print(
        f"coalescing: {args.coalesce_ms if args.coalesce_ms is not None else 'the default'} ms; "
        f"machine load average at the end: {os.getloadavg()[0]:.1f} (1 min, this run included)"
    )
    print(f"commits: {len(commits)} over {span:.1f} s, {args.per_commit} job completions each")
    print(f"broadcaster: {stats}")
    print(
        f"deltas received: {received} ({received / max(len(clients), 1):.1f} a client; gaps seen: "
        f"{sum(client.gaps for client in clients)})"
    )
    print(f"daphne CPU while driven: {server_cpu:.1f} s")
    print(f"delivered within {DELIVERY_WINDOW:.0f} s: {len(found)}/{pairs} = {100 * len(found) / max(pairs, 1):.2f} %")
    print(
        f"latency commit → client: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, "
        f"mean {1000 * statistics.fmean(found) if found else float('nan'):.0f} ms"
    )
    first, spread = breakdown(commits, clients)
    print(
        f"per delta, last commit → first client: p50 {1000 * percentile(first, 0.5):.0f} ms, "
        f"p95 {1000 * percentile(first, 0.95):.0f} ms; first → last client: "
        f"p50 {1000 * percentile(spread, 0.5):.0f} ms, p95 {1000 * percentile(spread, 0.95):.0f} ms"
    )
    ok = p95 <= TARGET_P95_MS and missed == 0
    print(f"{'PASS' if ok else 'FAIL'}  p95 ≤ {TARGET_P95_MS:.0f} ms and every update delivered")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
