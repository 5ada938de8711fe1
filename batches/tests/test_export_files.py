"""Large exports are files built once in the background (batches/export_files.py): never a
streamed body a worker timeout can cut, never a partial file, each row exactly once."""

import csv
import gzip
import io
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from batches import export_files, exports
from batches.background.exports import build_exports
from batches.background.loop import steps
from batches.export_files import LEASE, MAX_ATTEMPTS, export_claim, export_file_request
from batches.models import Batch, ExportFile, ExportStatus

BATCHES = "/api/v3/batches/"
# Seven input ligands: five jobs, one invalid SMILES and one duplicate rejected.
SEVEN = ["CCO", "C1CC", "c1ccccc1O", "OCC", "CC(=O)Oc1ccccc1C(=O)O", "CCN", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"]


class Killed(BaseException):
    """The worker dies: not an Exception, so nothing in the step catches it."""


@pytest.fixture
def large(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every export above two rows is a file, written two input indexes a slice."""
    settings.OMTX_EXPORT_INLINE_ROWS = 2
    monkeypatch.setattr(export_files, "SLICE_ROWS", 2)


@pytest.fixture
def batch(make_batch: Callable[..., Batch], run_all: Callable[[], None]) -> Batch:
    batch = make_batch(SEVEN)
    run_all()
    batch.refresh_from_db()
    assert (batch.n_total, batch.ligands_rejected) == (5, 2)
    return batch


def build_all(now: datetime | None = None) -> int:
    """Run the background step until it has nothing to do; how many calls did work."""
    for calls in range(100):
        if not build_exports(now):
            return calls
    raise AssertionError("the export step never ran out of work")


def ask(client: APIClient, batch: Batch, fmt: str) -> Any:
    return client.get(f"{BATCHES}{batch.pk}/export", {"format": fmt})


def download(client: APIClient, export: ExportFile) -> bytes:
    response = client.get(f"{BATCHES}{export.batch_id}/exports/{export.pk}/download")
    assert response.status_code == 200, response.content[:300]
    data = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(data) == export.size
    return data


def inline(client: APIClient, batch: Batch, fmt: str) -> bytes:
    response = ask(client, batch, fmt)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def built(client: APIClient, batch: Batch, fmt: str) -> tuple[ExportFile, bytes]:
    assert ask(client, batch, fmt).status_code == 202
    build_all()
    export = ExportFile.objects.get(batch=batch, format=fmt)
    assert export.status == ExportStatus.READY, export.error
    return export, download(client, export)


def folder_files(export: ExportFile) -> list[str]:
    try:
        return default_storage.listdir(f"exports/{export.pk}")[1]
    except FileNotFoundError:
        return []


def csv_indexes(data: bytes) -> list[int]:
    return [int(row["index"]) for row in csv.DictReader(io.StringIO(data.decode()))]


# --- inline or file --------------------------------------------------------------------


def test_small_exports_stream_inline_large_ones_answer_202(
    batch: Batch, owner_client: APIClient, settings: Any
) -> None:
    settings.OMTX_EXPORT_INLINE_ROWS = 7
    assert csv_indexes(inline(owner_client, batch, "csv")) == list(range(7))
    assert not ExportFile.objects.exists()

    settings.OMTX_EXPORT_INLINE_ROWS = 6
    response = ask(owner_client, batch, "sdf")
    assert response.status_code == 202
    body = response.json()
    export = ExportFile.objects.get()
    assert body["id"] == str(export.pk) and body["status"] == "pending" and body["download"] is None
    assert (body["rows_total"], body["rows_written"], body["progress_percent"]) == (7, 0, 0.0)
    assert response["Location"] == body["url"] and body["url"].endswith(f"/exports/{export.pk}")
    assert int(response["Retry-After"]) > 0


def test_the_background_step_is_registered() -> None:
    assert build_exports in steps()


@pytest.mark.usefixtures("large")
def test_the_background_builds_the_whole_sdf(batch: Batch, owner_client: APIClient) -> None:
    ask(owner_client, batch, "sdf")
    export = ExportFile.objects.get()
    assert build_exports()
    poll = owner_client.get(f"{BATCHES}{batch.pk}/exports/{export.pk}/").json()
    assert poll["status"] == "building" and poll["rows_written"] == 2 and 0 < poll["progress_percent"] < 100
    assert build_all() == 3 + 1  # three more slices of two indexes, and the assembly
    poll = owner_client.get(f"{BATCHES}{batch.pk}/exports/{export.pk}/").json()
    assert poll["status"] == "ready" and poll["progress_percent"] == 100 and poll["rows_written"] == 7
    export.refresh_from_db()
    sdf = download(owner_client, export)
    assert sdf.count(b"$$$$\n") == 7
    assert sdf == inline_bytes(batch, "sdf")
    assert folder_files(export) == [export.file.rsplit("/", 1)[1]]  # the parts are gone


def inline_bytes(batch: Batch, fmt: str) -> bytes:
    return b"".join(exports.stream(batch, fmt))


@pytest.mark.usefixtures("large")
def test_compressed_files_hold_the_same_bytes(batch: Batch, owner_client: APIClient) -> None:
    for fmt in ("csv.gz", "jsonl.gz", "sdf.gz"):
        _, data = built(owner_client, batch, fmt)
        # One gzip member per slice: a multi-member file any gunzip reads whole.
        assert gzip.decompress(data) == inline_bytes(batch, fmt.removesuffix(".gz")), fmt
    assert csv_indexes(gzip.decompress(inline_bytes(batch, "csv.gz"))) == list(range(7))


@pytest.mark.usefixtures("large")
def test_one_batch_version_is_built_once(batch: Batch, owner_client: APIClient) -> None:
    first, data = built(owner_client, batch, "csv")
    response = ask(owner_client, batch, "csv")
    assert response.status_code == 303 and response["Location"].endswith(f"/exports/{first.pk}/download")
    assert ExportFile.objects.count() == 1 and build_all() == 0

    Batch.objects.filter(pk=batch.pk).update(version=F("version") + 1)  # the batch changed
    assert ask(owner_client, batch, "csv").status_code == 202
    second = ExportFile.objects.exclude(pk=first.pk).get()
    assert second.batch_version == first.batch_version + 1
    assert build_exports()
    assert ExportFile.objects.filter(pk=first.pk).exists()  # kept while its successor builds
    build_all()
    # The first file was replaced: swept, row and files.
    assert not ExportFile.objects.filter(pk=first.pk).exists() and folder_files(first) == []
    second.refresh_from_db()
    assert download(owner_client, second) == data


@pytest.mark.usefixtures("large")
def test_a_zip_above_the_threshold_is_refused(batch: Batch, owner_client: APIClient) -> None:
    response = ask(owner_client, batch, "zip")
    assert response.status_code == 400 and response.json()["error"]["code"] == "export_too_large"


# --- resumable, claimed once, never partial ----------------------------------------------


def die_at_record(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """The worker dies at its `call`-th slice record: that slice's part is stored, not recorded."""
    record = export_files._record_slice
    calls = iter(range(1, 100))

    def dying(*args: Any, **kwargs: Any) -> bool:
        if next(calls) == call:
            raise Killed
        return record(*args, **kwargs)

    monkeypatch.setattr(export_files, "_record_slice", dying)


@pytest.mark.usefixtures("large")
def test_a_killed_builder_is_resumed_after_its_lease(
    batch: Batch, owner_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask(owner_client, batch, "csv")
    die_at_record(monkeypatch, 3)
    assert build_exports() and build_exports()
    with pytest.raises(Killed):
        build_exports()
    export = ExportFile.objects.get()
    assert (export.status, export.rows_written, export.next_index) == (ExportStatus.BUILDING, 4, 4)
    assert len(folder_files(export)) == 3  # two recorded parts and the dead slice's orphan
    assert build_all() == 0  # the dead worker's lease still holds it
    build_all(timezone.now() + LEASE + timedelta(seconds=1))
    export.refresh_from_db()
    assert export.status == ExportStatus.READY and export.rows_written == 7
    assert csv_indexes(download(owner_client, export)) == list(range(7))  # each row once
    assert folder_files(export) == [export.file.rsplit("/", 1)[1]]  # the orphan is gone too


@pytest.mark.usefixtures("large")
def test_a_stale_builders_slice_is_refused(batch: Batch, owner_client: APIClient) -> None:
    ask(owner_client, batch, "csv")
    now = timezone.now()
    stale = export_claim(now=now)
    assert stale is not None and export_claim(now=now) is None  # held: no second claim
    holder = export_claim(now=now + LEASE + timedelta(seconds=1))  # the stale one's lease ran out
    assert holder is not None and holder.claim_token != stale.claim_token
    export_files.export_build_step(export=stale, now=now)  # its late write
    export = ExportFile.objects.get()
    assert (export.rows_written, export.next_index, export.parts) == (0, 0, [])
    assert folder_files(export) == []  # and its part is discarded
    export_files.export_build_step(export=holder, now=now)
    export.refresh_from_db()
    assert (export.rows_written, export.next_index, len(export.parts)) == (2, 2, 1)


@pytest.mark.usefixtures("large")
def test_a_transient_error_is_retried(batch: Batch, owner_client: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    ask(owner_client, batch, "csv")
    encode = exports.encode_csv
    failures = iter([True])

    def flaky(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        if next(failures, False):
            raise OSError("disk hiccup")
        return encode(*args, **kwargs)

    monkeypatch.setitem(exports.ENCODERS, "csv", flaky)
    assert build_exports()
    export = ExportFile.objects.get()
    assert (export.status, export.attempts, export.error) == (ExportStatus.BUILDING, 1, "OSError: disk hiccup")
    build_all(timezone.now() + timedelta(minutes=1))  # after the retry pause
    export.refresh_from_db()
    assert export.status == ExportStatus.READY
    assert csv_indexes(download(owner_client, export)) == list(range(7))


@pytest.mark.usefixtures("large")
def test_a_failing_build_ends_failed_and_serves_nothing(
    batch: Batch, owner_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask(owner_client, batch, "sdf")
    encode = exports.encode_sdf
    slices = iter(range(100))

    def broken_after_first(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        if next(slices) > 0:
            raise ValueError("no M  END in the structure")
        return encode(*args, **kwargs)

    monkeypatch.setitem(exports.ENCODERS, "sdf", broken_after_first)
    later = timezone.now()
    for _ in range(MAX_ATTEMPTS + 1):
        build_exports(later)
        later += timedelta(minutes=1)
    export = ExportFile.objects.get()
    assert export.status == ExportStatus.FAILED and "no M  END" in export.error
    assert folder_files(export) == [] and export.file == ""  # the written slice is gone
    poll = owner_client.get(f"{BATCHES}{batch.pk}/exports/{export.pk}/").json()
    assert poll["status"] == "failed" and poll["download"] is None and "no M  END" in poll["error"]
    response = owner_client.get(f"{BATCHES}{batch.pk}/exports/{export.pk}/download")
    assert response.status_code == 409 and response.json()["error"]["code"] == "export_failed"
    assert build_all(later) == 0  # failed is terminal for the worker

    # Asking again is the retry.
    monkeypatch.setitem(exports.ENCODERS, "sdf", encode)
    assert ask(owner_client, batch, "sdf").json()["status"] == "pending"
    build_all(later)
    export.refresh_from_db()
    assert export.status == ExportStatus.READY and download(owner_client, export).count(b"$$$$") == 7


@pytest.mark.usefixtures("large")
def test_missing_rows_fail_the_export_instead_of_a_short_file(batch: Batch, owner_client: APIClient) -> None:
    ask(owner_client, batch, "csv")
    ExportFile.objects.update(rows_total=8)  # one row the slices will never find
    build_all()
    export = ExportFile.objects.get()
    assert export.status == ExportStatus.FAILED and export.error == "wrote 7 rows of 8"
    assert folder_files(export) == []


@pytest.mark.usefixtures("large")
def test_not_ready_is_409(batch: Batch, owner_client: APIClient) -> None:
    ask(owner_client, batch, "csv")
    export = ExportFile.objects.get()
    response = owner_client.get(f"{BATCHES}{batch.pk}/exports/{export.pk}/download")
    assert response.status_code == 409 and response.json()["error"]["code"] == "export_not_ready"


@pytest.mark.usefixtures("large")
def test_a_signing_storage_gets_a_redirect(
    batch: Batch, owner_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    export, _ = built(owner_client, batch, "csv")
    signed = "https://storage.example/exports/batch.csv?X-Goog-Signature=abc"
    monkeypatch.setattr(default_storage, "url", lambda name: signed)
    response = owner_client.get(f"{BATCHES}{batch.pk}/exports/{export.pk}/download")
    assert response.status_code == 302 and response["Location"] == signed


# --- who sees what; deletion --------------------------------------------------------------


@pytest.mark.usefixtures("large")
def test_outsider_gets_404_on_every_export_url(
    batch: Batch, owner_client: APIClient, outsider_client: APIClient
) -> None:
    export, _ = built(owner_client, batch, "csv")
    urls = [
        f"{BATCHES}{batch.pk}/export?format=csv",
        f"{BATCHES}{batch.pk}/export?format=sdf",
        f"{BATCHES}{batch.pk}/exports/{export.pk}/",
        f"{BATCHES}{batch.pk}/exports/{export.pk}/download",
    ]
    for url in urls:
        response = outsider_client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    assert ExportFile.objects.count() == 1  # the outsider's sdf request built nothing
    assert owner_client.get(urls[2]).status_code == 200


@pytest.mark.usefixtures("large")
def test_an_export_of_another_batch_is_404(
    batch: Batch, owner_client: APIClient, make_batch: Callable[..., Batch]
) -> None:
    export, _ = built(owner_client, batch, "csv")
    other = make_batch(name="other")
    for suffix in ("", "download"):
        assert owner_client.get(f"{BATCHES}{other.pk}/exports/{export.pk}/{suffix}").status_code == 404


@pytest.mark.usefixtures("large")
def test_deleting_a_batch_deletes_its_export_files(batch: Batch, owner_client: APIClient) -> None:
    export, _ = built(owner_client, batch, "csv")
    assert folder_files(export)
    assert owner_client.delete(f"{BATCHES}{batch.pk}/").status_code == 204
    assert build_exports()  # the sweep
    assert not ExportFile.objects.exists() and folder_files(export) == []


# --- the CSV writer ----------------------------------------------------------------------


def test_inline_csv_queries_do_not_grow_with_rows(make_batch: Callable[..., Batch], owner_client: APIClient) -> None:
    def queries(n: int) -> int:
        batch = make_batch([f"C{'C' * i}O" for i in range(n)], name=f"n{n}")
        with CaptureQueriesContext(connection) as captured:
            assert len(csv_indexes(inline(owner_client, batch, "csv"))) == n
        return len(captured)

    queries(1)  # warm: the first request of a client reads its user
    assert queries(3) == queries(40)


# --- two workers -------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("large")
def test_two_workers_never_claim_the_same_export(
    batch: Batch, owner_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    export_file_request(batch=batch, fmt="csv")
    # Both workers read the same candidate before either updates it: the race the
    # conditional UPDATE settles (the loser's UPDATE waits on the row lock, then no
    # longer matches).
    barrier = threading.Barrier(2)
    token = export_files.uuid.uuid4

    def both_chose() -> Any:
        barrier.wait(timeout=10)
        return token()

    monkeypatch.setattr(export_files.uuid, "uuid4", both_chose)
    now = timezone.now()
    claims: list[Any] = [None, None]

    def worker(i: int) -> None:
        try:
            claims[i] = export_claim(now=now)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    won = [claim for claim in claims if claim is not None]
    assert len(won) == 1
    assert ExportFile.objects.get().claim_token == won[0].claim_token
