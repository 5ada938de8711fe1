"""The background step that validates submitted batches (batches/services/intake.py): claim
chunks, check them in a process pool across the cores, store, finalize finished batches
(and dry runs, whose chunks take the same path: batches/services/dry_runs.py)."""

import logging
import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from django.conf import settings

from batches.services.dry_runs import dry_run_finalize, dry_runs_unfinalized
from batches.services.intake import (
    ClaimedChunk,
    intake_claim,
    intake_finalize,
    intake_release,
    intake_store,
    intake_unfinalized,
)
from batches.validation.chunks import check_chunk, rejected_item

log = logging.getLogger(__name__)

# A chunk claimed this often has killed its worker each time (a molecule that crashes
# RDKit): it is validated one ligand per task, so only that ligand is lost.
ONE_BY_ONE_AFTER = 2
# A chunk of 1,000 validates in about a second; one that takes this long hangs.
CHUNK_TIMEOUT_SECONDS = 60


class Inline(Executor):
    """OMTX_VALIDATION_WORKERS=0: the chunk checked in this process."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


_pool: Executor | None = None


def pool() -> Executor:
    """The worker's process pool, started on first use and after a crash broke it. Spawned,
    not forked: the children import the Django-free checker only."""
    global _pool
    if _pool is None:
        workers = settings.OMTX_VALIDATION_WORKERS
        spawn = multiprocessing.get_context("spawn")
        _pool = ProcessPoolExecutor(max_workers=workers, mp_context=spawn) if workers else Inline()
    return _pool


def shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(cancel_futures=True)
        _pool = None


def step() -> bool:
    """Validate the chunks one claim takes (two per pool process, so none idles while
    results are stored), then finalize the batches they belong to; first, any batch whose
    chunks are all validated but whose finalize never ran (its worker died in between)."""
    finalized = any([intake_finalize(batch_id=batch_id) for batch_id in intake_unfinalized()])
    finalized = any([dry_run_finalize(dry_run_id=run_id) for run_id in dry_runs_unfinalized()]) or finalized
    chunks = intake_claim(limit=2 * max(1, settings.OMTX_VALIDATION_WORKERS))
    if not chunks:
        return finalized
    whole = [c for c in chunks if c.attempts <= ONE_BY_ONE_AFTER]
    futures = [pool().submit(check_chunk, c.items, c.first_index, c.limits, c.standardize) for c in whole]
    for chunk, future in zip(whole, futures, strict=True):
        _store(chunk, future)
    for chunk in chunks:
        if chunk.attempts > ONE_BY_ONE_AFTER:
            intake_store(chunk=chunk, results=_one_by_one(chunk))
    _finalize_parents(chunks)
    return True


def _finalize_parents(chunks: list[ClaimedChunk]) -> None:
    for batch_id in dict.fromkeys(chunk.batch_id for chunk in chunks if chunk.batch_id):
        intake_finalize(batch_id=batch_id)
    for dry_run_id in dict.fromkeys(chunk.dry_run_id for chunk in chunks if chunk.dry_run_id):
        dry_run_finalize(dry_run_id=dry_run_id)


def _store(chunk: ClaimedChunk, future: Future[list[list[Any]]]) -> None:
    try:
        results = future.result(timeout=CHUNK_TIMEOUT_SECONDS)
    except (BrokenProcessPool, TimeoutError):
        # A process died (or hangs) on a molecule: the pool goes, the chunk comes back.
        log.warning("validation of chunk %s crashed or hung; it will be validated again", chunk.pk)
        shutdown()
        intake_release(chunk=chunk)
        return
    except Exception:
        # A bug or an input the checker did not foresee: the chunk comes back at once, and
        # after ONE_BY_ONE_AFTER claims only the ligand that raises is refused.
        log.exception("validation of chunk %s failed; it will be validated again", chunk.pk)
        intake_release(chunk=chunk)
        return
    intake_store(chunk=chunk, results=results)


def _one_by_one(chunk: ClaimedChunk) -> list[list[Any]]:
    results: list[list[Any]] = []
    for index, item in enumerate(chunk.items, chunk.first_index):
        try:
            task = pool().submit(check_chunk, [item], index, chunk.limits, chunk.standardize)
            results += task.result(timeout=CHUNK_TIMEOUT_SECONDS)
        except (BrokenProcessPool, TimeoutError):
            shutdown()
            results.append(rejected_item(index, item, "validation crashed on this ligand"))
        except Exception:
            log.exception("validation failed on ligand %s", index + 1)
            results.append(rejected_item(index, item, "validation failed on this ligand"))
    return results
