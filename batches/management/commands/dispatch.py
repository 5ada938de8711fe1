import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from batches.engine.dispatcher import Dispatcher
from batches.engine.loop import serve


class Command(BaseCommand):
    help = "Run the dispatcher: claim queued jobs, run them, store results. Stops cleanly on SIGINT/SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one pass of every step, then exit")
        parser.add_argument("--until-idle", action="store_true", help="run until no job is queued or in flight")
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between idle passes")
        parser.add_argument("--workers", type=int, default=None, help="local pool size (0 = inline)")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stop = threading.Event()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        dispatcher = Dispatcher.from_settings(workers=options["workers"])
        if options["once"]:
            try:
                dispatcher.run_once()
            finally:
                dispatcher.shutdown()
            return
        self.stdout.write("dispatcher running; Ctrl-C to stop")
        serve(dispatcher, stop=self.stop, interval=options["interval"], until_idle=options["until_idle"])

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
