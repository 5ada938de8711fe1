"""The local executor: per-job timeouts that stop the work, crash isolation,
cancel, queueing, and workers that never outlive the process that owns them.

No database: these run real worker processes with the scripted runner in
batches/tests/local_runners.py (the SMILES says what each job does).
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from batches.engine import local_worker
from batches.engine.local import LOCAL_RUNNERS, LocalExecutor
from batches.engine.types import ChunkRequest, ExecutorUnavailable, JobInput, PollResult
from batches.tests import local_runners

REPO = Path(__file__).resolve().parents[2]
# Fullerene C60: valid, but ETKDG needs ≈ 14 s (2 cores) to give up embedding it.
HARD_LIGAND = (
    "c12c3c4c5c1c6c7c8c2c9c%10c3c%11c%12c4c%13c%14c5c%15c6c%16c7c%17c%18c8c9c%19c%20c%10c%11c%21c%22c%20"
    "c%23c%24c%19c%18c%25c%17c%16c%26c%15c%14c%27c%26c%25c%24c%28c%23c%22c%29c%21c%12c%13c%27c%29%28"
)


@pytest.fixture(autouse=True)
def _scripted_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    # The parent finds it here; workers get the function itself, pickled by reference.
    monkeypatch.setitem(LOCAL_RUNNERS, "scripted", local_runners.scripted)


@pytest.fixture
def pool() -> Iterator[LocalExecutor]:
    executor = LocalExecutor(workers=2)
    yield executor
    executor.shutdown()


@pytest.fixture
def single() -> Iterator[LocalExecutor]:
    executor = LocalExecutor(workers=1)
    yield executor
    executor.shutdown()


def chunk(pid_dir: Path, *smiles: str, prefix: str = "job") -> ChunkRequest:
    jobs = tuple(JobInput(f"{prefix}-{n}", f"ligand {n}", s) for n, s in enumerate(smiles))
    return ChunkRequest("scripted", "", {"pid_dir": str(pid_dir)}, jobs)


def finish(executor: LocalExecutor, call_id: str, within: float = 10.0) -> PollResult:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = executor.poll(call_id)
        if result.state in ("done", "error"):
            return result
        time.sleep(0.02)
    raise AssertionError(f"{call_id} still {result.state} after {within} s")


def pid_of(pid_dir: Path, job_id: str, within: float = 10.0) -> int:
    path = pid_dir / f"{job_id}.pid"
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"{job_id} never started"
        time.sleep(0.02)
    return int(path.read_text())


def running(pid: int) -> bool:
    """Exists and is not a zombie: an orphan's zombie may wait for a reaper
    (pid 1 in a container) that never comes, but it runs nothing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc on this platform
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- the happy path and the registry ---------------------------------------


def test_inline_runs_synchronously_and_a_raising_model_fails_only_its_job(tmp_path: Path) -> None:
    executor = LocalExecutor(workers=0)
    result = executor.poll(executor.submit(chunk(tmp_path, "CCO", "raise", "CCN"), timeout_seconds=60))
    assert result.state == "done"
    assert [o.ok for o in result.outcomes] == [True, False, True]
    assert result.outcomes[1].failure_reason == "executor_error"
    assert "the model broke" in result.outcomes[1].message


def test_a_model_it_cannot_run_is_unavailable(tmp_path: Path) -> None:
    request = ChunkRequest("boltz2", "", {}, (JobInput("j", "", "CCO"),))
    with pytest.raises(ExecutorUnavailable):
        LocalExecutor(workers=1).submit(request, timeout_seconds=60)


def test_a_chunk_completes_with_an_outcome_per_job_in_order(pool: LocalExecutor, tmp_path: Path) -> None:
    result = finish(pool, pool.submit(chunk(tmp_path, "CCO", "CCN", "CCC"), timeout_seconds=60))
    assert result.state == "done"
    assert [o.job_id for o in result.outcomes] == ["job-0", "job-1", "job-2"]
    assert all(o.ok for o in result.outcomes)
    assert len({o.metrics["pid"] for o in result.outcomes} - {os.getpid()}) == 1  # one worker, not us


def test_a_finished_call_is_forgotten(pool: LocalExecutor, tmp_path: Path) -> None:
    call_id = pool.submit(chunk(tmp_path, "CCO"), timeout_seconds=60)
    assert finish(pool, call_id).state == "done"
    assert pool.poll(call_id).state == "error"


def test_a_raising_model_fails_its_job_and_keeps_its_worker(pool: LocalExecutor, tmp_path: Path) -> None:
    result = finish(pool, pool.submit(chunk(tmp_path, "raise", "CCO"), timeout_seconds=60))
    assert [o.failure_reason for o in result.outcomes] == ["executor_error", ""]
    assert pid_of(tmp_path, "job-0") == result.outcomes[1].metrics["pid"]


# -- timeouts and crashes cost one job --------------------------------------


def test_a_hanging_job_is_killed_at_its_timeout_and_the_rest_continue(pool: LocalExecutor, tmp_path: Path) -> None:
    started = time.monotonic()
    result = finish(pool, pool.submit(chunk(tmp_path, "CCO", "hang", "CCN"), timeout_seconds=1))
    assert time.monotonic() - started < 6 < local_runners.HANG_SECONDS
    first, hung, last = result.outcomes
    assert (first.ok, hung.ok, last.ok) == (True, False, True)
    assert hung.failure_reason == "timeout"
    assert "1 s limit" in hung.message
    hung_pid = pid_of(tmp_path, "job-1")
    assert not running(hung_pid)
    assert first.metrics["pid"] == hung_pid != last.metrics["pid"]  # the rest ran on a fresh worker


def test_a_crashing_worker_fails_only_its_current_job(pool: LocalExecutor, tmp_path: Path) -> None:
    result = finish(pool, pool.submit(chunk(tmp_path, "CCO", "crash", "CCN"), timeout_seconds=60))
    assert [o.ok for o in result.outcomes] == [True, False, True]
    assert result.outcomes[1].failure_reason == "executor_error"
    assert "exit code 3" in result.outcomes[1].message


def test_a_hard_ligand_times_out_for_real(single: LocalExecutor, tmp_path: Path) -> None:
    jobs = (JobInput("hard", "C60", HARD_LIGAND), JobInput("easy", "ethanol", "CCO"))
    started = time.monotonic()
    call_id = single.submit(ChunkRequest("ligand-profile", "", {}, jobs), timeout_seconds=1)
    hard, easy = finish(single, call_id, within=20).outcomes
    assert time.monotonic() - started < 8
    assert hard.failure_reason == "timeout"
    assert easy.ok and easy.artifact_content


# -- cancel, queueing, shutdown --------------------------------------------


def test_cancel_of_a_running_chunk_kills_its_worker(pool: LocalExecutor, tmp_path: Path) -> None:
    call_id = pool.submit(chunk(tmp_path, "hang"), timeout_seconds=60)
    pid = pid_of(tmp_path, "job-0")
    assert pool.poll(call_id).state == "running"
    pool.cancel(call_id)
    assert not running(pid)
    assert pool.poll(call_id).state == "error"


def test_queued_chunks_wait_for_a_free_worker(single: LocalExecutor, tmp_path: Path) -> None:
    hanging = single.submit(chunk(tmp_path, "hang", prefix="a"), timeout_seconds=60)
    waiting = single.submit(chunk(tmp_path, "CCO", prefix="b"), timeout_seconds=60)
    dropped = single.submit(chunk(tmp_path, "CCO", prefix="c"), timeout_seconds=60)
    pid_of(tmp_path, "a-0")
    assert single.poll(waiting).state == "pending"
    single.cancel(dropped)
    single.cancel(hanging)
    assert finish(single, waiting).state == "done"
    assert not (tmp_path / "c-0.pid").exists()


def test_shutdown_kills_every_worker_quickly(pool: LocalExecutor, tmp_path: Path) -> None:
    for prefix in ("a", "b"):
        pool.submit(chunk(tmp_path, "hang", prefix=prefix), timeout_seconds=60)
    pids = [pid_of(tmp_path, "a-0"), pid_of(tmp_path, "b-0")]
    started = time.monotonic()
    pool.shutdown()
    assert time.monotonic() - started < 2
    assert not any(running(pid) for pid in pids)


# -- workers never outlive their parent -------------------------------------


def test_workers_die_with_a_sigkilled_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-m", "batches.tests.local_parent", str(tmp_path)], cwd=REPO)
    try:
        pids = [pid_of(tmp_path, "hang-0", within=20), pid_of(tmp_path, "hang-1", within=20)]
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert gone_within(pids, seconds=3)


def test_an_idle_worker_exits_when_its_pipe_closes() -> None:
    ours, worker = start_serving(parent_pid=os.getpid())
    ours.close()
    worker.join(5)
    assert worker.exitcode == 0


def test_a_worker_exits_when_its_parent_is_not_the_one_it_was_given() -> None:
    # The check that catches a parent gone before PR_SET_PDEATHSIG took hold.
    ours, worker = start_serving(parent_pid=-1)
    worker.join(5)
    ours.close()
    assert worker.exitcode == 1


def start_serving(*, parent_pid: int) -> tuple[Connection, BaseProcess]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    # daemon: a worker these tests fail to stop must not hold pytest's exit.
    worker = context.Process(target=local_worker.serve, args=(theirs, parent_pid), daemon=True)
    worker.start()
    theirs.close()
    return ours, worker


def test_a_worker_that_dies_with_our_message_unread_reads_as_dead(tmp_path: Path) -> None:
    # Its socket resets instead of reading EOF; that must not escape poll().
    worker = local_worker.Worker(multiprocessing.get_context("spawn"))
    worker.send(local_worker.Task(local_runners.scripted, {"pid_dir": str(tmp_path)}, ()))
    worker.process.kill()
    worker.process.join(5)
    assert worker.receive() == []
    assert not worker.alive()
