import signal
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from batches.engine.dispatcher import Dispatcher
from batches.selectors import queue_has_work


class Command(BaseCommand):
    help = "Run the dispatcher: claim queued jobs, run them, store results. Stops cleanly on SIGINT/SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass of every step, then exit")
        parser.add_argument("--until-idle", action="store_true", help="run until no job is queued or in flight")
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between idle passes")
        parser.add_argument("--workers", type=int, default=None, help="local pool size (0 = inline)")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        dispatcher = Dispatcher.from_settings(workers=options["workers"])
        try:
            if options["once"]:
                dispatcher.run_once()
            else:
                self._loop(dispatcher, options["interval"], options["until_idle"])
        finally:
            dispatcher.shutdown()

    def _loop(self, dispatcher: Dispatcher, interval: float, until_idle: bool) -> None:
        self.stdout.write("dispatcher running; Ctrl-C to stop")
        while not self.stopping:
            moved = dispatcher.run_once()
            if until_idle and not dispatcher.calls and not moved and not queue_has_work():
                break
            if not moved:
                time.sleep(interval)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
