"""The engine under fire (issue: exactly-once dispatch): three dispatcher
processes on PostgreSQL, one SIGKILLed at random moments and restarted a dozen
times, while API calls cancel, retry and delete batches beside them.

Executions are counted on the executor side (batches/tests/fault_dispatcher.py).
A job may run again only when the process that ran it was killed; on the
dispatchers that stayed alive, every job runs at most once.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.test import APIClient

from batches.background import intake
from batches.models import Batch, Job
from batches.states import JOB_TERMINAL
from batches.tests.test_transitions import assert_counters_match_rows
from batches.validation.files import read_ligand_file

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
REPO = Path(__file__).resolve().parents[2]
KILLS = 12
DEADLINE_SECONDS = 150


class Fleet:
    """Dispatcher processes, each restarted after a SIGKILL."""

    def __init__(self, log: Path, out: Path, size: int) -> None:
        settings = connection.settings_dict
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}",
            "OMTX_LEASE_SECONDS": "3",
            "OMTX_DISPATCHER_CAPACITY": "16",
            "OMTX_MAX_IN_FLIGHT": "200",
            "OMTX_RETRY_BACKOFF_SECONDS": "0.2",
            "OMTX_VAR_DIR": str(out),
        }
        self.log, self.out = log, out
        self.killed: set[int] = set()
        self.procs = [self._start(i) for i in range(size)]

    def _start(self, slot: int) -> subprocess.Popen[bytes]:
        stdout = (self.out / f"dispatcher-{slot}-{time.monotonic_ns()}.log").open("wb")
        command = [sys.executable, "-m", "batches.tests.fault_dispatcher", str(self.log)]
        return subprocess.Popen(command, cwd=REPO, env=self.env, stdout=stdout, stderr=subprocess.STDOUT)

    def kill_one(self) -> None:
        slot = random.randrange(len(self.procs))
        victim = self.procs[slot]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.killed.add(victim.pid)
        self.procs[slot] = self._start(slot)

    def stop(self) -> list[int | None]:
        """SIGTERM every process; returns their exit codes (None: had already died)."""
        alive = [proc.poll() is None for proc in self.procs]
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in self.procs]
        return [code if was_alive else None for code, was_alive in zip(codes, alive, strict=True)]


class Clients(threading.Thread):
    """Cancels, retries and deletes batches through the API while dispatchers run."""

    def __init__(self, client: APIClient, cancel: list[Batch], retry: list[Batch], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client, self.cancel, self.retry, self.stopped = client, cancel, retry, stop
        self.codes: Counter[int] = Counter()

    def run(self) -> None:
        try:
            for batch in self.cancel:
                time.sleep(random.uniform(0.1, 0.8))
                self._call("post", f"/api/v3/batches/{batch.pk}/cancel")
            while not self.stopped.is_set():
                for batch in self.retry:
                    self._call("post", f"/api/v3/batches/{batch.pk}/retry")
                    self._call("get", f"/api/v3/batches/{batch.pk}/status")
                for batch in self.cancel:
                    self._call("delete", f"/api/v3/batches/{batch.pk}/")
                time.sleep(0.3)
        finally:
            connection.close()

    def _call(self, method: str, path: str) -> None:
        self.codes[getattr(self.client, method)(path).status_code] += 1


def submit(client: APIClient, name: str, ligands: list[dict[str, str]]) -> Batch:
    body = {"name": name, "model": "ligand-profile", "protein_sequence": "MENFQKVEKIGEGTYGVVYKARNKLTGEV" * 3}
    response = client.post("/api/v3/batches/", {**body, "ligands": ligands}, format="json")
    assert response.status_code in (201, 202), response.content
    # Past the inline limit the batch is validated in the background first, as the
    # background worker (not under test here) would.
    while intake.step():
        pass
    return Batch.objects.get(pk=response.json()["id"])


def executions_on_live_dispatchers(log: Path, killed: set[int]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        job_id, pid = line.split()
        if int(pid) not in killed:
            counts[job_id] += 1
    return counts


def diagnose(active: Any, outputs: dict[str, str]) -> str:
    batches = Batch.objects.values_list("name", "status", "n_queued", "n_dispatched", "n_running", "n_failed")
    stuck = active.values_list("batch__name", "status", "attempts", "not_before", "lease_expires_at", "claim_token")
    logs = "\n".join(f"--- {name}\n{text}" for name, text in outputs.items())
    return f"jobs still active: {list(stuck)[:20]}\nbatches: {list(batches)}\n{logs}"


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def test_dispatchers_survive_kills_and_races_and_run_each_job_once(
    shared_data: Path, owner_client: APIClient, owner: User, tmp_path: Path
) -> None:
    raw = read_ligand_file((shared_data / "ligands" / "chembl2321810.smi").read_bytes(), "chembl.smi")
    ligands = [{"name": item.name, "smiles": item.smiles} for item in raw]  # type: ignore[union-attr]
    big = submit(owner_client, "big", ligands[:600])
    cancel = [submit(owner_client, f"cancel-{i}", ligands[600 + 30 * i : 630 + 30 * i]) for i in range(3)]
    failing = [{**item, "name": f"bad-{item['name']}"} for item in ligands[700:720]]
    retry = [submit(owner_client, f"retry-{i}", failing[10 * i : 10 * i + 10]) for i in range(2)]
    assert big.n_total >= 500
    log = tmp_path / "executions.log"
    log.touch()
    fleet = Fleet(log, tmp_path, size=3)
    stop_clients = threading.Event()
    clients = Clients(owner_client, cancel, retry, stop_clients)
    clients.start()
    try:
        for _ in range(KILLS):
            time.sleep(random.uniform(0.2, 0.7))
            fleet.kill_one()
        # The clients stop with the kills: their retries keep re-queueing the
        # failing batches, which would otherwise never look drained.
        stop_clients.set()
        clients.join(timeout=30)
        active = Job.objects.exclude(status__in=JOB_TERMINAL)
        drained = wait_until(lambda: not active.exists(), DEADLINE_SECONDS)
    finally:
        stop_clients.set()
        clients.join(timeout=30)
        codes = fleet.stop()
    outputs = {p.name: p.read_text()[-2000:] for p in tmp_path.glob("dispatcher-*.log")}
    assert drained, diagnose(active, outputs)
    assert codes == [0, 0, 0], f"a dispatcher died on its own or stopped uncleanly: {codes}\n{outputs}"
    assert not [code for code in clients.codes if code >= 500], clients.codes
    for batch in Batch.objects.all():
        assert_counters_match_rows(batch)
    counts = executions_on_live_dispatchers(log, fleet.killed)
    retried = {str(pk) for pk in Job.objects.filter(batch__in=retry).values_list("pk", flat=True)}
    twice = {job_id: n for job_id, n in counts.items() if n > 1 and job_id not in retried}
    assert not twice, f"{len(twice)} jobs ran more than once on live dispatchers"
    big.refresh_from_db()
    assert big.n_succeeded + big.n_failed == big.n_total
    report: dict[str, Any] = {"kills": len(fleet.killed), "api": dict(clients.codes)}
    print(report, "executions on live dispatchers:", sum(counts.values()))
