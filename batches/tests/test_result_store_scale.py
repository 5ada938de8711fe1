"""A 10,000-job batch's documents against the emulator (issue 11): written in bounded memory
(jobs streamed from the database, 500 writes a commit), and read back page by page. The time
it takes is a measurement (docs/result-store.md), not asserted beyond a sanity bound."""

import time
import tracemalloc
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count
from rest_framework.test import APIClient

from batches.catalog import get_model
from batches.models import Batch, Job, Target
from batches.result_store import writer
from batches.result_store.client import jobs_ref
from batches.states import JobStatus
from batches.tests.firestore_emulator import firestore_project

__all__ = ["firestore_project"]

N = 10_000
# Peak Python allocations while writing: one database chunk and one commit (500 documents) at
# a time. Measured streamed: 20-25 MiB (SQLite, PostgreSQL); with the batch's 10,000 rows read
# into one list instead: 33 MiB (SQLite), which this bound refuses.
PEAK_BYTES = 30 * 1024 * 1024
SANITY_SECONDS = 600


def _large_batch(owner: User, n: int = N) -> Batch:
    spec = get_model("ligand-profile")
    target, _ = Target.objects.get_or_create(sequence_sha256="e" * 64, defaults={"sequence": "MENFQ", "length": 5})
    batch = Batch.objects.create(owner=owner, name="large", model=spec.name, model_version=spec.version, target=target)
    jobs = []
    for i in range(n):
        qed = round((i * 7919 % 1000) / 1000, 3)
        result = {"qed": qed, "mol_weight": 100.0 + i % 400, "clogp": (i % 13) - 4.0, "tpsa": 40.5, "hbd": i % 4}
        result |= {"hba": i % 6, "rotatable_bonds": i % 9, "heavy_atoms": 12, "inchikey": "A" * 27, "formula": "C6H6"}
        jobs.append(
            Job(
                batch=batch,
                owner=owner,
                index=i,
                name=f"ligand-{i}",
                input_smiles="c1ccccc1O",
                canonical_smiles="Oc1ccccc1",
                status=JobStatus.SUCCEEDED,
                result=result,
                qed=qed,
                mol_weight=result["mol_weight"],
                clogp=result["clogp"],
                artifact=f"artifacts/{batch.pk}/ligand-{i}.sdf",
            )
        )
    Job.objects.bulk_create(jobs, batch_size=2000)
    Batch.objects.filter(pk=batch.pk).update(n_total=n, n_succeeded=n, status="completed")
    batch.refresh_from_db()
    return batch


def test_a_10000_job_batch_is_written_in_bounded_memory_and_read_back(
    firestore_project: str, owner: User, owner_client: APIClient, settings: Any
) -> None:
    batch = _large_batch(owner)
    assert Job.objects.filter(batch=batch).aggregate(n=Count("pk"))["n"] == N
    jobs_ref(batch.pk).parent.get()  # the client made (once a process) before measuring
    tracemalloc.start()
    started = time.monotonic()
    report = writer.batch_sync(batch_id=batch.pk)
    seconds = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\n10,000 documents: {seconds:.1f} s, peak Python allocations {peak / 2**20:.1f} MiB")
    assert report.written == N and report.deleted == 0
    assert peak < PEAK_BYTES
    assert seconds < SANITY_SECONDS
    stored = jobs_ref(batch.pk).count().get()[0][0].value
    assert stored == N
    page = owner_client.get(f"/api/v3/batches/{batch.pk}/results?limit=1000&offset=9000").json()
    assert [row["rank"] for row in page["results"]] == list(range(9001, 10001))
