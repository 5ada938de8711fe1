"""Run one chunk of ligands through `boltz predict`: the code inside the Modal container.

Per chunk: resolve the target's MSA once (a supplied A3M wins; else the cached alignment;
else Boltz fetches it from the MSA server for the first ligand and we cache it), write one
YAML per ligand, run `boltz predict` once over the directory (weights load once per run, not
per ligand) under the chunk's deadline, and parse every ligand's outputs on its own.

Plain Python: `boltz_cmd` is the command, so tests run the same code against a fake boltz.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batches.engine import wire
from batches.engine.boltz_io import (
    EMPTY_MSA,
    a3m_problem,
    build_argv,
    msa_cache_key,
    safe_name,
    write_inputs,
)
from batches.engine.boltz_outputs import RunLog, job_outcome, prediction_files, results_dir
from batches.engine.types import ChunkRequest, JobInput, JobOutcome

MODEL = "boltz2"
# Below this, starting boltz is pointless: importing torch and loading weights take longer.
MIN_RUN_SECONDS = 5.0
# Boltz prints this once the YAML parsed and before it calls the MSA server
# (boltz/main.py process_input): after it, a failure is the MSA step's, not the ligand's.
MSA_STARTED_MARKER = "Generating MSA for"
KILL_GRACE_SECONDS = 10.0
# What `boltz predict --cache` needs for Boltz-2 (boltz/main.py download_boltz2): the structure
# and affinity checkpoints, and the CCD molecules as a tarball and extracted.
CHECKPOINTS = ("boltz2_conf.ckpt", "boltz2_aff.ckpt")
CCD_FILES = ("mols.tar", "mols")


@dataclass(frozen=True)
class Chunk:
    request: ChunkRequest
    work_dir: Path
    boltz_cmd: tuple[str, ...]
    weights_dir: Path | None
    deadline: float

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(frozen=True)
class MsaPlan:
    """`msa` goes into every YAML (a path, or "empty"); None means fetch it first into `cache_path`."""

    msa: str | None
    cache_path: Path | None = None
    problem: str = ""


@dataclass(frozen=True)
class Run:
    outcomes: dict[str, JobOutcome]
    results: Path
    log: RunLog


def run_boltz_chunk(
    request: ChunkRequest,
    *,
    boltz_cmd: Sequence[str],
    work_dir: Path,
    msa_cache_dir: Path,
    timeout_seconds: float,
    weights_dir: Path | None = None,
) -> list[JobOutcome]:
    """One outcome per job of the chunk, in order, whatever happens to the others."""
    chunk = Chunk(request, Path(work_dir), tuple(boltz_cmd), weights_dir, time.monotonic() + timeout_seconds)
    plan = plan_msa(request, work_dir=chunk.work_dir, msa_cache_dir=msa_cache_dir)
    if plan.problem:
        return [failed(job, "invalid_input", plan.problem) for job in request.jobs]
    outcomes: dict[str, JobOutcome] = {}
    jobs, msa = list(request.jobs), plan.msa
    if msa is None and plan.cache_path is not None:
        fetched, msa, jobs = bootstrap_msa(chunk, jobs, plan.cache_path)
        outcomes.update(fetched)
    if jobs and msa is not None:
        outcomes.update(predict(chunk, jobs, msa=msa, use_msa_server=False, label="main").outcomes)
    return [outcomes[job.job_id] for job in request.jobs]


def plan_msa(request: ChunkRequest, *, work_dir: Path, msa_cache_dir: Path) -> MsaPlan:
    supplied = str(request.params.get("msa") or "")
    if supplied:
        problem = a3m_problem(supplied, request.target_sequence)
        if problem:
            return MsaPlan(None, problem=problem)
        path = work_dir / "msa" / "supplied.a3m"  # Boltz picks the parser by suffix: .a3m or .csv
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(supplied)
        return MsaPlan(str(path))
    if not request.params.get("use_msa", True):
        return MsaPlan(EMPTY_MSA)
    cached = msa_cache_dir / f"{msa_cache_key(request.target_sequence)}.csv"
    return MsaPlan(str(cached)) if cached.is_file() else MsaPlan(None, cache_path=cached)


def bootstrap_msa(
    chunk: Chunk, jobs: list[JobInput], cache_path: Path
) -> tuple[dict[str, JobOutcome], str | None, list[JobInput]]:
    """Predict the first ligand with --use_msa_server and keep the alignment Boltz fetched.

    Returns the outcomes of the ligands run here, the cached MSA path (None when there is
    none) and the ligands still to run. A ligand Boltz refuses before it reaches the MSA step
    says nothing about the server, so the next one is tried."""
    outcomes: dict[str, JobOutcome] = {}
    for index, job in enumerate(jobs):
        run = predict(chunk, [job], msa=None, use_msa_server=True, label=f"msa{index}")
        outcomes.update(run.outcomes)
        produced = produced_msa(run.results, safe_name(job.job_id))
        if produced is not None:
            return outcomes, store_msa(produced, cache_path), jobs[index + 1 :]
        if run.log.timed_out:
            # This ligand keeps its own timeout; the rest never started.
            return outcomes | {j.job_id: _no_msa(j, run.log) for j in jobs[index + 1 :]}, None, []
        if MSA_STARTED_MARKER in run.log.text or not _refused(run, job):
            return outcomes | {j.job_id: _no_msa(j, run.log) for j in jobs[index:]}, None, []
    return outcomes, None, []


def _refused(run: Run, job: JobInput) -> bool:
    return run.outcomes[job.job_id].failure_reason == "invalid_input"


def _no_msa(job: JobInput, log: RunLog) -> JobOutcome:
    if log.timed_out:
        return failed(job, "timeout", "the chunk's deadline passed while the target's MSA was being fetched")
    # executor_error: the MSA server's failure is not this ligand's, and a later retry may succeed.
    return failed(job, "executor_error", f"the MSA server gave no alignment for the target; log ends: {log.tail()}")


def produced_msa(results: Path, name: str) -> Path | None:
    # boltz/main.py compute_msa writes msa/<record>_<entity>.csv; the protein is entity 0.
    candidates = sorted(path for path in (results / "msa").glob(f"{name}_*.csv") if path.is_file())
    return candidates[0] if candidates and candidates[0].stat().st_size > 0 else None


def store_msa(produced: Path, cache_path: Path) -> str:
    """Copy into the cache atomically: concurrent containers may fetch the same target, and a
    reader must never see half a file (the last writer wins with identical content)."""
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")
    shutil.copyfile(produced, temporary)
    os.replace(temporary, cache_path)
    return str(cache_path)


def predict(chunk: Chunk, jobs: list[JobInput], *, msa: str | None, use_msa_server: bool, label: str) -> Run:
    input_dir, out_dir = chunk.work_dir / f"in_{label}", chunk.work_dir / "out"
    names = write_inputs(input_dir, sequence=chunk.request.target_sequence, jobs=jobs, msa=msa)
    results = results_dir(out_dir, input_dir)
    if chunk.remaining() < MIN_RUN_SECONDS:
        log = RunLog("(not started: no time left in the chunk's budget)", exit_code=None, timed_out=True)
    else:
        argv = _argv(chunk, input_dir, out_dir, use_msa_server=use_msa_server, override=True)
        log = run_process(argv, log_path=chunk.work_dir / f"{label}.log", timeout=chunk.remaining())
        if _recoverable(log, names, results, chunk):
            log = recover(chunk, names, input_dir, out_dir, log, label=label)
    outcomes = {job.job_id: job_outcome(job.job_id, name, results, log) for name, job in names.items()}
    return Run(outcomes, results, log)


def _argv(chunk: Chunk, input_dir: Path, out_dir: Path, *, use_msa_server: bool, override: bool) -> list[str]:
    return build_argv(
        chunk.boltz_cmd,
        input_dir,
        out_dir=out_dir,
        params=chunk.request.params,
        use_msa_server=use_msa_server,
        cache_dir=chunk.weights_dir,
        override=override,
    )


def _recoverable(log: RunLog, names: Mapping[str, JobInput], results: Path, chunk: Chunk) -> bool:
    if log.exit_code in (0, None) or chunk.remaining() < MIN_RUN_SECONDS:
        return False
    staged = [name for name in names if _pre_affinity(results, name).is_file()]
    waiting = [name for name in staged if not prediction_files(results, name).affinity.is_file()]
    return bool(waiting) and len(staged) < len(names)


def recover(
    chunk: Chunk, names: Mapping[str, JobInput], input_dir: Path, out_dir: Path, log: RunLog, *, label: str
) -> RunLog:
    """Rerun once without the ligands that have no structure.

    Boltz 2.2.1 loads `pre_affinity_<name>.npz` for every record in its affinity stage without
    a guard (boltz/data/module/inferencev2.py load_input), so one ligand skipped earlier (out of
    memory, refused by the featurizer) crashes the affinity of the whole chunk (reported as
    jwohlwend/boltz#402). Dropping that ligand's YAML and processed record and rerunning without
    --override makes Boltz keep the structures it wrote and predict only missing affinities."""
    results = results_dir(out_dir, input_dir)
    for name in names:
        if not _pre_affinity(results, name).is_file():
            (input_dir / f"{name}.yaml").unlink(missing_ok=True)
            (results / "processed" / "records" / f"{name}.json").unlink(missing_ok=True)
    argv = _argv(chunk, input_dir, out_dir, use_msa_server=False, override=False)
    again = run_process(argv, log_path=chunk.work_dir / f"{label}-recover.log", timeout=chunk.remaining())
    return RunLog(log.text + "\n" + again.text, exit_code=again.exit_code, timed_out=again.timed_out)


def _pre_affinity(results: Path, name: str) -> Path:
    return results / "predictions" / name / f"pre_affinity_{name}.npz"


def run_process(argv: list[str], *, log_path: Path, timeout: float) -> RunLog:
    """Run `argv` in its own process group with stdout and stderr in one log, in order.

    The group is always killed on the way out: Boltz starts dataloader and preprocessing
    workers, and a deadline, a crash or a Modal input cancellation (InputCancellation raised in
    this thread) must not leave any of them holding the GPU."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        exit_code: int | None = None
        try:
            exit_code = process.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            pass
        finally:
            kill_group(process)
    return RunLog(log_path.read_text(errors="replace"), exit_code=exit_code, timed_out=exit_code is None)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return  # the whole group is gone already
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=KILL_GRACE_SECONDS)
    # Whatever ignored SIGTERM, or outlived the leader, goes now. Linux does not hand out a
    # pid still in use as a process group id, so the group id is still ours.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stage_weights(volume_dir: Path, local_dir: Path) -> None:
    """Put Boltz's cache on local disk once per container: copy the checkpoints (read by every
    `boltz predict` run) and link the CCD files. `boltz predict` re-downloads anything missing
    from --cache on every run (boltz/main.py download_boltz2), so all four must be present."""
    missing = [name for name in (*CHECKPOINTS, *CCD_FILES) if not (volume_dir / name).exists()]
    if missing:
        raise RuntimeError(
            f"Boltz weights missing from {volume_dir}: {', '.join(missing)}; "
            "run `modal run deploy/boltz_modal_app.py::download_weights` once"
        )
    local_dir.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINTS:
        if not (local_dir / name).is_file():
            shutil.copyfile(volume_dir / name, local_dir / f".{name}.part")
            os.replace(local_dir / f".{name}.part", local_dir / name)
    for name in CCD_FILES:
        if not (local_dir / name).exists():
            (local_dir / name).symlink_to(volume_dir / name)


def failed(job: JobInput, reason: str, message: str) -> JobOutcome:
    return JobOutcome(job.job_id, ok=False, failure_reason=reason, message=message)


def predict_payload(
    payload: Mapping[str, Any],
    *,
    boltz_cmd: Sequence[str],
    work_root: Path,
    msa_cache_dir: Path,
    weights_dir: Path | None,
    max_seconds: float,
) -> list[dict[str, Any]]:
    """The Modal method's body: wire payload in, wire outcomes out. `max_seconds` keeps the
    chunk's own deadline inside the Modal function's timeout, so finished ligands are returned
    instead of lost when Modal kills the call."""
    request, timeout_seconds = wire.request_from_payload(payload)
    if request.model != MODEL:
        raise ValueError(f"this function runs {MODEL}, not {request.model}")
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chunk-", dir=work_root) as work_dir:
        outcomes = run_boltz_chunk(
            request,
            boltz_cmd=boltz_cmd,
            work_dir=Path(work_dir),
            msa_cache_dir=msa_cache_dir,
            timeout_seconds=min(float(timeout_seconds), max_seconds),
            weights_dir=weights_dir,
        )
    return [wire.outcome_to_payload(outcome) for outcome in outcomes]
