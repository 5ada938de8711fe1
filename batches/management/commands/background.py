import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from batches.background.loop import run_once, serve


class Command(BaseCommand):
    help = (
        "Run the background worker: validate submitted batches and build large exports. "
        "Stops cleanly on SIGINT/SIGTERM; work in hand is picked up again after a restart."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass of every step, then exit")
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between idle passes")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            run_once()
            return
        self.stop = threading.Event()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.stdout.write("background worker running; Ctrl-C to stop")
        serve(stop=self.stop, interval=options["interval"])

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
