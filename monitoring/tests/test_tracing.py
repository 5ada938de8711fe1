"""trace_operation as a context manager and as a decorator (sync and async): statistics in
apm.operations(), spans in the configured exporter, nested under the request's span."""

import asyncio
import io
import json

import pytest
from django.test import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from monitoring import apm, tracing
from monitoring.apm_store import FileStore
from monitoring.tracing import trace_operation


def stats(name: str) -> dict[str, object]:
    [found] = [op for op in apm.operations(window_seconds=60) if op["operation"] == name]
    return found


def test_context_manager_and_decorators_are_timed(file_store: FileStore) -> None:
    @trace_operation("sync-op")
    def double(x: int) -> int:
        return 2 * x

    @trace_operation("async-op")
    async def triple(x: int) -> int:
        await asyncio.sleep(0.02)
        return 3 * x

    with trace_operation("block"):
        pass
    assert [double(i) for i in range(3)] == [0, 2, 4]
    assert asyncio.run(triple(2)) == 6
    assert stats("block")["requests"] == 1
    assert stats("sync-op")["requests"] == 3
    # The coroutine is timed to its end, not to the creation of the coroutine object.
    assert stats("async-op")["avg_ms"] >= 20  # type: ignore[operator]


def test_an_exception_is_an_error_and_propagates(file_store: FileStore) -> None:
    with pytest.raises(KeyError), trace_operation("fails"):
        raise KeyError("x")
    assert (stats("fails")["requests"], stats("fails")["errors"]) == (1, 1)


def test_spans_carry_attributes_and_errors(file_store: FileStore) -> None:
    exporter = InMemorySpanExporter()
    tracing.use_exporter(exporter)
    with trace_operation("outer", batch="b-1"), trace_operation("inner", jobs=3):
        pass
    with pytest.raises(ValueError), trace_operation("broken"):
        raise ValueError("no")
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert spans["outer"].attributes == {"batch": "b-1"}
    assert spans["inner"].attributes == {"jobs": 3}
    assert spans["inner"].parent is not None
    assert spans["inner"].parent.span_id == spans["outer"].context.span_id
    assert spans["broken"].status.status_code is StatusCode.ERROR


@pytest.mark.django_db
def test_requests_are_spans_named_by_route(file_store: FileStore) -> None:
    exporter = InMemorySpanExporter()
    tracing.use_exporter(exporter)
    Client().get("/health")
    [span] = exporter.get_finished_spans()
    assert span.name == "GET health"
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == 200


def test_console_exporter_writes_json_spans(file_store: FileStore) -> None:
    stream = io.StringIO()
    tracing.configure("console", stream=stream)
    with trace_operation("printed", n=1):
        pass
    span = json.loads(stream.getvalue())
    assert span["name"] == "printed"
    assert span["attributes"] == {"n": 1}


def test_otlp_exporter_sends_to_the_standard_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.invalid:4318")
    tracing.configure("otlp")
    provider = tracing._provider
    assert provider is not None
    [processor] = provider._active_span_processor._span_processors
    # No span is sent: none was made. The exporter only holds where it would send them.
    assert processor._batch_processor._exporter._endpoint == "http://collector.invalid:4318/v1/traces"  # type: ignore[attr-defined]


def test_no_exporter_no_spans(file_store: FileStore) -> None:
    tracing.configure("none")
    assert tracing.tracer() is None
    with trace_operation("untraced"):
        pass
    assert stats("untraced")["requests"] == 1


def test_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError):
        tracing.configure("zipkin")
