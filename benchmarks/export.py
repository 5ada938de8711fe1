"""Exports of a large batch: inline CSV generation and the background build of export files.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/export.py [--jobs N]

Creates (and drops afterwards) a scratch database `omtx_bench_export` on that server and a
scratch media folder, stores N succeeded ligand-profile jobs whose results and 3D SDF
structures are real (50 ChEMBL-like ligands profiled once, cycled), then times:

- the inline CSV stream (what `GET …/export?format=csv` sends below the threshold),
- the background build of `csv`, `csv.gz` and `sdf` files (the step called until ready),

with the peak RSS of this process after each. Targets (issue 7): CSV 100k rows ≤ 5 s,
server memory ≤ 200 MB. Timings are noisy on a shared 2-core machine: compare within a run.
"""

import argparse
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scratch import scratch_database, setup_django  # noqa: E402

SCRATCH = "omtx_bench_export"
TARGET_SECONDS = 5.0
TARGET_MB = 200.0
SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "CN1CCC[C@H]1c1cccnc1",
    "c1ccc2c(c1)[nH]c1ccccc12",
    "O=C(O)c1ccccc1O",
    "CCN(CC)CCNC(=O)c1ccc(N)cc1",
    "COc1ccc2[nH]cc(CCN)c2c1",
    "Nc1ncnc2[nH]cnc12",
    "CC(=O)Nc1ccc(O)cc1",
]


def peak_mb() -> float:
    """This process's peak RSS. VmHWM, not getrusage's ru_maxrss: that one carries the
    parent's peak across fork and exec, this one starts afresh with the new program."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def store_batch(n: int) -> None:
    """N succeeded jobs, with real profiles and real conformers (a few ligands, cycled)."""
    from django.contrib.auth.models import User
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    from batches.engine.ligand_profile import profile_one
    from batches.engine.types import JobInput
    from batches.models import Batch, Job, Target

    call_command("migrate", verbosity=0)
    profiles = [profile_one(JobInput(f"p{i}", f"lig{i}", s), {}) for i, s in enumerate(SMILES)]
    user, _ = User.objects.get_or_create(username="bench")
    target, _ = Target.objects.get_or_create(sequence_sha256="0" * 64, defaults={"sequence": "MENFQ", "length": 5})
    batch = Batch.objects.create(
        owner=user, name="bench", model="ligand-profile", model_version="1", target=target,
        status="completed", n_total=n, n_succeeded=n, ligands_submitted=n,
    )  # fmt: skip
    # One structure file per distinct ligand: writing 100k small files would take minutes.
    artifacts = [
        default_storage.save(f"artifacts/{uuid.uuid4().hex}.sdf", ContentFile(p.artifact_content)) for p in profiles
    ]

    def job(i: int) -> Job:
        profile = profiles[i % len(profiles)]
        name = artifacts[i % len(profiles)]
        smiles = SMILES[i % len(SMILES)]
        return Job(
            batch=batch, owner=user, index=i, name=f"ligand-{i}", input_smiles=smiles, canonical_smiles=smiles,
            status="succeeded", result=profile.metrics, qed=profile.metrics["qed"], artifact=name,
        )  # fmt: skip

    for first in range(0, n, 5000):
        Job.objects.bulk_create([job(i) for i in range(first, min(n, first + 5000))])


def measure(url: str, media: str, fmt: str) -> tuple[float, int, int, float]:
    """In a fresh process, so its peak RSS is the export's (Django and RDKit included):
    seconds, bytes out, background steps, peak RSS in MB. `inline` is the inline CSV."""
    setup_django(url, OMTX_VAR_DIR=media)
    from batches.background.exports import build_exports
    from batches.export_files import export_file_request
    from batches.exports import stream
    from batches.models import Batch, ExportFile

    batch = Batch.objects.get()
    start = time.perf_counter()
    if fmt == "inline":
        size = sum(len(chunk) for chunk in stream(batch, "csv"))
        return time.perf_counter() - start, size, 0, peak_mb()
    export = export_file_request(batch=batch, fmt=fmt)
    steps = 0
    while build_exports():
        steps += 1
    seconds = time.perf_counter() - start
    export = ExportFile.objects.get(pk=export.pk)
    assert export.status == "ready", (export.status, export.error)
    return seconds, export.size, steps, peak_mb()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    with scratch_database(SCRATCH) as url:
        media = tempfile.mkdtemp(prefix="omtx-bench-export-")
        try:
            setup_django(url, OMTX_VAR_DIR=media)
            start = time.perf_counter()
            store_batch(args.jobs)
            print(f"stored {args.jobs} jobs with structures in {time.perf_counter() - start:.1f} s\n")
            from django.db import connections

            connections.close_all()
            rows = []
            for fmt in ("inline", "csv", "csv.gz", "sdf"):
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    seconds, size, steps, rss = pool.apply(measure, (url, media, fmt))
                rows.append(("inline csv" if fmt == "inline" else f"file {fmt}", seconds, size, steps, rss))
            print(f"{'export':<12} {'rows':>7} {'seconds':>8} {'MB out':>8} {'steps':>6} {'peak RSS MB':>12}  verdict")
            for name, seconds, size, steps, rss in rows:
                verdict = "-"
                if "csv" in name and not name.endswith(".gz"):
                    ok = seconds <= TARGET_SECONDS and rss <= TARGET_MB
                    verdict = f"{'PASS' if ok else 'FAIL'} (≤ {TARGET_SECONDS:.0f} s, ≤ {TARGET_MB:.0f} MB)"
                elif rss > TARGET_MB:
                    verdict = f"FAIL (RSS > {TARGET_MB:.0f} MB)"
                print(
                    f"{name:<12} {args.jobs:>7} {seconds:>8.2f} {size / 1e6:>8.1f} {steps:>6} {rss:>12.0f}  {verdict}"
                )
        finally:
            from django.db import connections

            connections.close_all()
            shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
