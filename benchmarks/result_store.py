"""Writing a 10,000-job batch's result documents to the Firestore emulator: wall time of
`batch_sync` (read the rows, build, commit 500 a batch, find stale documents) and of one
results page read from the documents, on a scratch PostgreSQL database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres FIRESTORE_EMULATOR_HOST=127.0.0.1:8686 \
        .venv/bin/python benchmarks/result_store.py [jobs]
"""

import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scratch import scratch_database, setup_django


def main(n: int) -> None:
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        sys.exit("set FIRESTORE_EMULATOR_HOST to a Firestore emulator")
    project = f"omtx-bench-{uuid.uuid4().hex[:8]}"
    with scratch_database("omtx_bench_result_store") as url:
        setup_django(url, OMTX_RESULT_STORE="firestore", GCP_PROJECT_ID=project)
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.test import RequestFactory
        from rest_framework.request import Request

        from batches.api.cached_reads import _results
        from batches.result_store.writer import batch_sync
        from batches.tests.firestore_emulator import clear
        from batches.tests.test_result_store_scale import _large_batch

        call_command("migrate", verbosity=0)
        owner = User.objects.create_user("bench")
        batch = _large_batch(owner, n)
        started = time.perf_counter()
        report = batch_sync(batch_id=batch.pk)
        written = time.perf_counter() - started
        started = time.perf_counter()
        batch_sync(batch_id=batch.pk)
        again = time.perf_counter() - started
        request = RequestFactory().get(f"/api/v3/batches/{batch.pk}/results", {"limit": 100})
        request.user = owner
        started = time.perf_counter()
        page = _results(Request(request), batch)
        read = time.perf_counter() - started
        assert report.written == n and len(page["results"]) == 100
        print(f"{n} jobs: written in {written:.1f} s ({n / written:.0f} documents/s); rewritten in {again:.1f} s")
        print(f"first results page (100 rows) from Firestore: {read * 1000:.0f} ms")
        clear(os.environ["FIRESTORE_EMULATOR_HOST"], project)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
