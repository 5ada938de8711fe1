"""One dispatcher process for the fault test: `python -m batches.tests.fault_dispatcher LOG`.

It runs the real loop (`serve`, with its heartbeat and clean stop on SIGTERM)
over a CountingExecutor, which appends one line per job it executes to LOG,
with this process's pid, so the test counts executions on the executor side.
Some calls outlast the lease, and some polls stall the main loop for longer
than the lease: only the heartbeat keeps those jobs from being reaped.
The database comes from DATABASE_URL (the test's PostgreSQL database).
"""

import os
import random
import signal
import sys
import threading
import time
import uuid

import django

from batches.engine.types import ChunkRequest, JobOutcome, PollResult

# Longer than the fault test's 3 s lease.
STALL_SECONDS = 4.5


class CountingExecutor:
    name = "local"
    durable = False

    def __init__(self, log_path: str) -> None:
        self.log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self.calls: dict[str, tuple[ChunkRequest, float]] = {}

    def submit(self, request: ChunkRequest, *, timeout_seconds: int) -> str:
        call_id = f"count-{uuid.uuid4()}"
        seconds = STALL_SECONDS if random.random() < 0.1 else random.uniform(0.2, 0.6)
        self.calls[call_id] = (request, time.monotonic() + seconds)
        return call_id

    def poll(self, call_id: str) -> PollResult:
        request, done_at = self.calls[call_id]
        if random.random() < 0.01:
            time.sleep(STALL_SECONDS)  # a slow executor API call holds up the whole loop
        if time.monotonic() < done_at:
            return PollResult("running")
        del self.calls[call_id]
        lines = "".join(f"{job.job_id} {os.getpid()}\n" for job in request.jobs)
        os.write(self.log, lines.encode())  # one O_APPEND write: lines from processes never interleave
        return PollResult("done", outcomes=tuple(self._outcome(job.job_id, job.name) for job in request.jobs))

    def _outcome(self, job_id: str, name: str) -> JobOutcome:
        if name.startswith("bad"):
            return JobOutcome(job_id, ok=False, failure_reason="invalid_input", message="scripted failure")
        return JobOutcome(job_id, ok=True, metrics={"qed": 0.5})

    def cancel(self, call_id: str) -> None:
        self.calls.pop(call_id, None)

    def shutdown(self) -> None:
        self.calls.clear()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omtx_hub.settings")
    django.setup()
    from batches.engine.dispatcher import Dispatcher
    from batches.engine.loop import serve

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dispatcher = Dispatcher(executors={"local": CountingExecutor(sys.argv[1])})
    serve(dispatcher, stop=stop, interval=0.05)
    print(f"stopped cleanly; stats {dict(dispatcher.stats)}", flush=True)


if __name__ == "__main__":
    main()
