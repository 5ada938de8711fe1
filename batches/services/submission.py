"""Submission: validate everything first, then store the batch and its jobs at once."""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import rdkit
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from batches.catalog import MODELS, get_model
from batches.changes import batches_changed_on_commit
from batches.engine.availability import check_executor
from batches.models import Batch, DryRun, IntakeChunk, Target
from batches.queue import submission_position, work_estimate
from batches.registry import ModelSpec
from batches.services.job_rows import create_jobs
from batches.states import BatchStatus
from batches.validation.chunks import encode_raw
from batches.validation.files import RawLigand
from batches.validation.ligands import LigandReport, validate_ligands
from batches.validation.protein import Protein, parse_protein
from batches.validation.smiles import LigandRejected
from batches.webhooks.addresses import webhook_url_check
from batches.webhooks.keys import require_secret
from omtx_hub.errors import Conflict, InvalidInput, TooLarge
from ratelimit.quotas import quota_check_submission

ON_INVALID = ("skip", "reject")
# Ligands per IntakeChunk: about a second of a pool process's work, so a crash redoes little
# and 100,000 ligands spread over every core.
INTAKE_CHUNK = 1000
HUB_VERSION = "0.1.0"


@dataclass
class Submission:
    name: str
    model: str
    protein_sequence: Any
    ligands: list[RawLigand | LigandRejected]
    protein_name: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    on_invalid: str = "skip"
    # Reduce each ligand to its standardized parent (batches/validation/standardize.py).
    standardize: bool = True
    # Per-batch execution policy; None means the model's own (or no cap).
    max_in_flight: int | None = None
    max_attempts: int | None = None
    timeout_seconds: int | None = None
    # Notes for the submitter about options accepted but not applied as given.
    warnings: list[str] = field(default_factory=list)
    # Keep ligands that repeat a molecule (the predecessor's clients send one
    # SMILES under several names): each is a job; the claim computes it once.
    allow_duplicates: bool = False
    # Where the batch's events are POSTed (docs/webhooks.md); empty: no webhooks.
    webhook_url: str = ""


@dataclass(frozen=True)
class Checked:
    """What is checked of a submission as a whole, before any ligand."""

    spec: ModelSpec
    params: dict[str, Any]
    protein: Protein


@dataclass(frozen=True)
class Prepared(Checked):
    report: LigandReport


def batch_prepare(*, submission: Submission) -> Prepared:
    """Validate a submission without storing anything; raise on what blocks it."""
    checked = batch_check(submission=submission)
    report = validate_ligands(
        submission.ligands,
        checked.spec.limits,
        standardize=submission.standardize,
        allow_duplicates=submission.allow_duplicates,
    )
    return Prepared(spec=checked.spec, params=checked.params, protein=checked.protein, report=report)


def batch_check(*, submission: Submission) -> Checked:
    """The whole-batch checks (model, options, policy, count, protein): cheap, so the
    request that stores a large batch for background validation still answers them."""
    spec = get_model(submission.model)
    params = spec.clean_params(submission.options)
    if submission.on_invalid not in ON_INVALID:
        raise InvalidInput(f"on_invalid must be one of {list(ON_INVALID)}.", code="invalid_option")
    count = len(submission.ligands)
    if count > spec.limits.max_ligands:
        raise TooLarge(f"{count} ligands; a batch holds at most {spec.limits.max_ligands}.")
    if count == 0:
        raise InvalidInput("No ligands given.", code="no_ligands")
    _check_policy(submission, spec)
    if submission.webhook_url:
        webhook_url_check(submission.webhook_url)
    protein = parse_protein(submission.protein_sequence, spec.limits)
    return Checked(spec=spec, params=params, protein=protein)


MIN_TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 10
# The most jobs any model's batch holds: a higher cap caps nothing (and would not fit
# the column, a 500 instead of a 400).
MAX_IN_FLIGHT = max(spec.limits.max_ligands for spec in MODELS.values())
# The longest any model allows; each model's own bound is checked against its spec.
MAX_TIMEOUT_SECONDS = max(spec.timeout_seconds for spec in MODELS.values())


def _check_policy(submission: Submission, spec: ModelSpec) -> None:
    """Per-batch policy within the model's bounds: a batch may be stricter than
    the model, never looser."""
    timeout = submission.timeout_seconds
    if timeout is not None and not MIN_TIMEOUT_SECONDS <= timeout <= spec.timeout_seconds:
        raise InvalidInput(
            f"timeout_seconds must be between {MIN_TIMEOUT_SECONDS} and {spec.timeout_seconds} for {spec.name}.",
            code="invalid_option",
            details={"timeout_seconds": timeout},
        )
    if submission.max_attempts is not None and not 1 <= submission.max_attempts <= MAX_ATTEMPTS:
        raise InvalidInput(
            f"max_attempts must be between 1 and {MAX_ATTEMPTS}.",
            code="invalid_option",
            details={"max_attempts": submission.max_attempts},
        )
    if submission.max_in_flight is not None and not 1 <= submission.max_in_flight <= MAX_IN_FLIGHT:
        raise InvalidInput(
            f"max_in_flight must be between 1 and {MAX_IN_FLIGHT}.",
            code="invalid_option",
            details={"max_in_flight": submission.max_in_flight},
        )


def reject_if_needed(report: LigandReport, on_invalid: str) -> None:
    """Raise when the batch as a whole is refused: no valid ligand, or any invalid one
    under on_invalid=reject."""
    if not report.accepted:
        raise InvalidInput("No valid ligands in the batch.", code="no_valid_ligands", details=report.summary())
    if report.rejected and on_invalid == "reject":
        raise InvalidInput(
            f"{len(report.rejected)} of {report.submitted} ligands are invalid; "
            "nothing was stored (send on_invalid=skip to run the valid ones).",
            code="invalid_ligands",
            details=report.summary(),
        )


def batch_validate(*, submission: Submission, owner: User | None = None) -> dict[str, Any]:
    """The dry run: the per-ligand report, an estimate of cost and, for a
    known owner, where the batch would queue; nothing stored. A large one is validated in
    the background instead (batches/services/dry_runs.py), with the same report."""
    prepared = batch_prepare(submission=submission)
    return dry_run_report(
        report=prepared.report,
        spec=prepared.spec,
        params=prepared.params,
        protein=protein_summary(owner, submission, prepared.protein),
        on_invalid=submission.on_invalid,
        warnings=submission.warnings,
        owner=owner,
        priority=submission.priority,
    )


def validates_inline(submission: Submission) -> bool:
    """Whether a submission is small enough to validate in its request."""
    return len(submission.ligands) <= settings.OMTX_INLINE_VALIDATION_LIGANDS


def protein_summary(owner: User | None, submission: Submission, protein: Protein) -> dict[str, Any]:
    return {
        "name": _target_name(owner, submission, protein),
        "length": len(protein.sequence),
        "header": protein.header,
    }


def dry_run_report(
    *,
    report: LigandReport,
    spec: ModelSpec,
    params: dict[str, Any],
    protein: dict[str, Any],
    on_invalid: str,
    warnings: list[str],
    owner: User | None,
    priority: int,
) -> dict[str, Any]:
    """What a dry run answers, inline or (for a large one) when the background worker is done."""
    summary = report.summary()
    summary["accepted_ligands"] = [
        {
            "index": ok.index,
            "name": ok.name,
            "smiles": ok.smiles,
            "canonical_smiles": ok.canonical_smiles,
            "inchikey": ok.inchikey,
            "heavy_atoms": ok.heavy_atoms,
            "standardization": ok.standardization,
        }
        for ok in report.accepted
    ]
    summary["would_run"] = bool(report.accepted) and not (report.rejected and on_invalid == "reject")
    summary["estimate"] = work_estimate(spec.name, len(report.accepted))
    if owner is not None:
        summary["queue"] = submission_position(owner_id=owner.pk, priority=priority)
    summary["model"] = {"name": spec.name, "version": spec.version, "parameters": params}
    summary["protein"] = protein
    summary["warnings"] = warnings
    return summary


def request_fingerprint(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def batch_create(
    *,
    owner: User,
    submission: Submission,
    idempotency_key: str | None = None,
    request_sha256: str = "",
) -> tuple[Batch, bool]:
    """Create the batch; returns (batch, created). An Idempotency-Key already
    used with the same request returns the first batch; with another, 409."""
    if idempotency_key:
        existing = _idempotent_match(owner, idempotency_key, request_sha256)
        if existing is not None:
            return existing, False
    if submission.webhook_url:
        require_secret(user=owner)
    quota_check_submission(owner_id=owner.pk, ligands=len(submission.ligands))
    try:
        return _create(owner, submission, idempotency_key, request_sha256), True
    except IntegrityError:
        # Two requests with one key raced; the loser returns the winner's batch.
        existing = _idempotent_match(owner, idempotency_key or "", request_sha256)
        if existing is None:
            raise
        return existing, False


def _create(owner: User, submission: Submission, key: str | None, request_sha256: str) -> Batch:
    """Validated here and queued (small batches), or stored as `validating` for the
    background worker (batches/services/intake.py) when validating would keep the request
    waiting: the whole-batch checks are answered here either way."""
    if validates_inline(submission):
        prepared = batch_prepare(submission=submission)
        reject_if_needed(prepared.report, submission.on_invalid)
        check_executor(prepared.spec)
        return _store(owner, submission, prepared, key, request_sha256)
    checked = batch_check(submission=submission)
    check_executor(checked.spec)
    return _store_for_validation(owner, submission, checked, key, request_sha256)


def _check_quota_locked(owner: User, ligands: int) -> None:
    """The quotas again, under the owner's row lock and in the transaction that stores the
    batch: parallel submissions of one owner are checked one after another, each seeing the
    batches the others stored (batch_create's first check, before validation, only fails
    early)."""
    User.objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True).get()
    quota_check_submission(owner_id=owner.pk, ligands=ligands)


def _idempotent_match(owner: User, key: str, request_sha256: str) -> Batch | None:
    existing = Batch.objects.filter(owner=owner, idempotency_key=key).first()
    if existing is not None and existing.request_sha256 != request_sha256:
        raise Conflict(
            "This Idempotency-Key was used with a different request.",
            code="idempotency_conflict",
            details={"batch_id": str(existing.id)},
        )
    return existing


def _manifest(prepared: Checked, target: Target, submission: Submission) -> dict[str, Any]:
    spec = prepared.spec
    return {
        "model": spec.name,
        "model_version": spec.version,
        "weights_revision": spec.weights_revision,
        "parameters": prepared.params,
        "executor": spec.executor,
        "gpu": spec.gpu,
        "timeout_seconds": submission.timeout_seconds or spec.timeout_seconds,
        "max_attempts": submission.max_attempts or spec.max_attempts,
        "max_in_flight": submission.max_in_flight,
        "standardize": submission.standardize,
        "target_sha256": target.sequence_sha256,
        "rdkit_version": rdkit.__version__,
        "hub_version": HUB_VERSION,
    }


def _target_name(owner: User | None, submission: Submission, protein: Protein) -> str:
    """The given name; else what the owner called this sequence before; else
    one read from the FASTA header or made from the sequence."""
    if submission.protein_name.strip():
        return submission.protein_name.strip()[:200]
    if not protein.header and owner is not None:
        earlier = (
            Batch.objects.filter(owner=owner, target__sequence_sha256=_sha256(protein.sequence))
            .exclude(target_name="")
            .order_by("-created_at")
            .values_list("target_name", flat=True)
            .first()
        )
        if earlier:
            return earlier
    return protein.label


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _store(owner: User, submission: Submission, prepared: Prepared, key: str | None, request_sha256: str) -> Batch:
    report = prepared.report
    with transaction.atomic():
        _check_quota_locked(owner, len(submission.ligands))
        batch = Batch.objects.create(
            **_batch_fields(owner, submission, prepared, key, request_sha256),
            ligands_submitted=report.submitted,
            validation_report={**report.summary(), "warnings": submission.warnings},
        )
        create_jobs(batch, report)
        batches_changed_on_commit(batch_ids=[batch.pk], owner_ids=[owner.pk])
    return batch


def _store_for_validation(
    owner: User, submission: Submission, checked: Checked, key: str | None, request_sha256: str
) -> Batch:
    """The batch in `validating` with its raw ligands in chunks, for the background worker;
    what the report needs later (on_invalid, duplicates policy, warnings) rides along."""
    ligands = submission.ligands
    with transaction.atomic():
        _check_quota_locked(owner, len(ligands))
        batch = Batch.objects.create(
            **_batch_fields(owner, submission, checked, key, request_sha256),
            status=BatchStatus.VALIDATING,
            ligands_submitted=len(ligands),
            validation_report={
                "on_invalid": submission.on_invalid,
                "allow_duplicates": submission.allow_duplicates,
                "warnings": submission.warnings,
            },
        )
        store_intake_chunks(ligands, batch=batch)
        batches_changed_on_commit(batch_ids=[batch.pk], owner_ids=[owner.pk])
    return batch


def store_intake_chunks(
    ligands: list[RawLigand | LigandRejected], *, batch: Batch | None = None, dry_run: DryRun | None = None
) -> None:
    """The raw ligands of a batch or a dry run, in chunks for the background worker."""
    IntakeChunk.objects.bulk_create(
        IntakeChunk(
            batch=batch,
            dry_run=dry_run,
            number=number,
            first_index=start,
            size=len(chunk),
            items=[encode_raw(ligand) for ligand in chunk],
        )
        for number, start in enumerate(range(0, len(ligands), INTAKE_CHUNK))
        for chunk in [ligands[start : start + INTAKE_CHUNK]]
    )


def _batch_fields(
    owner: User, submission: Submission, checked: Checked, key: str | None, request_sha256: str
) -> dict[str, Any]:
    sequence = checked.protein.sequence
    target, _ = Target.objects.get_or_create(
        sequence_sha256=_sha256(sequence),
        defaults={"sequence": sequence, "length": len(sequence)},
    )
    return {
        "owner": owner,
        "name": submission.name.strip()[:200] or "Untitled batch",
        "model": checked.spec.name,
        "model_version": checked.spec.version,
        "target": target,
        "target_name": _target_name(owner, submission, checked.protein),
        "options": checked.params,
        "priority": submission.priority,
        "standardize": submission.standardize,
        "max_in_flight": submission.max_in_flight,
        "max_attempts": submission.max_attempts,
        "timeout_seconds": submission.timeout_seconds,
        "idempotency_key": key or None,
        "request_sha256": request_sha256,
        "manifest": _manifest(checked, target, submission),
        "webhook_url": submission.webhook_url,
    }
