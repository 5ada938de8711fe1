"""The local executor: worker processes the dispatcher process manages itself.

Each worker is fed chunks over its own pipe and reports every job's start and
outcome. Chunks wait in a queue inside the executor while every worker is busy.
A job past its timeout, or a worker that dies, costs that one job: the worker
is SIGKILLed (the work really stops) and the chunk's remaining jobs continue on
a fresh worker. Bookkeeping happens inside submit/poll/cancel, so there is no
thread to coordinate with; poll only reads pipes that are already readable.
"""

import multiprocessing
import multiprocessing.connection
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from batches.engine import ligand_profile
from batches.engine.local_worker import Finished, JobRunner, Message, Task, Worker, run_job
from batches.engine.types import ChunkRequest, ExecutorUnavailable, JobInput, JobOutcome, PollResult

# Models the local executor can run, one job at a time.
LOCAL_RUNNERS: dict[str, JobRunner] = {"ligand-profile": ligand_profile.profile_one}

# A fresh worker imports the model (RDKit) before it reports its first job;
# that is not the job's time, so its clock starts this much later.
START_GRACE_SECONDS = 30.0


@dataclass
class _Call:
    runner: JobRunner
    params: dict[str, Any]
    timeout: int
    jobs: tuple[JobInput, ...]
    outcomes: dict[str, JobOutcome] = field(default_factory=dict)
    started: bool = False

    @property
    def done(self) -> bool:
        return len(self.outcomes) == len(self.jobs)

    def remaining(self) -> tuple[JobInput, ...]:
        return tuple(job for job in self.jobs if job.job_id not in self.outcomes)

    def result(self) -> PollResult:
        return PollResult("done", outcomes=tuple(self.outcomes[job.job_id] for job in self.jobs))


@dataclass
class _Slot:
    """One worker place. `since` is when the worker last made progress (its
    clock: CLOCK_MONOTONIC is system-wide); the job it is on must finish
    within the call's timeout of it."""

    worker: Worker | None = None
    call_id: str | None = None
    since: float = 0.0

    def kill_worker(self) -> None:
        if self.worker is not None:
            self.worker.kill()
        self.worker = None

    def stop(self) -> None:
        self.kill_worker()
        self.call_id = None


class LocalExecutor:
    """`workers` processes inside the dispatcher. `workers=0` runs chunks
    inline, synchronously (no timeout), which tests use for determinism.

    Not thread-safe: the dispatcher's loop is its only caller. Workers start
    in that thread, and on Linux die when it ends (PR_SET_PDEATHSIG follows
    the creating thread)."""

    name = "local"
    durable = False

    def __init__(self, workers: int) -> None:
        self.workers = workers
        # spawn: workers must not inherit the parent's database connections.
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot() for _ in range(workers)]
        self._calls: dict[str, _Call] = {}
        self._queue: deque[str] = deque()
        self._inline: dict[str, PollResult] = {}

    def submit(self, request: ChunkRequest, *, timeout_seconds: int) -> str:
        runner = LOCAL_RUNNERS.get(request.model)
        if runner is None:
            raise ExecutorUnavailable(f"the local executor cannot run {request.model}")
        call = _Call(runner, request.params, timeout_seconds, request.jobs)
        call_id = f"local-{uuid.uuid4()}"
        if self.workers == 0:
            self._inline[call_id] = _run_inline(call)
            return call_id
        self._calls[call_id] = call
        if call.jobs:
            self._queue.append(call_id)
        self._tick()
        return call_id

    @property
    def has_work(self) -> bool:
        """Chunks running or queued in the pool."""
        return bool(self._calls)

    def poll(self, call_id: str) -> PollResult:
        if call_id in self._inline:
            return self._inline.pop(call_id)
        self._tick()
        call = self._calls.get(call_id)
        if call is None:
            return PollResult("error", failure_reason="executor_error", message="call unknown to this executor")
        if call.done:
            del self._calls[call_id]
            return call.result()
        return PollResult("running" if call.started else "pending")

    def wait(self, timeout: float) -> bool:
        """Block until the pool is hungry (True), or `timeout` seconds: hungry
        when a call is done and fewer chunks wait than there are workers, so
        the dispatcher must store results and send work before a worker idles.
        Meanwhile a worker that finishes its chunk gets the next queued one at
        once, not at the dispatcher's next pass: the dispatcher's bookkeeping
        runs once per many chunks, not once per chunk."""
        deadline = time.monotonic() + timeout
        while not self.hungry:
            remaining = deadline - time.monotonic()
            busy = [slot.worker.connection for slot in self._slots if slot.call_id and slot.worker]
            if remaining <= 0 or not busy:
                time.sleep(max(remaining, 0))
                return False
            if multiprocessing.connection.wait(busy, timeout=remaining):
                self._tick()
        return True

    @property
    def hungry(self) -> bool:
        done = bool(self._inline) or any(call.done for call in self._calls.values())
        return done and len(self._queue) < self.workers

    def cancel(self, call_id: str) -> None:
        self._inline.pop(call_id, None)
        if self._calls.pop(call_id, None) is None:
            return
        if call_id in self._queue:
            self._queue.remove(call_id)
            return
        for slot in self._slots:
            if slot.call_id == call_id:
                slot.stop()
        self._start_queued()

    def shutdown(self) -> None:
        for slot in self._slots:
            slot.stop()
        self._calls.clear()
        self._queue.clear()

    # -- bookkeeping, run on every submit and poll ---------------------------

    def _tick(self) -> None:
        for slot in self._slots:
            if slot.call_id is not None:
                self._service(slot, slot.call_id)
        self._start_queued()

    def _service(self, slot: _Slot, call_id: str) -> None:
        call, worker = self._calls[call_id], slot.worker
        assert worker is not None, "a slot with a call has a worker"
        # Look before reading: a worker found dead has written all it ever will.
        alive = worker.alive()
        messages = worker.receive()
        for message in messages:
            _record(slot, call, message)
        if call.done:
            slot.call_id = None
        elif not alive:
            why = f"the worker process died (exit code {worker.process.exitcode})"
            self._replace(slot, call_id, "executor_error", why)
        # A worker we just heard from may have been stuck sending into a full
        # pipe, not in a job: its next message carries a fresh clock to judge.
        elif not messages and time.monotonic() > slot.since + call.timeout:
            why = f"the job ran past its {call.timeout} s limit; its worker was killed"
            self._replace(slot, call_id, "timeout", why)

    def _replace(self, slot: _Slot, call_id: str, reason: str, message: str) -> None:
        """Fail the job the worker was on, kill the worker, and hand the rest of
        the chunk to a fresh one. Retrying the failed job is the dispatcher's call."""
        slot.stop()
        call = self._calls[call_id]
        # Workers run a chunk's jobs in order: the first without an outcome is the one it was on.
        job = call.remaining()[0]
        call.outcomes[job.job_id] = JobOutcome(job.job_id, ok=False, failure_reason=reason, message=message)
        if not call.done:
            self._hand(slot, call_id)

    def _start_queued(self) -> None:
        for slot in self._slots:
            if slot.call_id is None and self._queue:
                self._hand(slot, self._queue.popleft())

    def _hand(self, slot: _Slot, call_id: str) -> None:
        call = self._calls[call_id]
        if slot.worker is None or not slot.worker.alive():
            slot.kill_worker()  # reaps one that died while idle
            slot.worker = Worker(self._context)
        slot.worker.send(Task(call.runner, call.params, call.remaining()))
        slot.call_id = call_id
        slot.since = time.monotonic() + START_GRACE_SECONDS


def _record(slot: _Slot, call: _Call, message: Message) -> None:
    if isinstance(message, Finished):
        call.outcomes[message.outcome.job_id] = message.outcome
    else:
        call.started = True
    slot.since = message.at


def _run_inline(call: _Call) -> PollResult:
    for job in call.jobs:
        call.outcomes[job.job_id] = run_job(call.runner, job, call.params)
    return call.result()
