import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from monitoring.checks import check_monitoring
from monitoring.management.commands.monitor import Command
from monitoring.models import Alert, AlertStatus
from monitoring.tests.fakes import FakeSources, fake_sources_fixture  # noqa: F401

pytestmark = pytest.mark.usefixtures("fake_sources")


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on a free local port that records what it is sent."""

    def __init__(self, *, delay: float = 0.0, status: int = 204) -> None:
        self.received: list[dict[str, Any]] = []
        self.delay, self.status = delay, status
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.server.delay)
        self.server.received.append(json.loads(body))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.OMTX_ALERT_WEBHOOK_URL = server.url
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _hysteresis(settings: Any) -> None:
    settings.OMTX_ALERT_RESOLVE_MARGIN = 0.05
    settings.OMTX_ALERT_RESOLVE_EVALUATIONS = 2


def command() -> Command:
    cmd = Command(stdout=StringIO())
    cmd.stop = threading.Event()
    return cmd


def slow(found: list[Alert]) -> list[Alert]:
    return [alert for alert in found if alert.rule.name == "slow-responses"]


def test_steps_one_at_a_time(db: None, fake_sources: FakeSources) -> None:
    cmd = command()
    now = timezone.now()
    fake_sources.set_p95(5200.0)
    snapshot = cmd.measure(now=now)
    assert snapshot.performance["p95_response_time_ms"] == 5200.0
    evaluation = cmd.evaluate(snapshot=snapshot, now=now)
    assert [alert.value for alert in slow(evaluation.fired)] == [5200.0]
    assert "fired: slow-responses [warning]" in cmd.stdout.getvalue()
    assert cmd.notify(evaluation) == 0  # no webhook configured


def test_fired_and_resolved_reach_the_webhook(db: None, fake_sources: FakeSources, receiver: Receiver) -> None:
    cmd = command()
    fake_sources.set_p95(9000.0)
    cmd.run_once(now=timezone.now())
    fake_sources.set_p95(100.0)
    cmd.run_once(now=timezone.now())
    cmd.run_once(now=timezone.now())
    events = [(m["event"], m["value"]) for m in receiver.received if m["rule"] == "slow-responses"]
    assert events == [("fired", 9000.0), ("resolved", 9000.0)]
    resolved = next(m for m in receiver.received if m["rule"] == "slow-responses" and m["event"] == "resolved")
    assert resolved["last_value"] == 100.0 and resolved["resolved_at"] and resolved["severity"] == "warning"


def test_a_slow_webhook_costs_at_most_its_timeout(
    db: None, fake_sources: FakeSources, receiver: Receiver, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.delay = 2.0
    settings.OMTX_ALERT_WEBHOOK_TIMEOUT = 0.3
    fake_sources.set_p95(9000.0)
    started = time.monotonic()
    evaluation = command().run_once(now=timezone.now())
    elapsed = time.monotonic() - started
    assert slow(evaluation.fired)  # the alert is stored whatever the receiver does
    assert elapsed < 0.3 * len(evaluation.fired) + 1.5
    assert "alert webhook failed for fired slow-responses" in caplog.text


def test_an_unreachable_webhook_is_logged(
    db: None, fake_sources: FakeSources, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.OMTX_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"  # discard port: refused
    fake_sources.set_p95(9000.0)
    cmd = command()
    evaluation = cmd.run_once(now=timezone.now())
    assert slow(evaluation.fired) and "alert webhook failed" in caplog.text
    assert Alert.objects.filter(rule__name="slow-responses", status=AlertStatus.OPEN).count() == 1


def test_once_from_the_command_line(db: None, fake_sources: FakeSources) -> None:
    fake_sources.set_p95(7000.0)
    out = StringIO()
    call_command("monitor", "--once", stdout=out)
    call_command("monitor", "--once", stdout=out)
    assert out.getvalue().count("fired: slow-responses") == 1
    assert Alert.objects.filter(rule__name="slow-responses").count() == 1


def test_the_loop_outlives_a_failing_evaluation(
    db: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cmd = command()
    passes: list[int] = []

    def run_once(*, now: Any) -> Any:
        passes.append(1)
        if len(passes) == 1:
            raise RuntimeError("database restarting")
        cmd.stop.set()

    monkeypatch.setattr(cmd, "run_once", run_once)
    cmd.serve(interval=0.01)
    assert len(passes) == 2 and "monitor evaluation failed" in caplog.text


def test_only_http_webhooks_pass_the_checks(settings: Any) -> None:
    settings.OMTX_ALERT_WEBHOOK_URL = "file:///etc/passwd"
    assert [problem.id for problem in check_monitoring()] == ["omtx.E101"]
    settings.OMTX_ALERT_WEBHOOK_URL = "https://hooks.example.org/omtx"
    assert check_monitoring() == []
