"""The dispatcher's wait on the local pool: workers are fed from the pool's
queue between passes, the dispatcher wakes when the pool is hungry (or on
stop), and a pass that could not take the pool's results pauses, not spins.

No database: real worker processes with the scripted runner."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batches.engine.dispatcher import Dispatcher
from batches.engine.local import LOCAL_RUNNERS, LocalExecutor
from batches.engine.types import ChunkRequest, JobInput
from batches.tests import local_runners


@pytest.fixture(autouse=True)
def _scripted_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LOCAL_RUNNERS, "scripted", local_runners.scripted)


@pytest.fixture
def single() -> Iterator[LocalExecutor]:
    executor = LocalExecutor(workers=1)
    yield executor
    executor.shutdown()


def chunk(pid_dir: Path, *smiles: str, prefix: str) -> ChunkRequest:
    jobs = tuple(JobInput(f"{prefix}-{n}", f"ligand {n}", s) for n, s in enumerate(smiles))
    return ChunkRequest("scripted", "", {"pid_dir": str(pid_dir)}, jobs)


def test_the_pool_feeds_its_worker_and_wakes_only_when_hungry(single: LocalExecutor, tmp_path: Path) -> None:
    calls = [single.submit(chunk(tmp_path, "C", prefix=p), timeout_seconds=60) for p in "abc"]
    # One worker, three chunks: while one waits in the queue the pool is fed,
    # not hungry; the wait itself hands the worker each next chunk, and wakes
    # once the second is done and the third, the last, is on the worker.
    assert single.wait(60)
    assert [single.poll(call).state for call in calls[:2]] == ["done", "done"]
    assert single.wait(60)
    assert single.poll(calls[2]).state == "done" and not single.has_work


def test_an_idle_pool_sleeps_the_whole_timeout(single: LocalExecutor) -> None:
    start = time.monotonic()
    assert not single.wait(0.2)
    assert time.monotonic() - start >= 0.2


def test_a_pass_that_left_the_results_pauses_instead_of_spinning(single: LocalExecutor, tmp_path: Path) -> None:
    single.submit(chunk(tmp_path, "C", prefix="a"), timeout_seconds=60)
    assert single.wait(60) and single.hungry
    dispatcher = Dispatcher(executors={"local": single})
    start = time.monotonic()
    dispatcher.wait(0.3, stop=threading.Event(), moved=0)  # the results are still in the pool
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    dispatcher.wait(0.3, stop=threading.Event(), moved=1)  # hungry: the next pass at once
    assert time.monotonic() - start < 0.3


def test_stop_ends_the_wait_on_a_busy_pool(single: LocalExecutor, tmp_path: Path) -> None:
    single.submit(chunk(tmp_path, "hang", prefix="a"), timeout_seconds=60)
    dispatcher = Dispatcher(executors={"local": single})
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    start = time.monotonic()
    dispatcher.wait(30, stop=stop, moved=1)
    assert time.monotonic() - start < 5
