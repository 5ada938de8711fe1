"""The Firestore result store against the real emulator (issue 11): documents written after
the ingest's commit and read back, retried writes that replace instead of adding, the
results API giving the database's answer byte for byte, and every fallback to the database."""

import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from django.contrib.auth.models import User
from django.core import signing
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from google.api_core.exceptions import DeadlineExceeded, GoogleAPIError, ServiceUnavailable
from rest_framework.test import APIClient

from batches.catalog import get_model
from batches.models import Batch, Job
from batches.result_store import breaker, client, hooks, reader, writer
from batches.result_store.client import jobs_ref
from batches.result_store.documents import TEXT_LIMIT
from batches.states import JobStatus
from batches.tests.firestore_emulator import documents, firestore_project, summary
from batches.tests.test_results_ranking import _seeded_batch
from conftest import SHARED_DATA

__all__ = ["firestore_project"]  # the fixture, imported for pytest

BATCHES = "/api/v3/batches/"


@pytest.fixture(autouse=True)
def _one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cursors are signed with the time in seconds: two reads a second apart differ there
    alone, whatever they read. One instant for every signature, so answers compare whole."""
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(1_800_000_000))


def _cdk2_ligands() -> list[dict[str, str]]:
    lines = (SHARED_DATA / "ligands" / "cdk2_zinc.smi").read_text().split("\n")
    ligands = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and not line.startswith("#") and parts[0].lower() != "smiles":
            ligands.append({"name": parts[0], "smiles": parts[1]})
    return ligands


@pytest.fixture
def real_batch(
    firestore_project: str,
    make_batch: Callable[..., Batch],
    run_all: Callable[[], None],
    django_capture_on_commit_callbacks: Any,
) -> Batch:
    """The CDK2 ligands (and a duplicate) run through the dispatcher; the ingest's after-commit
    writes run as the commits would run them."""
    ligands = _cdk2_ligands()
    with django_capture_on_commit_callbacks(execute=True):
        batch = make_batch([*ligands, ligands[0]], allow_duplicates=True)
        run_all()
    batch.refresh_from_db()
    assert batch.n_succeeded > 40
    return batch


def _job_sql(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if '"batches_job"' in query["sql"]]


def _get(client: APIClient, url: str) -> tuple[bytes, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return response.content, _job_sql(queries)


def _both(client: APIClient, url: str, settings: Any) -> tuple[bytes, bytes, list[str]]:
    """The answer from the store, and from the database (store off); the job-table SQL the
    first ran (none: Firestore answered)."""
    stored, sql = _get(client, url)
    settings.OMTX_RESULT_STORE = "database"
    database, _ = _get(client, url)
    settings.OMTX_RESULT_STORE = "firestore"
    return stored, database, sql


# --- written and read back ---------------------------------------------------------


def test_the_ingest_writes_every_job_and_the_summary_after_its_commit(real_batch: Batch) -> None:
    docs = documents(real_batch.pk)
    jobs = {str(job.pk): job for job in Job.objects.filter(batch=real_batch)}
    assert set(docs) == set(jobs)
    for job_id, doc in docs.items():
        job = jobs[job_id]
        assert (doc["index"], doc["status"], doc["name"], doc["smiles"]) == (
            job.index,
            job.status,
            job.name,
            job.input_smiles,
        )
        assert doc["metrics"] == job.result and doc["metrics_keys"] == list(job.result or {})
        # The structure stays in storage: the document names it, never holds it.
        assert doc["structure"] == job.artifact.name and job.artifact.name.startswith("artifacts/")
        assert doc["truncated"] == []
    stored = summary(real_batch.pk)
    assert stored is not None
    assert (stored["version"], stored["status"], stored["counts"]["succeeded"]) == (
        real_batch.version,
        real_batch.status,
        real_batch.n_succeeded,
    )


def test_nothing_is_written_before_the_commit_or_while_the_store_is_off(
    firestore_project: str,
    make_batch: Callable[..., Batch],
    run_all: Callable[[], None],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    batch = make_batch()
    run_all()  # inside the test's transaction: nothing committed, nothing written
    assert documents(batch.pk) == {}
    with django_capture_on_commit_callbacks() as scheduled:
        hooks.after_ingest(batch_id=batch.pk, job_ids=["x"])
    assert len(scheduled) == 1
    settings.OMTX_RESULT_STORE = "database"
    with django_capture_on_commit_callbacks() as scheduled:
        hooks.after_ingest(batch_id=batch.pk, job_ids=["x"])
    assert scheduled == []


def test_a_retried_write_replaces_documents_and_never_adds_one(real_batch: Batch) -> None:
    before = documents(real_batch.pk)
    ids = list(before)
    writer.jobs_write(batch_id=real_batch.pk, job_ids=ids)
    writer.jobs_write(batch_id=real_batch.pk, job_ids=ids[:5])
    writer.batch_sync(batch_id=real_batch.pk)
    after = documents(real_batch.pk)
    assert len(after) == len(before) == real_batch.n_total
    assert after == before


def test_a_firestore_failure_fails_no_job_and_is_repaired_by_the_sync(
    firestore_project: str,
    make_batch: Callable[..., Batch],
    run_all: Callable[[], None],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise ServiceUnavailable("emulator down")

    monkeypatch.setattr(writer, "_commit", unavailable)
    with django_capture_on_commit_callbacks(execute=True):
        batch = make_batch()
        run_all()
    batch.refresh_from_db()
    assert batch.status == "completed" and batch.n_succeeded == batch.n_total
    assert documents(batch.pk) == {}
    assert "sync_result_store" in caplog.text
    monkeypatch.undo()
    call_command("sync_result_store", str(batch.pk), stdout=_Sink())
    assert len(documents(batch.pk)) == batch.n_total


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


# --- the results API: the same answer ------------------------------------------------


def _queries(model: str) -> list[str]:
    metrics = [out.name for out in get_model(model).outputs if out.kind != "str"]
    queries = ["", "?limit=7", "?limit=7&offset=14", "?limit=1000"]
    for metric in metrics:
        queries += [f"?sort={metric}&limit=9", f"?sort={metric}&order=asc&limit=9&offset=9"]
        queries += [f"?sort={metric}&order=desc&limit=5"]
    return queries


def _walk(client: APIClient, url: str, settings: Any) -> int:
    """Follow `next` links (cursor pages) from both sources together; returns the pages."""
    pages = 0
    while url:
        stored, database, sql = _both(client, url, settings)
        assert stored == database, url
        assert sql == [], f"{url} read the job table: {sql}"
        pages += 1
        url = _next_cursor_url(stored)
    return pages


def _next_cursor_url(body: bytes) -> str:
    page = json.loads(body)
    if not page["next_cursor"]:
        return ""
    return str(page["next"]).split("testserver", 1)[1] if page["next"] else ""


def test_the_results_api_gives_the_databases_answer_from_firestore(
    real_batch: Batch, owner_client: APIClient, settings: Any
) -> None:
    base = f"{BATCHES}{real_batch.pk}/results"
    for query in _queries(real_batch.model):
        stored, database, sql = _both(owner_client, base + query, settings)
        assert stored == database, query
        assert sql == [], f"{query} read the job table: {sql}"
    first = owner_client.get(base + "?limit=6").json()
    assert first["next_cursor"] and len(first["results"]) == 6
    assert _walk(owner_client, f"{base}?limit=6&cursor={first['next_cursor']}", settings) >= 7


@pytest.mark.parametrize("model", ["ligand-profile", "boltz2"])
def test_ties_missing_and_junk_metrics_rank_the_same(
    firestore_project: str, owner: User, owner_client: APIClient, settings: Any, model: str
) -> None:
    """Seeded rows: few distinct values (ties by the dozen), missing metrics, strings and
    booleans where numbers belong, 0.0 (whose descending key is -0.0), every status."""
    batch = _seeded_batch(owner, model, 240)
    writer.batch_sync(batch_id=batch.pk)
    base = f"{BATCHES}{batch.pk}/results"
    for query in _queries(model):
        stored, database, sql = _both(owner_client, base + query, settings)
        assert stored == database, query
        assert sql == [], query
    for metric in ("qed", "hbd") if model == "ligand-profile" else ("ptm", "affinity_pred_value"):
        first = owner_client.get(f"{base}?sort={metric}&limit=25").json()
        _walk(owner_client, f"{base}?sort={metric}&limit=25&cursor={first['next_cursor']}", settings)


# --- when the database answers ------------------------------------------------------


@pytest.mark.parametrize("query", ["?status=all", "?status=failed,succeeded", "?min_qed=0.5", "?max_hbd=1"])
def test_other_statuses_and_thresholds_are_read_from_the_database(
    real_batch: Batch, owner_client: APIClient, settings: Any, query: str
) -> None:
    stored, database, sql = _both(owner_client, f"{BATCHES}{real_batch.pk}/results{query}", settings)
    assert stored == database
    assert sql != []


def test_a_missing_document_sends_the_read_to_the_database(
    real_batch: Batch, owner_client: APIClient, settings: Any
) -> None:
    succeeded = Job.objects.filter(batch=real_batch, status=JobStatus.SUCCEEDED).order_by("index").first()
    assert succeeded is not None
    jobs_ref(real_batch.pk).document(str(succeeded.pk)).delete()
    stored, database, sql = _both(owner_client, f"{BATCHES}{real_batch.pk}/results", settings)
    assert stored == database and sql != []
    call_command("sync_result_store", str(real_batch.pk), stdout=_Sink())
    stored, database, sql = _both(owner_client, f"{BATCHES}{real_batch.pk}/results", settings)
    assert stored == database and sql == []


def test_a_page_holding_a_cut_row_is_read_from_the_database(
    real_batch: Batch, owner_client: APIClient, settings: Any
) -> None:
    job = Job.objects.filter(batch=real_batch, status=JobStatus.SUCCEEDED).order_by("index").first()
    assert job is not None
    Job.objects.filter(pk=job.pk).update(input_smiles="C" * (TEXT_LIMIT + 1))
    writer.jobs_write(batch_id=real_batch.pk, job_ids=[str(job.pk)])
    assert documents(real_batch.pk)[str(job.pk)]["truncated"] == ["smiles"]
    stored, database, sql = _both(owner_client, f"{BATCHES}{real_batch.pk}/results?limit=1000", settings)
    assert stored == database and sql != []


def test_an_unreachable_store_sends_the_read_to_the_database(
    real_batch: Batch, owner_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(batch: Batch) -> int:
        raise ServiceUnavailable("emulator down")

    monkeypatch.setattr(reader, "_succeeded_documents", unavailable)
    stored, database, sql = _both(owner_client, f"{BATCHES}{real_batch.pk}/results", settings)
    assert stored == database and sql != []


def test_outsiders_and_anonymous_readers_get_nothing_from_the_store(
    real_batch: Batch, outsider_client: APIClient, anon_client: APIClient, staff_client: APIClient, settings: Any
) -> None:
    url = f"{BATCHES}{real_batch.pk}/results"
    assert outsider_client.get(url).status_code == 404
    assert anon_client.get(url).status_code in (401, 403)
    stored, database, sql = _both(staff_client, url, settings)
    assert stored == database and sql == []


# --- the re-sync command ------------------------------------------------------------


def test_the_sync_rewrites_a_batch_deletes_stale_documents_and_repeats_safely(real_batch: Batch) -> None:
    jobs_ref(real_batch.pk).document("not-a-job").set({"status": "succeeded"})
    stale = Job.objects.filter(batch=real_batch).order_by("-index").first()
    assert stale is not None
    Job.objects.filter(pk=stale.pk).delete()
    out = _Sink()
    call_command("sync_result_store", str(real_batch.pk), stdout=out)
    assert f"{real_batch.n_total - 1} documents written, 2 stale deleted" in out.text
    assert len(documents(real_batch.pk)) == real_batch.n_total - 1
    again = _Sink()
    call_command("sync_result_store", str(real_batch.pk), stdout=again)
    assert "0 stale deleted" in again.text
    assert summary(real_batch.pk)["synced_version"] == real_batch.version  # type: ignore[index]


def test_the_sync_removes_a_deleted_batchs_documents(real_batch: Batch) -> None:
    pk = real_batch.pk
    Batch.objects.filter(pk=pk).delete()
    out = _Sink()
    call_command("sync_result_store", str(pk), stdout=out)
    assert "not in the database" in out.text
    assert documents(pk) == {} and summary(pk) is None


def test_orphans_and_all_recent(real_batch: Batch, make_batch: Callable[..., Batch]) -> None:
    gone = make_batch(name="gone")
    writer.batch_sync(batch_id=gone.pk)
    Batch.objects.filter(pk=gone.pk).delete()
    out = _Sink()
    call_command("sync_result_store", "--all-recent", "--orphans", stdout=out)
    assert "orphans: 1 batches' documents deleted" in out.text
    assert documents(gone.pk) == {} and len(documents(real_batch.pk)) == real_batch.n_total


def test_the_command_refuses_without_the_store_or_a_batch(settings: Any, db: None) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not firestore"):
        call_command("sync_result_store", "--all-recent")
    settings.OMTX_RESULT_STORE = "firestore"
    settings.GCP_PROJECT_ID = "unused"
    with pytest.raises(CommandError, match="Name batch ids"):
        call_command("sync_result_store")
    with pytest.raises(CommandError, match="not a batch id"):
        call_command("sync_result_store", "nope")


# --- a Firestore that does not answer (review finding 2) ----------------------------


@pytest.fixture
def silent_firestore(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """The store on, its address accepting connections and never answering (a black hole, as
    a network partition looks), a short store timeout; yields that timeout. No thread of the
    fixture outlives the test."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(server.accept()[0])

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{server.getsockname()[1]}")
    settings.OMTX_RESULT_STORE = "firestore"
    settings.GCP_PROJECT_ID = "omtx-test-silent"
    settings.FIRESTORE_DATABASE = "(default)"
    settings.OMTX_RESULT_STORE_TIMEOUT_SECONDS = 0.5
    settings.OMTX_RESULT_STORE_BACKOFF_SECONDS = 60.0
    client._client.cache_clear()
    breaker.reset()
    yield settings.OMTX_RESULT_STORE_TIMEOUT_SECONDS
    client.client()._firestore_api._transport.close()
    client._client.cache_clear()
    breaker.reset()
    stop.set()
    acceptor.join()
    server.close()
    for conn in held:
        conn.close()


def _in_thread(call: Callable[[], Any], seconds: float) -> BaseException | None:
    """Run `call` on a thread as the dispatcher's or a web worker's; assert it ended within
    `seconds` and return what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the call held its thread past {seconds} s"
    return raised[0] if raised else None


def test_the_summary_write_gives_up_within_the_store_timeout(silent_firestore: float) -> None:
    """It ran in a Firestore transaction whose begin and read had no timeout: 60 s of
    retries, then a ValueError nobody caught."""
    summary = {"batch_id": "b", "version": 1}
    raised = _in_thread(lambda: writer._store_summary(client.batch_ref("b"), summary), silent_firestore * 4)
    assert isinstance(raised, GoogleAPIError), raised


def test_the_results_count_gives_up_within_the_store_timeout(silent_firestore: float) -> None:
    """The count's stream reopened itself for as long as the error was retryable, whatever
    the timeout; every results page with the store on waits on it."""
    batch = Batch(pk=uuid.uuid4())  # unsaved: the count reads no database row
    raised = _in_thread(lambda: reader._read(lambda: reader._succeeded_documents(batch)), silent_firestore * 4)
    assert isinstance(raised, reader.StoreUnavailable), raised


def test_a_silent_store_costs_the_results_api_one_timeout_then_it_reads_the_database(
    silent_firestore: float,
    make_batch: Callable[..., Batch],
    run_all: Callable[[], None],
    owner_client: APIClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = make_batch()
    run_all()
    counts: list[Batch] = []
    count = reader._succeeded_documents

    def counted(batch: Batch) -> int:
        counts.append(batch)
        return count(batch)

    monkeypatch.setattr(reader, "_succeeded_documents", counted)
    url = f"{BATCHES}{batch.pk}/results"
    database = owner_client.get(url).json()
    assert len(counts) == 1 and breaker.is_open()
    for limit in (1, 2, 3):
        assert owner_client.get(f"{url}?limit={limit}").json()["results"] == database["results"][:limit]
    assert len(counts) == 1, "Firestore was asked again within the backoff"


def test_an_older_summary_never_replaces_a_newer_one(firestore_project: str) -> None:
    ref = client.batch_ref("b")
    writer._store_summary(ref, {"batch_id": "b", "version": 5})
    writer._store_summary(ref, {"batch_id": "b", "version": 3, "synced_version": 3})
    assert summary("b") == {"batch_id": "b", "version": 5}
    writer._store_summary(ref, {"batch_id": "b", "version": 6, "synced_version": 6})
    writer._store_summary(ref, {"batch_id": "b", "version": 7})
    assert summary("b") == {"batch_id": "b", "version": 7, "synced_version": 6}


def test_a_summary_written_between_the_read_and_the_write_is_read_again(
    firestore_project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two dispatchers' passes: the newer lands after the older one read the summary."""
    ref = client.batch_ref("b")
    writer._store_summary(ref, {"batch_id": "b", "version": 1})
    put = writer._put_summary

    def newer_first(ref: Any, stored: Any, values: dict[str, Any]) -> None:
        ref.set({"batch_id": "b", "version": 9})
        monkeypatch.setattr(writer, "_put_summary", put)
        put(ref, stored, values)

    monkeypatch.setattr(writer, "_put_summary", newer_first)
    writer._store_summary(ref, {"batch_id": "b", "version": 2})
    assert summary("b") == {"batch_id": "b", "version": 9}


@pytest.mark.parametrize("error", [ServiceUnavailable("down"), DeadlineExceeded("silent"), ValueError("no id")])
def test_after_a_failed_write_the_dispatcher_skips_the_store_until_the_backoff_ends(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    settings.OMTX_RESULT_STORE_BACKOFF_SECONDS = 30.0
    breaker.reset()
    calls: list[UUID] = []

    def failing(*, batch_id: UUID, job_ids: list[str]) -> int:
        calls.append(batch_id)
        raise error

    monkeypatch.setattr(hooks, "jobs_write", failing)
    now = [1000.0]
    monkeypatch.setattr("batches.result_store.breaker.monotonic", lambda: now[0])
    first, second = uuid.uuid4(), uuid.uuid4()
    hooks.write_quietly(first, ["a"])  # fails, logged, never raised
    hooks.write_quietly(second, ["b"])
    assert calls == [first]
    assert f"sync_result_store {second}" in caplog.text and "skipped" in caplog.text
    now[0] += 30.0
    hooks.write_quietly(second, ["b"])
    assert calls == [first, second]
    breaker.reset()


def test_a_silent_store_costs_the_dispatcher_one_timeout_then_its_writes_are_skipped(
    silent_firestore: float,
    make_batch: Callable[..., Batch],
    run_all: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = make_batch()
    run_all()
    job_ids = [str(pk) for pk in batch.jobs.values_list("pk", flat=True)]
    calls: list[UUID] = []

    def counted(*, batch_id: UUID, job_ids: list[str]) -> int:
        calls.append(batch_id)
        return writer.jobs_write(batch_id=batch_id, job_ids=job_ids)

    monkeypatch.setattr(hooks, "jobs_write", counted)
    for _ in range(3):
        # On this thread: another would have a database connection of its own, outside the
        # test's transaction, and find no batch to write.
        hooks.write_quietly(batch.pk, job_ids)
    assert calls == [batch.pk] and breaker.is_open()
