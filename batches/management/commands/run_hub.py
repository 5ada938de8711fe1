import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "`make run`: migrate, seed the demo, then serve the web app, a dispatcher, a background worker and the "
        "alert monitor until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        # A supervisor's stop (docker stop, systemd) stops the children too, as Ctrl-C does.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            call_command("migrate", interactive=False, verbosity=1)
            call_command("seed_demo", base_url=f"http://{host}:{port}")
            self.stdout.write(
                f"Hub at http://{host}:{port}/  (Ctrl-C stops the web server and the dispatcher, "
                "background worker and monitor)"
            )
            self._serve(host, port)
        except KeyboardInterrupt:
            # Ctrl-C is how a user stops the hub, at any step: not an error to report.
            pass
        self.stdout.write("\nOMTX Hub stopped.")

    def _serve(self, host: str, port: str) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        # Own sessions: the terminal's Ctrl-C reaches this process only, which
        # stops both children in order instead of each printing a traceback.
        children = {
            "the dispatcher": subprocess.Popen([*manage, "dispatch"], start_new_session=True),
            "the background worker": subprocess.Popen([*manage, "background"], start_new_session=True),
            "the monitor": subprocess.Popen([*manage, "monitor"], start_new_session=True),
            "the web server": subprocess.Popen(
                [*manage, "runserver", f"{host}:{port}", "--noreload"], start_new_session=True
            ),
        }
        try:
            while all(child.poll() is None for child in children.values()):
                time.sleep(0.5)
            name, failed = next((name, child) for name, child in children.items() if child.poll() is not None)
            raise CommandError(f"{name} stopped (exit {failed.returncode}); see above")
        finally:
            _stop(list(children.values()))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
