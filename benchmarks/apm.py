"""HTTP benchmark: the status poll with APM on and off, in one run, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/apm.py

benchmarks/status_poll.py's harness (its scratch database, seed, gunicorn from the Procfile's
`web:` line, load generator): two servers that differ only in APM_ENABLED, measured in
interleaved rounds, so the ratios compare numbers taken seconds apart. APM on means the whole
observability chain of a request: the request-id middleware runs in both, RequestTiming (APM
histogram, Prometheus histogram, slow-request check) and the slow-query wrapper only in "on".
With REDIS_URL set the APM flushes to Redis, else to files under the run's VAR_DIR.

Afterwards the APM's own count of status requests, read back merged from both workers, is
compared with the requests the load generator had answered by the APM-on server: it must be
equal (nothing lost or counted twice across processes).
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import psycopg  # noqa: E402

from benchmarks.status_poll import SCRATCH, Sample, Server, free_port, load, seed, start_server  # noqa: E402

TARGET_OVERHEAD = 0.10


def measure(servers: dict[str, Server], path: str, token: str, args: argparse.Namespace) -> dict[str, Sample]:
    results = {name: Sample() for name in servers}
    for round_ in range(args.rounds):
        for name, server in servers.items():
            sample = load(
                path, token, connections=args.connections, seconds=args.seconds, warmup=args.warmup, server=server
            )
            results[name].add(sample)
            print(
                f"round {round_ + 1} APM {name:<3} {sample.rate:6.0f} req/s  p99 {sample.percentile(99):6.1f} ms"
                f"  {sample.server_cpu_per_request * 1e6:5.0f} µs CPU/req"
            )
    return results


def report(results: dict[str, Sample]) -> bool:
    on, off = results["on"], results["off"]
    print(f"\n{'APM':<4} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'µs CPU/req':>10} {'errors':>6}")
    for name, s in results.items():
        print(
            f"{name:<4} {s.rate:7.0f} {s.percentile(50):7.1f} {s.percentile(95):7.1f} {s.percentile(99):7.1f} "
            f"{s.server_cpu_per_request * 1e6:10.0f} {s.errors:6d}"
        )
    throughput = 1 - on.rate / off.rate
    cpu = on.server_cpu_per_request / off.server_cpu_per_request - 1
    print(f"overhead: throughput {throughput:+.1%}, server CPU per request {cpu:+.1%}")
    ok = throughput <= TARGET_OVERHEAD
    print(f"{'PASS' if ok else 'FAIL'}  APM throughput overhead ≤ {TARGET_OVERHEAD:.0%}")
    return ok and not (on.errors or off.errors)


def middleware_cost(path: str, n: int = 20_000) -> dict[str, float]:
    """µs a request costs more through RequestTiming, and through django-prometheus's two
    middlewares (for comparison: the hub does not install them), measured in this process
    around a view that does nothing, so with none of the server's noise."""
    from django.http import HttpRequest, HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve
    from django_prometheus.middleware import PrometheusAfterMiddleware, PrometheusBeforeMiddleware

    from monitoring.middleware import RequestTiming

    def view(request: HttpRequest) -> HttpResponse:
        return response

    response = HttpResponse()
    request = RequestFactory().get(path)
    request.resolver_match = resolve(path)
    chains = {
        "bare": view,
        "RequestTiming": RequestTiming(view),
        "django-prometheus": PrometheusBeforeMiddleware(PrometheusAfterMiddleware(view)),
    }
    best = {}
    for name, call in chains.items():
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(n):
                call(request)
            runs.append((time.perf_counter() - started) / n)
        best[name] = min(runs)
    return {name: (seconds - best["bare"]) * 1e6 for name, seconds in best.items() if name != "bare"}


def apm_count(route: str) -> int:
    """The APM's count of `route` requests, from every process (after their next flush)."""
    from monitoring import apm
    from monitoring.apm_store import RETENTION_SECONDS

    time.sleep(apm.FLUSH_SECONDS * 2)
    report = apm.performance(window_seconds=RETENTION_SECONDS)
    return sum(r["requests"] for r in report["routes"] if r["route"] == route)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL server (this benchmark measures PostgreSQL)")
    admin = psycopg.connect(base, autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
    admin.execute(f"CREATE DATABASE {SCRATCH}")
    url = base.rsplit("/", 1)[0] + f"/{SCRATCH}"
    var_dir = tempfile.mkdtemp(prefix="omtx-bench-apm-")
    os.environ.update(DATABASE_URL=url, OMTX_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="omtx_hub.settings")
    servers: dict[str, Server] = {}
    ok = False
    try:
        import django

        django.setup()
        token, batch_id = seed(args.jobs)
        from django.db import connections

        connections.close_all()
        before = apm_count("v3:batch-status")
        for name in ("on", "off"):
            os.environ["APM_ENABLED"] = "true" if name == "on" else "false"
            port = free_port()
            servers[name] = Server(start_server(url, port, "", var_dir), admin, port)
        path = f"/api/v3/batches/{batch_id}/status"
        warm = {
            name: load(path, token, connections=args.connections, seconds=0, warmup=2, server=s)
            for name, s in servers.items()
        }
        results = measure(servers, path, token, args)
        ok = report(results)
        answered = warm["on"].answered + results["on"].answered
        counted = apm_count("v3:batch-status") - before
        print(f"APM counted {counted} status requests; the APM-on server answered {answered}")
        ok = ok and counted == answered
        for name, cost in middleware_cost(path).items():
            share = cost / (results["off"].server_cpu_per_request * 1e6)
            print(f"{name} costs {cost:.1f} µs a request in-process: {share:.1%} of a status poll's server CPU")
    finally:
        for server in servers.values():
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
