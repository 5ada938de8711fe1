"""Large exports as files: requested by the API, built once by the background worker.

An export of more than OMTX_EXPORT_INLINE_ROWS rows is not streamed: a worker timeout would
cut the body and the client would see a 200. It becomes an ExportFile row, one per (batch,
batch version, format), which the background step builds in slices of input indexes. Each
slice is written to storage as its own part and then recorded in the row (parts, next_index,
rows_written) by an UPDATE conditioned on the claim token, so a builder
killed mid-slice loses that slice only, a stale builder's late slice is refused, and every
row is in the file exactly once. When every slice is written the parts are concatenated into
the file (gzip members concatenate into a valid gzip file) and the row turns `ready`.

A builder holds an export only while it writes one slice: the claim is a conditional UPDATE
of a pending export, or a building one whose lease ran out, checked for one row, and the
slice's record releases it again. So two workers never write the same export at once, and a
dead worker's export is taken up where it stopped once its lease runs out.
"""

import gzip
import shutil
import tempfile
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q

from batches.exports import ENCODERS, FORMATS, export_rows, index_end
from batches.models import EXPORT_CLAIMABLE, Batch, ExportFile, ExportStatus
from omtx_hub.errors import InvalidInput, NotFound

SLICE_ROWS = 5000
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 3
# Held by no builder: pending, or building between slices (or with a dead builder's lease).
_CLAIMABLE = Q(status__in=EXPORT_CLAIMABLE)


def export_rows_total(batch: Batch) -> int:
    return batch.n_total + batch.ligands_rejected


def export_is_large(batch: Batch) -> bool:
    return export_rows_total(batch) > settings.OMTX_EXPORT_INLINE_ROWS


def export_file_request(*, batch: Batch, fmt: str) -> ExportFile:
    """The export of this batch version in `fmt`, created pending on first request. A failed
    one is queued again: a new request is the retry."""
    if fmt not in FORMATS or fmt == "zip":
        # A zip gathers every structure file at the end: it cannot be built in slices.
        raise InvalidInput(
            f"A {fmt} export of more than {settings.OMTX_EXPORT_INLINE_ROWS} rows is not offered; "
            "use csv.gz for the table and sdf.gz for the structures.",
            code="export_too_large",
        )
    key = {"batch": batch, "batch_version": batch.version, "format": fmt}
    export = ExportFile.objects.filter(**key).first()
    if export is None:
        try:
            with transaction.atomic():
                return ExportFile.objects.create(**key, rows_total=export_rows_total(batch), index_end=index_end(batch))
        except IntegrityError:  # a concurrent request created it first
            return ExportFile.objects.get(**key)
    if export.status == ExportStatus.FAILED:
        ExportFile.objects.filter(pk=export.pk, status=ExportStatus.FAILED).update(
            status=ExportStatus.PENDING, attempts=0, error="", next_index=0, rows_written=0, parts=[], finished_at=None
        )
        export.refresh_from_db()
    return export


def export_file_get(*, batch: Batch, export_id: str) -> ExportFile:
    try:
        pk = uuid.UUID(str(export_id))
    except ValueError:
        raise NotFound("No such export.") from None
    export = ExportFile.objects.filter(batch=batch, pk=pk).first()
    if export is None:
        raise NotFound("No such export.")
    return export


def export_claim(*, now: datetime) -> ExportFile | None:
    """Claim the oldest export no builder holds; None when there is none or another
    worker claimed it first."""
    claimable = ExportFile.objects.filter(_CLAIMABLE, batch__isnull=False).exclude(lease_expires_at__gt=now)
    pk = claimable.order_by("created_at").values_list("pk", flat=True).first()
    if pk is None:
        return None
    token = uuid.uuid4().hex
    won = claimable.filter(pk=pk).update(status=ExportStatus.BUILDING, claim_token=token, lease_expires_at=now + LEASE)
    if won != 1:
        return None
    return ExportFile.objects.select_related("batch").get(pk=pk, claim_token=token)


def export_build_step(*, export: ExportFile, now: datetime) -> None:
    """One bounded piece of a claimed export: its next slice, or the assembly once every
    slice is written (the first slice is written even for an empty batch: the CSV header)."""
    if export.parts and export.next_index >= export.index_end:
        _assemble(export, now=now)
    else:
        _write_slice(export, now=now)


def _write_slice(export: ExportFile, *, now: datetime) -> None:
    batch = export.batch
    assert batch is not None  # the claim skips orphans
    start, stop = export.next_index, export.next_index + SLICE_ROWS
    rows = list(export_rows(batch, start=start, stop=stop))
    data = b"".join(ENCODERS[export.format.removesuffix(".gz")](batch, rows, header=start == 0))
    if export.format.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    # The token in the name: a stale builder's part never overwrites the holder's.
    name = f"{_folder(export)}/part-{len(export.parts):05d}-{export.claim_token[:12]}"
    stored = default_storage.save(name, ContentFile(data))
    if not _record_slice(export, part=stored, stop=stop, rows=len(rows), now=now):
        default_storage.delete(stored)


def _record_slice(export: ExportFile, *, part: str, stop: int, rows: int, now: datetime) -> bool:
    """Record a written slice and release the export, if this builder still holds it; False
    when it lost the claim (its part is then discarded). A claim writes one slice, so the
    token alone says which slice this is."""
    recorded = ExportFile.objects.filter(pk=export.pk, claim_token=export.claim_token).update(
        parts=[*export.parts, part],
        next_index=stop,
        rows_written=F("rows_written") + rows,
        lease_expires_at=now,
    )
    return recorded == 1


def _assemble(export: ExportFile, *, now: datetime) -> None:
    if export.rows_written != export.rows_total:
        # Never serve a file that misses rows (or repeats them).
        _fail(export, f"wrote {export.rows_written} rows of {export.rows_total}", now=now)
        return
    suffix = FORMATS[export.format][1]
    with tempfile.TemporaryFile() as whole:
        for part in export.parts:
            with default_storage.open(part, "rb") as handle:
                shutil.copyfileobj(handle, whole, 1024 * 1024)
        size = whole.tell()
        whole.seek(0)
        name = default_storage.save(f"{_folder(export)}/batch-{export.batch_id}.{suffix}", File(whole))
    ready = ExportFile.objects.filter(pk=export.pk, claim_token=export.claim_token, status=ExportStatus.BUILDING)
    if ready.update(status=ExportStatus.READY, file=name, size=size, parts=[], finished_at=now, lease_expires_at=None):
        _delete_files(export, keep=name)
    else:
        default_storage.delete(name)


def export_attempt_failed(*, export: ExportFile, message: str, now: datetime) -> None:
    """A slice or the assembly raised: retry after a pause, up to MAX_ATTEMPTS, then fail."""
    if export.attempts + 1 >= MAX_ATTEMPTS:
        _fail(export, message, now=now)
        return
    ExportFile.objects.filter(pk=export.pk, claim_token=export.claim_token).update(
        attempts=F("attempts") + 1, error=message, lease_expires_at=now + timedelta(seconds=5 * (export.attempts + 1))
    )


def _fail(export: ExportFile, message: str, *, now: datetime) -> None:
    failed = ExportFile.objects.filter(pk=export.pk, claim_token=export.claim_token).update(
        status=ExportStatus.FAILED, error=message[:2000], parts=[], finished_at=now, lease_expires_at=None
    )
    if failed:
        _delete_files(export)


def export_files_sweep(*, now: datetime, limit: int = 20) -> int:
    """Delete exports no one will download, files after rows: those of deleted batches, and
    those a newer version of the same batch and format replaced once that one is ready (not
    before: someone may still be polling the older one). Not one a builder holds."""
    newer = ExportFile.objects.filter(
        batch=OuterRef("batch"),
        format=OuterRef("format"),
        batch_version__gt=OuterRef("batch_version"),
        status=ExportStatus.READY,
    )
    stale = ExportFile.objects.filter(Q(batch__isnull=True) | Q(Exists(newer)))
    swept = 0
    for export in stale.exclude(lease_expires_at__gt=now)[:limit]:
        deleted, _ = ExportFile.objects.filter(pk=export.pk).exclude(lease_expires_at__gt=now).delete()
        if deleted:
            _delete_files(export)
            swept += 1
    return swept


def _folder(export: ExportFile) -> str:
    return f"exports/{export.pk}"


def _delete_files(export: ExportFile, *, keep: str = "") -> None:
    """Every file under the export's folder but `keep`: parts, and orphans of killed builders."""
    try:
        _, names = default_storage.listdir(_folder(export))
    except FileNotFoundError:
        return
    for name in names:
        path = f"{_folder(export)}/{name}"
        if path != keep:
            default_storage.delete(path)
