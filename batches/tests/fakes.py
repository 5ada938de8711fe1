"""A scripted executor for the dispatcher's failure paths."""

import uuid
from collections.abc import Callable

from batches.engine.types import ChunkRequest, JobInput, JobOutcome, PollResult

Script = Callable[[JobInput], JobOutcome | None]


def succeed(job: JobInput) -> JobOutcome:
    return JobOutcome(job.job_id, ok=True, metrics={"qed": 0.5, "mol_weight": float(len(job.smiles))})


class FakeExecutor:
    """Runs `script` per job at poll time. `script` returning None leaves the
    job out of the call's outcomes (as if its output went missing). Set
    `call_error` to fail whole calls; `hold` keeps calls running."""

    name = "local"

    def __init__(self, script: Script = succeed, *, hold: bool = False, durable: bool = False) -> None:
        self.script = script
        self.calls: dict[str, ChunkRequest] = {}
        self.cancelled: list[str] = []
        self.submitted: list[ChunkRequest] = []
        self.call_error: tuple[str, str] | None = None
        self.hold = hold
        # durable: calls outlive a dispatcher, as Modal's do (adopted by call id).
        self.durable = durable

    def submit(self, request: ChunkRequest, *, timeout_seconds: int) -> str:
        call_id = f"fake-{uuid.uuid4()}"
        self.calls[call_id] = request
        self.submitted.append(request)
        return call_id

    def poll(self, call_id: str) -> PollResult:
        if self.hold:
            return PollResult("running")
        request = self.calls.pop(call_id)
        if self.call_error:
            return PollResult("error", failure_reason=self.call_error[0], message=self.call_error[1])
        outcomes = [self.script(job) for job in request.jobs]
        return PollResult("done", outcomes=tuple(o for o in outcomes if o is not None))

    def cancel(self, call_id: str) -> None:
        self.calls.pop(call_id, None)
        self.cancelled.append(call_id)

    def shutdown(self) -> None:
        self.calls.clear()
