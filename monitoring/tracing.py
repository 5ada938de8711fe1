"""Operation tracing: `trace_operation` times a block or a function into the APM
(`monitoring.apm.operations`) and, when OTEL_EXPORTER is not `none`, opens an OpenTelemetry
span (child of the request's span, monitoring/middleware.py) with the given attributes.

OTEL_EXPORTER: `none` (no spans, no SDK cost), `console` (one JSON document per span on
stdout), `otlp` (OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, OpenTelemetry's own variable,
batched in a background thread).
"""

import functools
import inspect
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TextIO, TypeVar, cast

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, Tracer

from monitoring import apm

F = TypeVar("F", bound=Callable[..., Any])
EXPORTERS = ("none", "console", "otlp")
SERVICE_NAME = "omtx-hub"

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_configured = False
_lock = threading.Lock()


def configure(exporter: str, *, stream: TextIO | None = None) -> None:
    """Spans to `exporter` (one of EXPORTERS) from now on; `stream` is the console's."""
    if exporter not in EXPORTERS:
        raise ValueError(f"OTEL_EXPORTER must be one of {', '.join(EXPORTERS)}, not {exporter!r}")
    if exporter == "none":
        _install(None)
    elif exporter == "console":
        _install(SimpleSpanProcessor(ConsoleSpanExporter(out=stream or sys.stdout)))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        _install(BatchSpanProcessor(OTLPSpanExporter()))


def use_exporter(exporter: SpanExporter) -> None:
    """Every span to `exporter` as it ends (tests: an in-memory exporter)."""
    _install(SimpleSpanProcessor(exporter))


def _install(processor: SimpleSpanProcessor | BatchSpanProcessor | None) -> None:
    global _tracer, _provider, _configured
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _provider = _tracer = None
        if processor is not None:
            # The hub's own provider, not the global one: reconfiguring it (tests) is allowed.
            _provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
            _provider.add_span_processor(processor)
            _tracer = _provider.get_tracer("omtx_hub")
        _configured = True


def tracer() -> Tracer | None:
    """The hub's tracer, None when tracing is off (OTEL_EXPORTER=none)."""
    if not _configured:
        from django.conf import settings

        configure(settings.OTEL_EXPORTER)
    return _tracer


class trace_operation:  # named as a function: it is used like one
    """`with trace_operation("ingest", batch=str(batch_id)):` or `@trace_operation("claim")`
    on a sync or async function. Each run is timed into the APM under `name` (an error when it
    raises) and, with tracing on, is a span carrying `attributes`."""

    def __init__(self, name: str, **attributes: Any) -> None:
        self.name = name
        self.attributes = attributes
        self._span: AbstractContextManager[Span] | None = None
        self._started = 0.0

    def __enter__(self) -> "trace_operation":
        active = tracer()
        if active is not None:
            self._span = active.start_as_current_span(self.name, attributes=self.attributes)
            self._span.__enter__()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        duration_ms = (time.perf_counter() - self._started) * 1000
        apm.record_operation(name=self.name, duration_ms=duration_ms, error=kind is not None)
        if self._span is not None:
            self._span.__exit__(kind, error, traceback)

    def __call__(self, function: F) -> F:
        # A fresh context per call: one decorated function may run in many threads at once.
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with trace_operation(self.name, **self.attributes):
                    return await function(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with trace_operation(self.name, **self.attributes):
                return function(*args, **kwargs)

        return cast(F, run)
