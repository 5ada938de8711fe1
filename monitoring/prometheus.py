"""The hub's Prometheus metrics and the /metrics view.

Counters and the request histogram live in prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by settings and gunicorn_conf before the client is imported):
each process writes its own memory-mapped file and a scrape of any web worker sums them all,
the dispatcher's and the background worker's included. Counters other modules define on the
default registry (`omtx_cache_requests_total`, `omtx_rate_limit_rejections_total`) are summed
the same way, with nothing to wire here.

Gauges about the queue are not kept by any process: `QueueCollector` reads them at scrape
time from the batches' counter columns, one aggregate over the batch table (much smaller
than the job table, and its counters move in the same transactions as the jobs).
"""

import hmac
import os
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

JOBS_DISPATCHED = Counter("omtx_jobs_dispatched", "Jobs claimed by a dispatcher and sent to an executor.")
JOBS_COMPLETED = Counter(
    "omtx_jobs_completed",
    "Job outcomes stored: succeeded, failed (for good), retried (failed, queued again).",
    ["outcome"],
)
EXECUTOR_ERRORS = Counter(
    "omtx_executor_errors",
    "Failed job outcomes and failed executor calls, by reason (timeout, out_of_memory, poll_error, …).",
    ["reason"],
)
GPU_SECONDS = Counter("omtx_gpu_seconds", "Wall-clock seconds of executor calls on GPU models, submit to outcome.")
REQUEST_SECONDS = Histogram(
    "omtx_http_request_duration_seconds",
    "Time to answer a request, by URL name, method and status class.",
    ["route", "method", "status"],
)


class QueueCollector(Collector):
    """omtx_jobs{state}, omtx_queue_depth and omtx_queue_oldest_age_seconds, from the database."""

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Min, Q, Sum
        from django.utils import timezone

        from batches.models import Batch
        from batches.states import COUNTER_FIELD

        sums = {state: Sum(column) for state, column in COUNTER_FIELD.items()}
        row = Batch.objects.aggregate(**sums, oldest=Min("created_at", filter=Q(n_queued__gt=0)))
        jobs = GaugeMetricFamily("omtx_jobs", "Jobs by state, from the batches' counters.", labels=["state"])
        for state in COUNTER_FIELD:
            jobs.add_metric([state], row[state] or 0)
        yield jobs
        yield GaugeMetricFamily("omtx_queue_depth", "Jobs waiting for a dispatcher.", value=row["queued"] or 0)
        age = (timezone.now() - row["oldest"]).total_seconds() if row["oldest"] else 0.0
        yield GaugeMetricFamily(
            "omtx_queue_oldest_age_seconds", "Age of the oldest batch with queued jobs (0: none).", value=age
        )


def exposition() -> bytes:
    """Every process's metrics (multiprocess mode) or this process's, plus the queue's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    registry.register(QueueCollector())
    return generate_latest(registry)


class _Default(Collector):
    """The default registry's metrics, when the client runs without a multiprocess directory."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def allowed(request: HttpRequest) -> bool:
    """A session of staff who may read monitoring (accounts.permissions.sees_monitoring), or
    `Authorization: Bearer <METRICS_TOKEN>` when one is set."""
    from accounts.permissions import sees_monitoring  # reads auth models: as Batch above, not at import

    if sees_monitoring(request.user):
        return True
    token: str = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
