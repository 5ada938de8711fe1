"""Results ranking (issue 7): every sortable metric has its indexes, PostgreSQL uses
them, and cursor and offset pages walk exactly the ranking a Python sort gives."""

import inspect
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.db.models import F, Q
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from batches import models as batch_models
from batches.catalog import MODELS, TYPED_COLUMNS, get_model
from batches.models import Batch, Job, Target
from batches.ranking import rank_index_name, rank_key, sortable_metrics
from batches.selectors import Ranking, results_ranking
from batches.states import JobStatus

BATCHES = "/api/v3/batches/"
STATUS_MIX = ["succeeded"] * 7 + ["failed", "queued", "running", "cancelled"]
STATUS_FILTERS = ["succeeded", "all", "failed,queued"]
THRESHOLDS = {
    "ligand-profile": [("mol_weight", "gte", 0.0), ("hbd", "lte", 1.0)],
    "boltz2": [("affinity_probability_binary", "gte", 0.25), ("ptm", "lte", 0.5)],
}


# --- data -----------------------------------------------------------------------


def _value(rng: random.Random, kind: str) -> Any:
    """Few distinct values, so ties are common; some missing, some junk."""
    roll = rng.random()
    if roll < 0.12:
        return None
    if roll < 0.16 and kind == "json":
        return rng.choice(["n/a", True, [1]])
    return rng.choice([-1.5, 0.0, 0.25, 0.5, 0.5, 0.75, 1.0, 3.0]) if kind != "int" else rng.choice([0, 1, 1, 2])


def _seeded_batch(owner: User, model: str, n: int, seed: int = 7) -> Batch:
    rng = random.Random(f"{model}-{seed}")
    spec = get_model(model)
    target, _ = Target.objects.get_or_create(sequence_sha256="f" * 64, defaults={"sequence": "MENFQ", "length": 5})
    batch = Batch.objects.create(owner=owner, name="ranked", model=model, model_version=spec.version, target=target)
    jobs = []
    for i in range(n):
        status = rng.choice(STATUS_MIX)
        result = {
            out.name: _value(rng, "int" if out.kind == "int" else "column" if out.column else "json")
            for out in spec.outputs
            if out.kind != "str"
        }
        # As ingest writes them: typed columns only on success; JSON metrics whatever the outcome.
        columns = {c: result[c] if status == JobStatus.SUCCEEDED else None for c in spec.columns}
        fields = {"result": None if status in ("queued", "running") and rng.random() < 0.5 else result, **columns}
        jobs.append(Job(batch=batch, owner=owner, index=i, name=f"l{i}", input_smiles="C", status=status, **fields))
    Job.objects.bulk_create(jobs)
    counts = Counter(job.status for job in jobs)
    Batch.objects.filter(pk=batch.pk).update(n_total=n, **{f"n_{s}": counts[s] for s in JobStatus.values})
    batch.refresh_from_db()
    return batch


def _metric(job: Job, name: str) -> float | None:
    value = getattr(job, name) if name in TYPED_COLUMNS else (job.result or {}).get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _passes(value: float | None, op: str, bound: float) -> bool:
    return value is not None and (value >= bound if op == "gte" else value <= bound)


def expected_ranking(
    batch: Batch, metric: str, descending: bool, status: str | None, thresholds: list[tuple[str, str, float]]
) -> list[int]:
    """The ranking by a Python sort: succeeded jobs with the metric best first, ties by
    input order; then the rest in input order."""
    statuses = set(JobStatus.values) if status in (None, "all") else set(status.split(","))
    kept = [
        job
        for job in Job.objects.filter(batch=batch)
        if job.status in statuses and all(_passes(_metric(job, n), op, b) for n, op, b in thresholds)
    ]
    sign = -1 if descending else 1
    ranked = [job for job in kept if job.status == JobStatus.SUCCEEDED and _metric(job, metric) is not None]
    ranked.sort(key=lambda job: (sign * (_metric(job, metric) or 0.0), job.index))
    rest = sorted((job for job in kept if job not in ranked), key=lambda job: job.index)
    return [job.index for job in ranked + rest]


def _by_cursor(ranking: Ranking, limit: int) -> list[int]:
    seen: list[int] = []
    position = None
    while True:
        page = ranking.after(position, limit)
        seen += [job.index for job in page]
        if len(page) < limit:
            return seen
        position = (page[-1].rank_key, page[-1].index)  # type: ignore[attr-defined]


def _by_offset(ranking: Ranking, limit: int) -> list[int]:
    seen: list[int] = []
    while True:
        page = ranking.at(len(seen), limit)
        seen += [job.index for job in page]
        if len(page) < limit:
            return seen


def _numeric(model: str) -> list[str]:
    return [out.name for out in get_model(model).outputs if out.kind in ("float", "int")]


# --- the indexes ----------------------------------------------------------------


def test_every_sortable_metric_has_an_index_per_direction() -> None:
    """Adding a metric to the catalog adds its two rank indexes (and needs a migration)."""
    numeric = {out.name for spec in MODELS.values() for out in spec.outputs if out.kind in ("float", "int")}
    assert set(sortable_metrics()) == numeric
    indexes = {index.name: index for index in Job._meta.indexes}
    for name in numeric:
        for descending in (False, True):
            index = indexes.get(rank_index_name(name, descending=descending))
            assert index is not None, (name, descending)
            assert list(index.expressions) == [F("batch"), rank_key(name, descending=descending), F("index")]
            assert index.condition == Q(status=JobStatus.SUCCEEDED)


def test_the_migrations_hold_every_index(db: None) -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_each_job_index_names_the_query_that_uses_it() -> None:
    source = inspect.getsource(batch_models.Job)
    body = source[source.index("indexes = [") : source.index("constraints = [")]
    lines = [line.strip() for line in body.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith(("models.Index(", "*rank_indexes("))]
    assert len(starts) == 6
    for i in starts:
        assert lines[i - 1].startswith("#"), lines[i]
        assert any(word in lines[i - 1] or word in lines[i - 2] for word in ("_", "results_list")), lines[i]


# --- correctness ----------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(MODELS))
def test_cursor_and_offset_pages_walk_the_python_ranking(owner: User, model: str) -> None:
    batch = _seeded_batch(owner, model, 40)
    for metric in _numeric(model):
        for descending in (False, True):
            for status in STATUS_FILTERS:
                for thresholds in ([], THRESHOLDS[model]):
                    ranking = results_ranking(
                        batch=batch,
                        sort=metric,
                        order="desc" if descending else "asc",
                        status=status,
                        thresholds=thresholds,
                    )
                    want = expected_ranking(batch, metric, descending, status, thresholds)
                    case = (metric, descending, status, thresholds)
                    assert _by_cursor(ranking, 8) == want, case
                    assert _by_offset(ranking, 8) == want, case
                    assert [job.index for job in ranking.ordered()] == want, case
                    assert ranking.count() == len(want), case


def test_api_pages_by_cursor_and_offset_agree_with_ranks(owner: User, owner_client: APIClient) -> None:
    batch = _seeded_batch(owner, "ligand-profile", 30)
    url = f"{BATCHES}{batch.pk}/results"
    for metric in _numeric("ligand-profile"):
        for params in ({"sort": metric}, {"sort": metric, "order": "desc", "status": "all"}):
            spec_direction = get_model("ligand-profile").output(metric).direction == "higher"
            descending = params.get("order") == "desc" or ("order" not in params and spec_direction)
            want = expected_ranking(batch, metric, descending, params.get("status", "succeeded"), [])
            assert _walk(owner_client, url, {**params, "limit": 4}, by_cursor=True) == want, params
            assert _walk(owner_client, url, {**params, "limit": 4}, by_cursor=False) == want, params


def _walk(client: APIClient, url: str, params: dict[str, Any], *, by_cursor: bool) -> list[int]:
    """Follow the pages from the first; by cursor from the second page on."""
    data = _get(client, url, params)
    rows = data["results"]
    link = data["next"]
    if by_cursor and data["next_cursor"]:
        link = None
        data = _get(client, url, {**params, "cursor": data["next_cursor"]})
        rows += data["results"]
        link = data["next"]
        assert data["previous"] is not None
    while link:
        data = client.get(link).json()
        rows += data["results"]
        link = data["next"]
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))
    assert data["next_cursor"] is None and len(rows) == data["count"]
    return [row["index"] for row in rows]


def _get(client: APIClient, url: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:300]
    body: dict[str, Any] = response.json()
    return body


def test_a_junk_metric_value_ranks_as_missing_instead_of_failing(owner: User) -> None:
    batch = _seeded_batch(owner, "ligand-profile", 3)
    Job.objects.filter(batch=batch).update(status=JobStatus.SUCCEEDED, result={"tpsa": "n/a"})
    Job.objects.filter(batch=batch, index=1).update(result={"tpsa": 5})
    ranking = results_ranking(batch=batch, sort="tpsa", thresholds=[])
    assert [job.index for job in ranking.after(None, 10)] == [1, 0, 2]


# --- queries --------------------------------------------------------------------


@pytest.mark.parametrize("status", ["succeeded", "all"])
def test_a_results_page_costs_the_same_queries_whatever_the_batch_size(
    owner: User, owner_client: APIClient, status: str
) -> None:
    """Every page by offset costs the same; by cursor, the most a page costs (the one
    that runs from the ranked rows into the rest) is the same for 40 jobs and 160."""
    costs = []
    for n in (40, 160):
        batch = _seeded_batch(owner, "ligand-profile", n, seed=n)
        url = f"{BATCHES}{batch.pk}/results"
        by_offset, by_cursor = set(), set()
        data = _get(owner_client, url, {"status": status, "limit": 5})
        while data["next_cursor"]:
            with CaptureQueriesContext(connection) as offset_page:
                _get(owner_client, url, {"status": status, "limit": 5, "offset": data["results"][-1]["rank"]})
            with CaptureQueriesContext(connection) as cursor_page:
                data = _get(owner_client, url, {"status": status, "limit": 5, "cursor": data["next_cursor"]})
            by_offset.add(len(offset_page))
            by_cursor.add(len(cursor_page))
        costs.append((by_offset, max(by_cursor)))
    assert costs[0] == costs[1]
    (offset_cost,), cursor_cost = costs[0]
    # The ranked rows, then the others: one range per status asked for that the batch has
    # (here: succeeded, failed, queued, running, cancelled).
    statuses = 5 if status == "all" else 1
    assert cursor_cost == offset_cost + statuses


# --- cursors --------------------------------------------------------------------


def test_a_cursor_is_bound_to_its_batch_and_query(
    owner: User, owner_client: APIClient, outsider_client: APIClient
) -> None:
    batch, other = _seeded_batch(owner, "ligand-profile", 12), _seeded_batch(owner, "ligand-profile", 12, seed=8)
    url = f"{BATCHES}{batch.pk}/results"
    cursor = _get(owner_client, url, {"limit": 3})["next_cursor"]
    assert _get(owner_client, url, {"limit": 3, "cursor": cursor})["results"]
    refused = [
        (url, {"cursor": "junk"}),
        (url, {"cursor": cursor[:-2]}),
        (url, {"cursor": cursor + "x"}),
        (f"{BATCHES}{other.pk}/results", {"cursor": cursor}),
        (url, {"cursor": cursor, "sort": "clogp"}),
        (url, {"cursor": cursor, "order": "asc"}),
        (url, {"cursor": cursor, "status": "all"}),
        (url, {"cursor": cursor, "min_qed": 0.1}),
        (url, {"cursor": cursor, "offset": 3}),
    ]
    for path, params in refused:
        response = owner_client.get(path, params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "invalid_cursor", params
    response = outsider_client.get(url, {"cursor": cursor})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_cursor_page_links_forward_by_cursor_and_back_by_offset(owner: User, owner_client: APIClient) -> None:
    batch = _seeded_batch(owner, "ligand-profile", 20)
    url = f"{BATCHES}{batch.pk}/results"
    first = _get(owner_client, url, {"limit": 3})
    assert first["previous"] is None and "offset=3" in first["next"]
    second = _get(owner_client, url, {"limit": 3, "cursor": first["next_cursor"]})
    assert [row["rank"] for row in second["results"]] == [4, 5, 6]
    assert "cursor=" in second["next"] and "offset" not in second["next"]
    assert "offset=0" in second["previous"] and "cursor" not in second["previous"]


# --- plans (PostgreSQL) ---------------------------------------------------------


def _plan_nodes(sql: str) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        (plan,) = cursor.fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack += node.get("Plans", [])
    return nodes


def _queries(run: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()
    return [query["sql"] for query in captured.captured_queries]


def _page_queries(ranking: Ranking) -> dict[str, list[str]]:
    """The SQL of the pages a client asks for: top, by cursor deep down, past the ranked rows."""
    deep = next(iter(ranking.ordered()[1200:1201]))
    position = (deep.rank_key, deep.index)  # type: ignore[attr-defined]
    return {
        "first page by offset": _queries(lambda: list(ranking.ordered()[:50])),
        "first page": _queries(lambda: ranking.after(None, 50)),
        "by cursor": _queries(lambda: ranking.after(position, 50)),
        "without the metric": _queries(lambda: ranking.after((None, 0), 50)),
    }


@pytest.mark.postgres
@pytest.mark.parametrize("model", sorted(MODELS))
def test_postgres_serves_every_ranking_from_its_index(owner: User, model: str) -> None:
    """First page, a cursor deep in the ranking and the rows without the metric: each an
    index range of the metric's rank index, never a Sort of the batch's rows. 3,000 jobs
    and ANALYZE, so the planner weighs a real table (no enable_* switches)."""
    batch = _seeded_batch(owner, model, 3000)
    _seeded_batch(owner, model, 3000, seed=9)  # another batch's rows in the same index
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE batches_job")
    for metric in _numeric(model):
        for descending in (False, True):
            ranking = results_ranking(batch=batch, sort=metric, order="desc" if descending else "asc")
            for label, queries in _page_queries(ranking).items():
                for sql in queries:
                    nodes = _plan_nodes(sql)
                    types = [node["Node Type"] for node in nodes]
                    case = (metric, descending, label, types)
                    assert "Sort" not in types and "Incremental Sort" not in types, case
                    assert "Seq Scan" not in types and "Bitmap Heap Scan" not in types, case
                    scans = {node.get("Index Name") for node in nodes if node["Node Type"] == "Index Scan"}
                    assert scans == {rank_index_name(metric, descending=descending)}, case


@pytest.mark.postgres
def test_postgres_serves_the_other_statuses_in_input_order(owner: User) -> None:
    batch = _seeded_batch(owner, "ligand-profile", 3000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE batches_job")
    ranking = results_ranking(batch=batch, status="all")
    for sql in _queries(lambda: ranking.after((None, 100), 50)):
        types = [node["Node Type"] for node in _plan_nodes(sql)]
        assert "Sort" not in types and "Seq Scan" not in types, types
