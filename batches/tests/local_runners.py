"""Scripted job runners for the local executor's tests.

Module-level functions in an importable module: the executor pickles a runner
by reference into the Task it sends, and a spawned worker imports it from here.
"""

import os
import time
from pathlib import Path
from typing import Any

from batches.engine.types import JobInput, JobOutcome

HANG_SECONDS = 60


def scripted(job: JobInput, params: dict[str, Any]) -> JobOutcome:
    """The SMILES is the script: `hang`, `crash` (os._exit), `raise`; anything
    else succeeds. Every job leaves its worker's pid in `params["pid_dir"]`."""
    write_pid(Path(params["pid_dir"]), job.job_id)
    if job.smiles == "hang":
        time.sleep(HANG_SECONDS)
    elif job.smiles == "crash":
        os._exit(3)
    elif job.smiles == "raise":
        raise RuntimeError("the model broke")
    return JobOutcome(job.job_id, ok=True, metrics={"pid": os.getpid()})


def write_pid(pid_dir: Path, job_id: str) -> None:
    # Write then rename, so a reader never sees a half-written file.
    partial = pid_dir / f"{job_id}.partial"
    partial.write_text(str(os.getpid()))
    partial.replace(pid_dir / f"{job_id}.pid")
