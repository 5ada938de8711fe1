"""Times every request by its URL's name (never the raw path: ids would make every request a
series of its own) and status, into the APM (monitoring/apm.py), the Prometheus request
histogram and, with tracing on, a span; logs requests slower than APM_SLOW_REQUEST_MS.
With APM_ENABLED=false Django drops it from the chain at start: no cost at all."""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse

from monitoring import apm, tracing
from monitoring.prometheus import REQUEST_SECONDS

log = logging.getLogger("omtx.apm")
UNMATCHED = "<unmatched>"
STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}
# Methods outside this set are filed under "other": a client must not mint series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(request: HttpRequest) -> str:
    """The URL's name with its namespaces ("v3:batch-status"); an unnamed URL's view path."""
    match = request.resolver_match
    return match.view_name if match is not None else UNMATCHED


class RequestTiming:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.APM_ENABLED:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.slow_ms: float = settings.APM_SLOW_REQUEST_MS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        tracer = tracing.tracer()
        if tracer is None:
            started = time.perf_counter()
            response = self.get_response(request)
            self._record(request, response, (time.perf_counter() - started) * 1000)
            return response
        with tracer.start_as_current_span(request.method or "HTTP", attributes={"http.target": request.path}) as span:
            started = time.perf_counter()
            response = self.get_response(request)
            duration_ms = (time.perf_counter() - started) * 1000
            route = self._record(request, response, duration_ms)
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.status_code", response.status_code)
        return response

    def _record(self, request: HttpRequest, response: HttpResponse, duration_ms: float) -> str:
        route = route_of(request)
        method = request.method if request.method in METHODS else "other"
        status = response.status_code
        apm.record_request(route=route, method=method, duration_ms=duration_ms, status=status)
        status_class = STATUS_CLASSES.get(status // 100, "other")
        REQUEST_SECONDS.labels(route, method, status_class).observe(duration_ms / 1000)
        if duration_ms > self.slow_ms:
            log.warning(
                "slow request: %s %s (%s) answered %d in %.0f ms",
                method,
                request.path,
                route,
                status,
                duration_ms,
                extra={"route": route, "status": status, "duration_ms": round(duration_ms, 1)},
            )
        return route
