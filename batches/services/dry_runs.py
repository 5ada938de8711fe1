"""Dry runs too large to validate in their request: the same path as a large submission.

POST /batches/validate with more ligands than OMTX_INLINE_VALIDATION_LIGANDS answers the
whole-batch checks (model, options, protein, count) at once, stores the raw ligands in
IntakeChunk rows under a DryRun, and answers 202. The background worker validates the chunks
as it does a batch's (batches/services/intake.py); finalize writes the report an inline dry
run would have answered, under the run's row lock and only from `validating`, so two workers
finishing its last chunks write it once. Nothing of a dry run becomes a batch or a job. Runs
are deleted OMTX_DRY_RUN_HOURS after they were made, done or not.
"""

from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from batches.catalog import get_model
from batches.models import DryRun, IntakeChunk
from batches.selectors import batch_uuid
from batches.services.intake import PENDING, checked_ligands
from batches.services.submission import (
    Submission,
    batch_check,
    dry_run_report,
    protein_summary,
    store_intake_chunks,
)
from batches.validation.ligands import dedupe
from omtx_hub.errors import NotFound

# Expired runs deleted per background pass: each takes its chunks with it.
EXPIRE_AT_ONCE = 100


def dry_run_start(*, owner: User, submission: Submission) -> DryRun:
    """Store a large dry run for the background worker, after the whole-batch checks."""
    checked = batch_check(submission=submission)
    with transaction.atomic():
        run = DryRun.objects.create(
            owner=owner,
            model=checked.spec.name,
            options=checked.params,
            priority=submission.priority,
            standardize=submission.standardize,
            ligands_submitted=len(submission.ligands),
            request={
                "on_invalid": submission.on_invalid,
                "allow_duplicates": submission.allow_duplicates,
                "warnings": submission.warnings,
                "protein": protein_summary(owner, submission, checked.protein),
            },
        )
        store_intake_chunks(submission.ligands, dry_run=run)
    return run


def dry_run_get(*, user: User, dry_run_id: UUID | str) -> DryRun:
    """The user's own dry run: someone else's, like a missing one or a malformed id (checked
    before the query, where the ORM would raise a 500), is not found."""
    pk = batch_uuid(dry_run_id)
    run = DryRun.objects.filter(pk=pk, owner_id=user.pk).first() if pk else None
    if run is None:
        raise NotFound("Dry run not found.")
    return run


def dry_run_delete(*, run: DryRun) -> None:
    """Drop a run early, validated or not; a worker holding one of its chunks stores nothing."""
    run.delete()


def dry_run_finalize(*, dry_run_id: UUID) -> bool:
    """The report of a dry run whose chunks are all validated; whether this call wrote it."""
    with transaction.atomic():
        run = DryRun.objects.select_for_update().filter(pk=dry_run_id, status=DryRun.Status.VALIDATING).first()
        if run is None or run.intake_chunks.filter(status=PENDING).exists():
            return False
        asked = run.request
        report = dedupe(
            checked_ligands(run.intake_chunks.all()),
            standardize=run.standardize,
            allow_duplicates=asked.get("allow_duplicates", False),
        )
        summary = dry_run_report(
            report=report,
            spec=get_model(run.model),
            params=run.options,
            protein=asked["protein"],
            on_invalid=asked.get("on_invalid", "skip"),
            warnings=asked.get("warnings", []),
            owner=run.owner,
            priority=run.priority,
        )
        DryRun.objects.filter(pk=run.pk).update(status=DryRun.Status.DONE, report=summary, finished_at=timezone.now())
        run.intake_chunks.all().delete()
    return True


def dry_runs_unfinalized() -> list[UUID]:
    """Runs still validating with no chunk pending: all validated, the report still owed."""
    pending = IntakeChunk.objects.filter(dry_run=OuterRef("pk"), status=PENDING)
    return list(
        DryRun.objects.filter(status=DryRun.Status.VALIDATING).filter(~Exists(pending)).values_list("pk", flat=True)
    )


def dry_runs_expire(*, now: datetime | None = None) -> int:
    """Delete up to EXPIRE_AT_ONCE runs older than OMTX_DRY_RUN_HOURS; how many went."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.OMTX_DRY_RUN_HOURS)
    oldest = DryRun.objects.filter(created_at__lt=cutoff).order_by("created_at")
    expired = list(oldest.values_list("pk", flat=True)[:EXPIRE_AT_ONCE])
    if expired:
        DryRun.objects.filter(pk__in=expired).delete()
    return len(expired)


def dry_run_expires_at(run: DryRun) -> datetime:
    return run.created_at + timedelta(hours=settings.OMTX_DRY_RUN_HOURS)
