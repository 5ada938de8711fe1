"""Results pages of a 100k-job batch, every sortable metric, both orders.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/results.py [--jobs N]

Creates (and drops afterwards) a scratch database `omtx_bench_results` on that server,
stores one succeeded ligand-profile batch and one succeeded boltz2 batch of N jobs each
(realistic values, ~2 % NULLs, rounded values so ties are common, protein_iptm 0 for
every job as with one chain), VACUUM ANALYZE, then times GET /results through the
Django test client (the whole view: auth, query, rows, JSON) at offset 0, at a deep
offset (90 % of the batch; 3 samples, so its p95 is the maximum) and by cursor at that
depth. Target (issue 7): p95 ≤ 50 ms.
`db p95` is the time in the database (round trips included); the rest is the view in
Python, which a loaded machine slows first. Then inserts N queued jobs (INSERT … SELECT,
so index upkeep dominates) with the new index set, the old one and the new one again, and
marks them succeeded (where the new partial rank indexes are written).
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scratch import scratch_database, setup_django  # noqa: E402

SCRATCH = "omtx_bench_results"
TARGET_P95_MS = 50.0
REPEATS = 9
# The indexes the job table had before issue 7 that inserts write (the others are partial).
OLD_INDEXES = [
    "CREATE INDEX old_batch_fk ON batches_job (batch_id)",
    "CREATE INDEX old_rank_qed ON batches_job (batch_id, qed DESC)",
    "CREATE INDEX old_rank_prob ON batches_job (batch_id, affinity_probability_binary DESC)",
    "CREATE INDEX old_rank_affinity ON batches_job (batch_id, affinity_pred_value)",
]


def _maybe(rng: random.Random, value: Any, nulls: float = 0.02) -> Any:
    return None if rng.random() < nulls else value


def profile_metrics(rng: random.Random) -> dict[str, Any]:
    return {
        "qed": _maybe(rng, round(rng.betavariate(4, 3), 3)),
        "mol_weight": round(rng.gauss(380, 90), 2),
        "clogp": _maybe(rng, round(rng.gauss(2.5, 1.5), 2)),
        "tpsa": _maybe(rng, round(abs(rng.gauss(80, 30)), 1)),
        "hbd": rng.choice([0, 1, 1, 2, 2, 2, 3, 4, 5]),
        "hba": rng.randint(0, 10),
        "rotatable_bonds": rng.randint(0, 12),
        "heavy_atoms": rng.randint(10, 50),
        "lipinski_violations": rng.choice([0, 0, 0, 0, 1, 2]),
        "veber_violations": rng.choice([0, 0, 0, 1]),
        "pains_alerts": rng.choice([0] * 9 + [1]),
        "brenk_alerts": rng.choice([0, 0, 0, 1, 2]),
        "alerts": "",
        "conformer_energy": _maybe(rng, round(rng.gauss(60, 25), 3), nulls=0.05),
    }


def boltz_metrics(rng: random.Random) -> dict[str, Any]:
    value = rng.gauss(0.5, 1.2)
    probability = rng.random()
    return {
        "affinity_pred_value": _maybe(rng, value),
        "affinity_probability_binary": _maybe(rng, probability),
        "pic50": 6 - value,
        "delta_g": -(6 - value) * 1.364,
        "confidence_score": round(rng.uniform(0.3, 0.95), 4),
        "ptm": rng.uniform(0.5, 0.95),
        "iptm": rng.uniform(0.3, 0.9),
        "ligand_iptm": rng.uniform(0.3, 0.9),
        "protein_iptm": 0.0,
        "complex_plddt": rng.uniform(0.6, 0.95),
        "complex_iplddt": rng.uniform(0.6, 0.95),
        "complex_pde": rng.uniform(0.3, 2.0),
        "complex_ipde": rng.uniform(0.3, 3.0),
        "affinity_pred_value1": value + rng.gauss(0, 0.2),
        "affinity_pred_value2": value + rng.gauss(0, 0.2),
        "affinity_probability_binary1": probability,
        "affinity_probability_binary2": min(1.0, probability * 1.05),
    }


def make_batch(user: Any, target: Any, model: str, n: int, *, succeeded: bool = True) -> Any:
    from batches.catalog import get_model
    from batches.models import Batch, Job

    rng = random.Random(model)
    spec = get_model(model)
    metrics = profile_metrics if model == "ligand-profile" else boltz_metrics
    counters = {"n_succeeded": n} if succeeded else {"n_queued": n}
    batch = Batch.objects.create(
        owner=user, name=f"bench {model}", model=model, model_version=spec.version, target=target, n_total=n, **counters
    )

    def job(i: int) -> Job:
        fields: dict[str, Any] = {}
        if succeeded:
            result = metrics(rng)
            fields = {"status": "succeeded", "result": result, **{c: result.get(c) for c in spec.columns}}
        return Job(batch=batch, owner=user, index=i, name=f"l{i}", input_smiles="CCO", canonical_smiles="CCO", **fields)

    Job.objects.bulk_create((job(i) for i in range(n)), batch_size=5000)
    return batch


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(client: Any, url: str, params: dict[str, Any], repeats: int = REPEATS) -> tuple[float, float, float, Any]:
    """p50 and p95 of the whole request, p95 of its time in the database (round trips
    included), and the last page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    samples, database = [], []
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url, params)
            samples.append((time.perf_counter() - start) * 1000)
        database.append(sum(float(query["time"]) for query in queries.captured_queries) * 1000)
        assert response.status_code == 200, response.content[:300]
    p50, p95 = percentiles(samples)
    return p50, p95, percentiles(database)[1], response.json()


def measure_pages(client: Any, batch: Any, n: int, rows: list[tuple[Any, ...]]) -> None:
    from batches.catalog import get_model
    from batches.ranking import sortable_metrics

    url = f"/api/v3/batches/{batch.pk}/results"
    spec = get_model(batch.model)
    deep = int(n * 0.9)
    names = [m for m in sortable_metrics() if m in {o.name for o in spec.outputs}]
    for name in names:
        for order in ("asc", "desc"):
            base = {"sort": name, "order": order, "limit": 50}
            rows.append((batch.model, f"{name} {order}", "offset 0", *timed(client, url, base)[:3]))
            # Three samples: an OFFSET this deep walks 90k rows, the benchmark would take minutes.
            *deep_offset, page = timed(client, url, {**base, "offset": deep}, repeats=3)
            rows.append((batch.model, f"{name} {order}", f"offset {deep}", *deep_offset))
            by_cursor = timed(client, url, {**base, "cursor": page["next_cursor"]})[:3]
            rows.append((batch.model, f"{name} {order}", f"cursor @{deep + 50}", *by_cursor))
    default = spec.default_rank
    extra: list[tuple[str, dict[str, Any]]] = [
        ("default, status=all", {"status": "all"}),
        ("default, status=succeeded,failed", {"status": "succeeded,failed"}),
        (f"default, min_{default}=0.5", {f"min_{default}": 0.5}),
    ]
    for label, params in extra:
        rows.append((batch.model, label, "offset 0", *timed(client, url, {**params, "limit": 50})[:3]))


INSERT_QUEUED = """
INSERT INTO batches_job (id, batch_id, owner_id, priority, index, name, input_smiles, canonical_smiles, inchikey,
    standardization, status, attempts, claim_token, call_id, created_at, failure_reason, failure_message, artifact,
    reuse_key)
SELECT gen_random_uuid(), %s, %s, 0, i, 'l' || i, 'CCO', 'CCO', '', '{}', 'queued', 0, '', '', now(), '', '', '',
    md5(i::text)
FROM generate_series(0, %s - 1) AS i
"""
MARK_SUCCEEDED = """
UPDATE batches_job SET status = 'succeeded', qed = round(random()::numeric, 3), mol_weight = 300 + random() * 200,
    clogp = random() * 5, result = jsonb_build_object('qed', random(), 'tpsa', random() * 140,
    'hbd', (random() * 5)::int, 'hba', (random() * 10)::int, 'rotatable_bonds', (random() * 12)::int,
    'heavy_atoms', (random() * 40)::int, 'lipinski_violations', (random() * 2)::int, 'veber_violations', 0,
    'pains_alerts', 0, 'brenk_alerts', (random() * 2)::int, 'conformer_energy', random() * 100)
WHERE batch_id = %s
"""


def insert_and_succeed(user: Any, target: Any, n: int) -> tuple[float, float]:
    """Seconds to insert n queued jobs (one INSERT … SELECT, so index upkeep is most of
    it), and to mark them all succeeded with ligand-profile metrics (one UPDATE)."""
    from django.db import connection

    from batches.models import Batch

    batch = Batch.objects.create(owner=user, name="writes", model="ligand-profile", model_version="1", target=target)
    with connection.cursor() as cursor:
        start = time.perf_counter()
        cursor.execute(INSERT_QUEUED, [batch.pk, user.pk, n])
        inserted = time.perf_counter() - start
        start = time.perf_counter()
        cursor.execute(MARK_SUCCEEDED, [batch.pk])
        succeeded = time.perf_counter() - start
    batch.delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM batches_job")
    return inserted, succeeded


def compare_index_sets(user: Any, target: Any, n: int) -> None:
    from django.db import connection

    results = {}
    for label in ("new", "old", "new again"):
        with connection.cursor() as cursor:
            for statement in OLD_INDEXES:
                if label == "old":
                    cursor.execute(statement)
                else:
                    cursor.execute(f"DROP INDEX IF EXISTS {statement.split()[2]}")
        results[label] = insert_and_succeed(user, target, n)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'batches_job'")
        total = cursor.fetchone()[0]
    print(f"\nWriting {n:,} jobs ({total} indexes on the job table, 4 written at insert; old: 8):")
    print(f"  {'index set':10} {'insert queued':>14} {'mark succeeded':>15}")
    for label, (inserted, succeeded) in results.items():
        print(f"  {label:10} {inserted:13.2f}s {succeeded:14.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--skip-writes", action="store_true", help="only time the results pages")
    parser.add_argument("--skip-pages", action="store_true", help="only time the writes")
    args = parser.parse_args()
    with scratch_database(SCRATCH) as url:
        try:
            setup_django(url, RATE_LIMIT_ENABLED="false", APM_ENABLED="false")
            from django.contrib.auth.models import User
            from django.core.management import call_command

            from batches.models import Target

            call_command("migrate", verbosity=0)
            user = User.objects.create(username="bench")
            target = Target.objects.create(sequence_sha256="0" * 64, sequence="MENFQ", length=5)
            if not args.skip_pages:
                measure_all(user, target, args.jobs)
            if not args.skip_writes:
                compare_index_sets(user, target, args.jobs)
        finally:
            from django.db import connections

            connections.close_all()


def measure_all(user: Any, target: Any, n: int) -> None:
    from django.db import connection
    from rest_framework.test import APIClient

    start = time.perf_counter()
    batches = [make_batch(user, target, model, n) for model in ("ligand-profile", "boltz2")]
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE batches_job")
    print(f"stored 2 × {n:,} succeeded jobs in {time.perf_counter() - start:.1f} s")
    client = APIClient()
    client.force_authenticate(user)
    rows: list[tuple[Any, ...]] = []
    for batch in batches:
        measure_pages(client, batch, n, rows)
    header = f"{'model':15} {'ranking':46} {'page':14} {'p50 ms':>7} {'p95 ms':>7} {'db p95':>7}"
    print(f"\n{header}  target p95 ≤ {TARGET_P95_MS:.0f} ms")
    for model, ranking, page, p50, p95, db in rows:
        verdict = "PASS" if p95 <= TARGET_P95_MS else "FAIL"
        print(f"{model:15} {ranking:46} {page:14} {p50:7.1f} {p95:7.1f} {db:7.1f}  {verdict}")
    failed = sum(row[4] > TARGET_P95_MS for row in rows)
    print(f"\n{len(rows) - failed} of {len(rows)} pass")


if __name__ == "__main__":
    main()
