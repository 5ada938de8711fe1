"""The local executor: a process pool inside the dispatcher process."""

import multiprocessing
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

from batches.engine import ligand_profile
from batches.engine.types import ChunkRequest, ExecutorUnavailable, JobOutcome, PollResult

Runner = Callable[[ChunkRequest], list[JobOutcome]]

# Models the local executor can run in this process's pool.
LOCAL_RUNNERS: dict[str, Runner] = {"ligand-profile": ligand_profile.run_chunk}


class LocalExecutor:
    """A process pool inside the dispatcher. `workers=0` runs chunks inline,
    synchronously, which tests use for determinism."""

    name = "local"
    durable = False

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._calls: dict[str, tuple[Future[list[JobOutcome]], float, int]] = {}
        self._inline: dict[str, PollResult] = {}

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: workers must not inherit the parent's database connections.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._pool

    def submit(self, request: ChunkRequest, *, timeout_seconds: int) -> str:
        runner = LOCAL_RUNNERS.get(request.model)
        if runner is None:
            raise ExecutorUnavailable(f"the local executor cannot run {request.model}")
        call_id = f"local-{uuid.uuid4()}"
        if self.workers == 0:
            self._inline[call_id] = _run_inline(runner, request)
        else:
            future = self._get_pool().submit(runner, request)
            self._calls[call_id] = (future, time.monotonic(), timeout_seconds)
        return call_id

    def poll(self, call_id: str) -> PollResult:
        if call_id in self._inline:
            return self._inline.pop(call_id)
        entry = self._calls.get(call_id)
        if entry is None:
            return PollResult("error", failure_reason="executor_error", message="call unknown to this executor")
        future, started, timeout = entry
        if not future.done():
            if time.monotonic() - started > timeout:
                self.cancel(call_id)
                return PollResult("error", failure_reason="timeout", message=f"no result after {timeout} s")
            return PollResult("running" if future.running() else "pending")
        del self._calls[call_id]
        error = future.exception()
        if error is not None:
            return PollResult("error", failure_reason="executor_error", message=repr(error)[:500])
        return PollResult("done", outcomes=tuple(future.result()))

    def cancel(self, call_id: str) -> None:
        self._inline.pop(call_id, None)
        entry = self._calls.pop(call_id, None)
        if entry is not None:
            entry[0].cancel()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _run_inline(runner: Runner, request: ChunkRequest) -> PollResult:
    try:
        return PollResult("done", outcomes=tuple(runner(request)))
    except Exception as exc:  # a crashing model must fail its jobs, not the dispatcher
        return PollResult("error", failure_reason="executor_error", message=repr(exc)[:500])
