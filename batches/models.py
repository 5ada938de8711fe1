import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from batches.catalog import get_model
from batches.ranking import rank_indexes
from batches.states import JOB_ACTIVE, JOB_TRANSITIONS, BatchStatus, FailureReason, JobStatus


class Target(models.Model):
    """A protein chain, stored once per distinct sequence."""

    sequence_sha256 = models.CharField(max_length=64, unique=True)
    sequence = models.TextField()
    length = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sequence[:12]}… ({self.length} aa)"


class Batch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches")
    name = models.CharField(max_length=200)
    model = models.CharField(max_length=50)
    model_version = models.CharField(max_length=50)
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="batches")
    target_name = models.CharField(max_length=200, blank=True)
    options = models.JSONField(default=dict)
    priority = models.SmallIntegerField(default=0)
    # Submission policy. Standardize: ligands are reduced to their parent
    # (largest organic fragment, neutralized) before dedupe, reuse and prediction.
    standardize = models.BooleanField(default=True)
    # At most this many of the batch's jobs in flight at once (null: no cap beyond fair share).
    max_in_flight = models.PositiveIntegerField(null=True, blank=True)
    # Per-batch retry policy and per-attempt timeout; null means the model's own.
    max_attempts = models.PositiveSmallIntegerField(null=True, blank=True)
    timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=32, choices=BatchStatus.choices, default=BatchStatus.QUEUED)
    # Bumped on every change, so clients and caches can tell snapshots apart.
    version = models.PositiveIntegerField(default=1)

    ligands_submitted = models.PositiveIntegerField(default=0)
    ligands_rejected = models.PositiveIntegerField(default=0)
    n_total = models.PositiveIntegerField(default=0)
    n_queued = models.PositiveIntegerField(default=0)
    n_dispatched = models.PositiveIntegerField(default=0)
    n_running = models.PositiveIntegerField(default=0)
    n_succeeded = models.PositiveIntegerField(default=0)
    n_failed = models.PositiveIntegerField(default=0)
    n_cancelled = models.PositiveIntegerField(default=0)
    # Succeeded jobs that reused an earlier prediction: counted apart so
    # throughput and cost count executed work only.
    n_reused = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    request_sha256 = models.CharField(max_length=64, blank=True)
    validation_report = models.JSONField(default=dict)
    manifest = models.JSONField(default=dict)
    # Where batch.* and job.* events are POSTed (docs/webhooks.md); empty: none.
    webhook_url = models.CharField(max_length=2000, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        indexes = [
            # batch_list: a user's batches, newest first, optionally by status.
            models.Index(fields=["owner", "-created_at"], name="batch_owner_created"),
            models.Index(fields=["owner", "status", "-created_at"], name="batch_owner_status"),
            # intake_unfinalized, every idle pass of the background worker: the few batches
            # still validating, without reading the whole table. Partial, so it stays that small.
            models.Index(fields=["created_at"], condition=Q(status="validating"), name="batch_validating"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="batch_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def attempts_allowed(self) -> int:
        """Attempts per job: the batch's own policy, else its model's."""
        return self.max_attempts or get_model(self.model).max_attempts

    @property
    def attempt_timeout(self) -> int:
        """Seconds per attempt: the batch's own policy, else its model's."""
        return self.timeout_seconds or get_model(self.model).timeout_seconds

    @property
    def n_active(self) -> int:
        return self.n_queued + self.n_dispatched + self.n_running

    @property
    def n_finished(self) -> int:
        return self.n_succeeded + self.n_failed + self.n_cancelled


class RowJSONField(models.JSONField):
    """A JSONField that bulk_create inserts row by row in its VALUES list. For several rows
    Django 5.2 on PostgreSQL sends each column as one array through UNNEST, and psycopg
    escapes every quote of every element in Python: 3.5 s for a 100,000-ligand submission's
    10 MB of chunks, against 0.2 s as plain values. A field with get_placeholder opts out."""

    def get_placeholder(self, value: Any, compiler: Any, connection: Any) -> str:
        return "%s"


class DryRun(models.Model):
    """A dry run too large to validate in its request (POST /batches/validate answered 202):
    its ligands wait in IntakeChunk rows as a batch's do, the background worker validates
    them, and the report is kept until the run expires (batches/services/dry_runs.py)."""

    class Status(models.TextChoices):
        VALIDATING = "validating"
        DONE = "done"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dry_runs")
    model = models.CharField(max_length=50)
    options = models.JSONField(default=dict)
    priority = models.SmallIntegerField(default=0)
    standardize = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.VALIDATING)
    ligands_submitted = models.PositiveIntegerField()
    # What the report needs besides the ligands: on_invalid, allow_duplicates, warnings, protein.
    request = models.JSONField(default=dict)
    report = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # dry_runs_expire: the oldest first, whatever their status.
            models.Index(fields=["created_at"], name="dry_run_created"),
        ]

    def __str__(self) -> str:
        return f"dry run {self.id} ({self.ligands_submitted} ligands) [{self.status}]"


class IntakeChunk(models.Model):
    """A slice of a submission's ligands waiting to be validated in the background
    (batches/services/intake.py). Stored by the request that answered 202, validated by
    a background worker under a lease, deleted when the batch's jobs are created. A large
    dry run's ligands wait the same way: a chunk belongs to a batch or to a dry run."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="intake_chunks", null=True, blank=True)
    dry_run = models.ForeignKey(DryRun, on_delete=models.CASCADE, related_name="intake_chunks", null=True, blank=True)
    number = models.PositiveIntegerField()
    # Index in the submission of the chunk's first ligand.
    first_index = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    # The raw ligands as the request read them, unvalidated (batches/validation/chunks.py's format).
    items = RowJSONField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # Claims so far: a chunk that keeps killing its worker is validated one ligand at a time.
    attempts = models.PositiveSmallIntegerField(default=0)
    # Stamped by each claim; the worker's store is conditioned on it, so a worker whose
    # lease ran out (and whose chunk another took) writes nothing.
    claim_token = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The validated ligands, in order: accepted and rejected (intake.py's wire format).
    results = RowJSONField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "number"]
        indexes = [
            # intake_claim: pending chunks by their number within their batch, then age, so
            # every waiting submission gets its next chunk validated in turn (a 600-ligand
            # batch does not wait behind a 100,000-ligand one). Partial, so it holds only the
            # chunks still to validate.
            models.Index(fields=["number", "id"], condition=Q(status="pending"), name="intake_pending_turn"),
        ]
        constraints = [
            # The unique index also serves intake_finalize's "this batch's chunks in order".
            models.UniqueConstraint(fields=["batch", "number"], name="intake_batch_number_unique"),
            models.UniqueConstraint(fields=["dry_run", "number"], name="intake_dry_run_number_unique"),
            models.CheckConstraint(
                condition=Q(batch__isnull=False, dry_run__isnull=True) | Q(batch__isnull=True, dry_run__isnull=False),
                name="intake_chunk_has_one_parent",
            ),
        ]

    def __str__(self) -> str:
        return f"chunk {self.number} of {self.batch_id or self.dry_run_id} [{self.status}]"


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the unique (batch, index) leads with it.
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="jobs", db_index=False)
    # Denormalised from the batch so the fair-share claim query needs no join.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    priority = models.SmallIntegerField(default=0)
    index = models.PositiveIntegerField(help_text="Position of the ligand in the submitted input (0-based).")
    name = models.CharField(max_length=200)
    input_smiles = models.TextField()
    canonical_smiles = models.TextField()
    inchikey = models.CharField(max_length=27, blank=True)
    # What standardization did to the submitted ligand: {"removed_fragments":
    # [smiles…], "changes": [text…], "flags": [code…]}; empty when nothing changed.
    standardization = models.JSONField(default=dict, blank=True)

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True)
    # Stamped by each claim (and each adoption of a reaped job); every write
    # after the claim is conditioned on it, so a stale dispatcher's late write
    # matches no row.
    claim_token = models.CharField(max_length=64, blank=True)
    call_id = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    failure_reason = models.CharField(max_length=32, choices=FailureReason.choices, blank=True)
    failure_message = models.TextField(blank=True)

    result = models.JSONField(null=True, blank=True)
    qed = models.FloatField(null=True, blank=True)
    mol_weight = models.FloatField(null=True, blank=True)
    clogp = models.FloatField(null=True, blank=True)
    affinity_pred_value = models.FloatField(null=True, blank=True)
    affinity_probability_binary = models.FloatField(null=True, blank=True)
    confidence_score = models.FloatField(null=True, blank=True)
    artifact = models.FileField(upload_to="artifacts/", blank=True, max_length=300)
    # sha256 of (model, version, parameters, target, canonical ligand): equal
    # keys are the same prediction, computed once and reused.
    reuse_key = models.CharField(max_length=64, blank=True)
    reused_from = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "index"]
        # Each index names the query that uses it. Inserts write only the
        # primary key, the unique (batch, index), job_batch_status and
        # job_batch_queue: the others are partial on statuses a job reaches later.
        # The unique (batch, index) serves the batch's jobs in input order
        # (job_list, exports, cascade deletes), so `batch` has no index of its own.
        indexes = [
            # jobs_transition within one batch (cancel, retry: `batch_id = … AND
            # status = …`), _claim_batch's in-flight reuse keys (status in held),
            # and in input order: job_list by status, and Ranking._unranked's rows
            # of each status other than succeeded (`results?status=all`).
            models.Index(fields=["batch", "status", "index"], name="job_batch_status"),
            # _claim_batch: a batch's ready jobs in input order. Partial, so it
            # stays as small as the queue however many jobs have finished.
            models.Index(fields=["batch", "index"], condition=Q(status=JobStatus.QUEUED), name="job_batch_queue"),
            # jobs_reap: dispatched/running jobs whose lease ran out.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status__in=[JobStatus.DISPATCHED, JobStatus.RUNNING]),
                name="job_active_lease",
            ),
            # jobs_renew (the heartbeat), claim_jobs' read-back and the reaper's
            # adoption: the jobs a dispatcher holds, by claim token.
            models.Index(
                fields=["claim_token"],
                condition=Q(status__in=[JobStatus.DISPATCHED, JobStatus.RUNNING]),
                name="job_held_token",
            ),
            # reusable_results and _one_per_molecule: an earlier success with the same reuse key.
            models.Index(fields=["reuse_key"], condition=Q(status=JobStatus.SUCCEEDED), name="job_reuse"),
            # results_list (batches/ranking.py): per sortable metric and direction,
            # `(batch, rank key, index) WHERE status = 'succeeded'`.
            *rank_indexes(),
        ]
        constraints = [
            models.UniqueConstraint(fields=["batch", "index"], name="job_batch_index_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.status}]"

    @property
    def is_active(self) -> bool:
        return self.status in JOB_ACTIVE

    @staticmethod
    def check_transition(current: str, target: str) -> None:
        if target not in JOB_TRANSITIONS[current]:
            raise ValueError(f"illegal job transition {current} → {target}")


class ExportStatus(models.TextChoices):
    PENDING = "pending"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


EXPORT_CLAIMABLE = (ExportStatus.PENDING, ExportStatus.BUILDING)


class ExportFile(models.Model):
    """A large export built once, in slices, by the background worker (batches/export_files.py).

    One row per (batch, batch version, format): a batch that changed gets a new file, an
    unchanged one reuses this. The batch link is SET_NULL, not CASCADE, so a deleted batch
    leaves the row behind for the background sweep to delete its files (files after rows)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    batch = models.ForeignKey(Batch, on_delete=models.SET_NULL, null=True, related_name="export_files")
    batch_version = models.PositiveIntegerField()
    format = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    # Slices cover input indexes [next_index, next_index + slice): the resume point.
    next_index = models.PositiveIntegerField(default=0)
    index_end = models.PositiveIntegerField(default=0)
    # Storage names of the slices written so far, in order; concatenated when done.
    parts = models.JSONField(default=list, blank=True)
    file = models.CharField(max_length=300, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # Stamped by each claim; every write of the builder is conditioned on it.
    claim_token = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # export_claim: the oldest pending export, or a building one whose lease ran out.
            models.Index(fields=["created_at"], condition=Q(status__in=EXPORT_CLAIMABLE), name="export_claimable"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["batch", "batch_version", "format"], name="export_once_per_version"),
        ]

    def __str__(self) -> str:
        return f"{self.format} export of {self.batch_id} v{self.batch_version} [{self.status}]"

    @property
    def progress_percent(self) -> float:
        if self.status == ExportStatus.READY:
            return 100.0
        return round(100 * self.rows_written / self.rows_total, 1) if self.rows_total else 0.0


# Webhook models live in their own module; imported here so they belong to this app.
from batches.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSecret  # noqa: E402, F401
