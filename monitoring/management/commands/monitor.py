import logging
import signal
import threading
from datetime import datetime
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from django.utils import timezone

from monitoring import alerts, webhook
from monitoring.readings import Snapshot, take_snapshot
from omtx_hub.heartbeat import beat
from ratelimit.blocks import republish_blocks

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Evaluate the alert rules every METRICS_EXPORT_INTERVAL seconds: open, update and resolve alerts, "
        "log them and post them to OMTX_ALERT_WEBHOOK_URL. Stops cleanly on SIGINT/SIGTERM."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one evaluation, then exit")
        parser.add_argument(
            "--interval", type=float, default=None, help="seconds between evaluations (default METRICS_EXPORT_INTERVAL)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Redis may have restarted without its data while no process was watching: the
        # table's blocks go back in before anything else (docs/rate-limiting.md).
        republish_blocks()
        if options["once"]:
            self.run_once(now=timezone.now())
            return
        self.stop = threading.Event()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        interval = options["interval"] or settings.METRICS_EXPORT_INTERVAL
        self.stdout.write(f"monitor running, every {interval:g} s; Ctrl-C to stop")
        self.serve(interval=interval)

    def serve(self, *, interval: float) -> None:
        """Evaluate until stopped. A failing evaluation (database restarting) is
        logged and the next one runs on time: the monitor must outlive what it watches."""
        while not self.stop.is_set():
            beat()
            try:
                self.run_once(now=timezone.now())
            except Exception:
                log.exception("monitor evaluation failed; next one in %.1f s", interval)
            close_old_connections()
            self.stop.wait(interval)

    def run_once(self, *, now: datetime) -> alerts.Evaluation:
        snapshot = self.measure(now=now)
        evaluation = self.evaluate(snapshot=snapshot, now=now)
        self.notify(evaluation)
        return evaluation

    def measure(self, *, now: datetime) -> Snapshot:
        return take_snapshot(now=now)

    def evaluate(self, *, snapshot: Snapshot, now: datetime) -> alerts.Evaluation:
        evaluation = alerts.evaluate(now=now, snapshot=snapshot)
        for alert in evaluation.fired:
            self.stdout.write(f"fired: {alert.rule.name} [{alert.severity}] {alert.message}")
        for alert in evaluation.resolved:
            self.stdout.write(f"resolved: {alert.rule.name} (last value {alert.last_value})")
        return evaluation

    def notify(self, evaluation: alerts.Evaluation) -> int:
        return webhook.deliver(evaluation)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
