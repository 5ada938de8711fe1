"""Both ends of a local worker's pipe: the worker process (`serve`) and the
executor's handle on it (`Worker`).

The worker runs one chunk at a time, one job after another, and reports each
job's start and outcome as they happen, so the executor can time every job and
kill a worker whose job runs too long without losing the rest of the chunk.

Imports nothing from Django: spawned workers import this module without settings.
"""

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from batches.engine.types import JobInput, JobOutcome

# One job of a model: pure, picklable by reference (a module-level function),
# so the executor can hand it to a spawned worker inside a Task.
JobRunner = Callable[[JobInput, dict[str, Any]], JobOutcome]

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_CHECK_SECONDS = 1.0
KILL_JOIN_SECONDS = 5.0


@dataclass(frozen=True)
class Task:
    runner: JobRunner
    params: dict[str, Any]
    jobs: tuple[JobInput, ...]


@dataclass(frozen=True)
class Started:
    job_id: str
    at: float  # time.monotonic() in the worker


@dataclass(frozen=True)
class Finished:
    outcome: JobOutcome
    at: float


Message = Started | Finished


def run_job(runner: JobRunner, job: JobInput, params: dict[str, Any]) -> JobOutcome:
    try:
        return runner(job, params)
    except Exception as exc:  # a model that raises fails its job, not the worker or the dispatcher
        return JobOutcome(job.job_id, ok=False, failure_reason="executor_error", message=repr(exc)[:500])


# -- the worker process ----------------------------------------------------


def serve(conn: Connection, parent_pid: int) -> None:
    """The worker's main loop: run each Task's jobs in order until the pipe closes."""
    _die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group; the dispatcher decides what
    # happens to its workers (it hands their jobs back, then kills them).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        while True:
            task: Task = conn.recv()
            for job in task.jobs:
                conn.send(Started(job.job_id, time.monotonic()))
                conn.send(Finished(run_job(task.runner, job, task.params), time.monotonic()))
    except (EOFError, ConnectionError):
        return  # the executor closed its end: no one is left to work for


def _die_with_parent(parent_pid: int) -> None:
    """Make sure a dead executor (even SIGKILLed) takes its workers with it."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died before prctl took effect, and other platforms
    # have no prctl. A thread, because the main thread may be deep in a job;
    # an idle worker also exits on its own when the pipe closes.
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


# -- the executor's handle -------------------------------------------------


class Worker:
    """One spawned worker process and the executor's end of its pipe."""

    def __init__(self, context: SpawnContext) -> None:
        self._conn, child_conn = context.Pipe()
        self.process: SpawnProcess = context.Process(target=serve, args=(child_conn, os.getpid()), daemon=True)
        self.process.start()
        # Only the worker may hold its end, so ours reads EOF when it dies.
        child_conn.close()

    @property
    def connection(self) -> Connection:
        """The executor's end of the pipe, to wait on: readable when the
        worker reports, or at EOF when it died."""
        return self._conn

    def alive(self) -> bool:
        return self.process.is_alive()

    def send(self, task: Task) -> None:
        # If it died just now, the next check sees it dead and fails its job.
        with contextlib.suppress(ConnectionError):
            self._conn.send(task)

    def receive(self) -> list[Message]:
        """Every message waiting in the pipe, without blocking."""
        messages: list[Message] = []
        try:
            while self._conn.poll():
                messages.append(self._conn.recv())
        except (EOFError, ConnectionError):
            pass  # it died (a reset if it left our last message unread); alive() says so
        return messages

    def kill(self) -> None:
        # SIGKILL: it cannot be caught or ignored, whatever the model installed.
        self.process.kill()
        # Join to reap it, so its pid is really gone when this returns.
        self.process.join(KILL_JOIN_SECONDS)
        self._conn.close()
