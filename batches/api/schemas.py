"""The v3 contract for the OpenAPI schema: what each endpoint returns
(what each takes: `schema_inputs.py`).

Documentation only. Views render the dicts of `representations.py` (and of the
services it calls) and never serialize through these classes; the schema test
and the fuzzer (`make fuzz`) hold the two together. Metric names come from the
registry, statuses from `states.py`: nothing here repeats a list kept elsewhere.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from batches import exports, states
from batches.catalog import MODELS
from batches.registry import OutputField

Fields = dict[str, serializers.Field[Any, Any, Any, Any]]


# --- the error envelope ------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `not_found`, `invalid_ligands`.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.JSONField(
        allow_null=True, help_text="Structured context (per-field errors, rejected ligands, …) or null."
    )
    request_id = serializers.CharField(allow_null=True, help_text="The X-Request-ID of the request, in the logs too.")


class ErrorSerializer(serializers.Serializer[Any]):
    error = ErrorDetailSerializer(help_text="The one error shape of the whole API.")


ERROR_DESCRIPTIONS = {
    400: "Invalid input: a bad body, query parameter or header, or a NUL byte anywhere in the request.",
    401: "No token, or an invalid, expired or revoked one.",
    404: "No such resource, or not yours.",
    409: "The request conflicts with the resource's state, or reuses an Idempotency-Key with another body.",
    413: "The body or the ligand list is larger than allowed.",
    429: "Too many requests; retry after the `Retry-After` header's seconds.",
    503: "The model cannot run on this deployment (for example, its executor is not configured).",
}
# Every authenticated request can be refused for its input, its token or its rate.
COMMON_ERRORS = (400, 401, 429)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The common errors plus `codes`, each with the error envelope."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in sorted({*COMMON_ERRORS, *codes})
    }


# --- progress and outlook ----------------------------------------------------


def _eta_range(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.FloatField(), min_length=2, max_length=2, allow_null=True, help_text=help_text
    )


class ProgressSerializer(serializers.Serializer[Any]):
    total = serializers.IntegerField(min_value=0, help_text="Accepted ligands: one job each.")
    queued = serializers.IntegerField(min_value=0, help_text="Jobs waiting to be claimed.")
    dispatched = serializers.IntegerField(min_value=0, help_text="Jobs handed to an executor, not yet running.")
    running = serializers.IntegerField(min_value=0, help_text="Jobs running.")
    succeeded = serializers.IntegerField(min_value=0, help_text="Jobs finished with a result (reused ones included).")
    reused = serializers.IntegerField(min_value=0, help_text="Succeeded jobs that reused an earlier prediction.")
    failed = serializers.IntegerField(min_value=0, help_text="Jobs failed for good.")
    cancelled = serializers.IntegerField(min_value=0, help_text="Jobs cancelled.")
    rejected = serializers.IntegerField(min_value=0, help_text="Ligands refused at validation (no job).")
    progress_percent = serializers.FloatField(
        min_value=0, max_value=100, help_text="Finished jobs over total, in percent (100 for an empty batch)."
    )
    jobs_per_second = serializers.FloatField(allow_null=True, help_text="Executed jobs per second, once any ran.")
    eta_seconds = serializers.FloatField(allow_null=True, help_text="Seconds left at the observed rate, or null.")
    eta_seconds_range = _eta_range("Optimistic and pessimistic seconds left, or null.")


class EstimateSerializer(serializers.Serializer[Any]):
    jobs = serializers.IntegerField(min_value=0, help_text="Predictions estimated.")
    worker_seconds = serializers.FloatField(min_value=0, help_text="Worker time from the model's per-ligand figure.")
    gpu = serializers.CharField(allow_null=True, help_text="GPU type the model runs on; null for CPU models.")
    gpu_seconds = serializers.FloatField(min_value=0, help_text="GPU time (0 for CPU models).")
    cost_usd = serializers.FloatField(min_value=0, help_text="Estimated GPU cost in USD: an estimate, not a bill.")


class QueuePositionSerializer(serializers.Serializer[Any]):
    batches_ahead = serializers.IntegerField(min_value=0, help_text="The owner's batches that go first.")
    jobs_ahead = serializers.IntegerField(min_value=0, help_text="Queued jobs in those batches.")
    users_sharing = serializers.IntegerField(min_value=1, help_text="Users with queued work sharing the executor.")


class OutlookSerializer(serializers.Serializer[Any]):
    remaining = EstimateSerializer(help_text="Cost of the jobs not finished yet.")
    queue = QueuePositionSerializer(allow_null=True, help_text="Where the batch waits; null when nothing is queued.")
    eta_seconds_range = _eta_range("Seconds left, optimistic and pessimistic, or null when unknown.")
    eta_basis = serializers.ChoiceField(
        choices=["batch", "hub"], allow_null=True, help_text="Whose throughput the ETA uses, or null."
    )


# --- batches -----------------------------------------------------------------

MODEL_NAMES = sorted(MODELS)


class BatchBriefSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(help_text="The batch id.")
    url = serializers.URLField(help_text="Absolute URL of the batch.")
    name = serializers.CharField(help_text="Name given at submission.")
    model = serializers.ChoiceField(choices=MODEL_NAMES, help_text="Model that runs the batch.")
    status = serializers.ChoiceField(choices=states.BatchStatus.choices, help_text="Batch status.")
    total = serializers.IntegerField(min_value=0, help_text="Jobs in the batch.")
    succeeded = serializers.IntegerField(min_value=0, help_text="Jobs succeeded.")
    failed = serializers.IntegerField(min_value=0, help_text="Jobs failed.")
    progress_percent = serializers.FloatField(min_value=0, max_value=100, help_text="Finished jobs, in percent.")
    created_at = serializers.DateTimeField(help_text="Submission time.")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="When the batch reached a terminal status.")


class IntakeSerializer(serializers.Serializer[Any]):
    submitted = serializers.IntegerField(min_value=0, help_text="Ligands submitted.")
    validated = serializers.IntegerField(min_value=0, help_text="Ligands validated so far.")


class BatchStatusSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(help_text="The batch id.")
    batch_id = serializers.UUIDField(help_text="The batch id again, for the predecessor's clients.")
    status = serializers.ChoiceField(choices=states.BatchStatus.choices, help_text="Batch status.")
    is_terminal = serializers.BooleanField(help_text="Whether the status is final.")
    version = serializers.IntegerField(min_value=1, help_text="Bumped on every change of the batch.")
    intake = IntakeSerializer(
        allow_null=True, help_text="Background validation's progress while the batch is `validating`; else null."
    )
    progress = ProgressSerializer(help_text="Job counts, throughput and ETA.")
    outlook = OutlookSerializer(help_text="Remaining cost, queue position and ETA.")
    created_at = serializers.DateTimeField(help_text="Submission time.")
    started_at = serializers.DateTimeField(allow_null=True, help_text="When the first job was claimed.")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="When the batch reached a terminal status.")


class BatchRetrySerializer(BatchStatusSerializer):
    requeued = serializers.IntegerField(min_value=1, help_text="Failed jobs put back in the queue.")


class TargetSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(allow_blank=True, help_text="Protein name, or the FASTA header.")
    length = serializers.IntegerField(min_value=1, help_text="Residues.")
    sequence_sha256 = serializers.CharField(min_length=64, max_length=64, help_text="sha256 of the sequence.")


class RejectedLigandSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField(min_value=0, help_text="Position in the input (0-based).")
    name = serializers.CharField(allow_blank=True, help_text="The ligand's name (or `ligand_<n>`).")
    smiles = serializers.CharField(allow_blank=True, help_text="The SMILES as given.")
    code = serializers.CharField(help_text="Why: `invalid_smiles`, `duplicate`, `too_many_atoms`, …")
    message = serializers.CharField(help_text="Why, for people.")


class StandardizationSummarySerializer(serializers.Serializer[Any]):
    standardize = serializers.BooleanField(help_text="The policy: ligands reduced to their parent (docs/chemistry.md).")
    changed = serializers.IntegerField(min_value=0, help_text="Accepted ligands standardization changed.")
    fragments_removed = serializers.IntegerField(min_value=0, help_text="Accepted ligands with fragments removed.")
    flagged = serializers.IntegerField(min_value=0, help_text="Accepted ligands flagged (standardize=false).")


class StandardizationSerializer(serializers.Serializer[Any]):
    """What standardization did to one ligand; empty when nothing."""

    removed_fragments = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="SMILES of the fragments removed (counter-ions…)."
    )
    changes = serializers.ListField(child=serializers.CharField(), required=False, help_text="Each change, for people.")
    flags = serializers.ListField(
        child=serializers.ChoiceField(choices=["multi_fragment", "charged", "metal"]),
        required=False,
        help_text="What standardize=false kept as given.",
    )


class ValidationSummarySerializer(serializers.Serializer[Any]):
    submitted = serializers.IntegerField(min_value=0, help_text="Ligands given (= accepted + rejected).")
    accepted = serializers.IntegerField(min_value=0, help_text="Ligands accepted (one job each).")
    rejected = serializers.IntegerField(min_value=0, help_text="Ligands refused.")
    standardization = StandardizationSummarySerializer(
        required=False, allow_null=True, help_text="The standardization policy and its counts (null on old batches)."
    )
    rejected_ligands = RejectedLigandSerializer(many=True, help_text="Each refused ligand, in input order.")


class RefusalSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="`no_valid_ligands` or `invalid_ligands`.")
    message = serializers.CharField(help_text="Why the batch was refused.")


class StoredValidationSerializer(ValidationSummarySerializer):
    warnings = serializers.ListField(
        child=serializers.CharField(), help_text="Options accepted but not applied as given."
    )
    error = RefusalSerializer(
        allow_null=True, help_text="Why a batch validated in the background was `rejected` as a whole; else null."
    )


class PolicySerializer(serializers.Serializer[Any]):
    standardize = serializers.BooleanField(help_text="Ligands reduced to their standardized parent.")
    max_in_flight = serializers.IntegerField(
        allow_null=True, min_value=1, help_text="Cap on this batch's jobs in flight, or null."
    )
    max_attempts = serializers.IntegerField(min_value=1, help_text="Attempts per job (the model's unless set).")
    timeout_seconds = serializers.IntegerField(min_value=1, help_text="Per-attempt timeout (the model's unless set).")


class ManifestSerializer(serializers.Serializer[Any]):
    model = serializers.CharField(help_text="Model name.")
    model_version = serializers.CharField(help_text="Model version.")
    weights_revision = serializers.CharField(allow_blank=True, help_text="Weights the model ran with.")
    parameters = serializers.DictField(child=serializers.JSONField(), help_text="Model parameters after defaults.")
    executor = serializers.CharField(help_text="Executor that runs the model (`local`, `modal`).")
    gpu = serializers.CharField(allow_null=True, help_text="GPU type, or null for CPU models.")
    timeout_seconds = serializers.IntegerField(min_value=1, help_text="Per-attempt timeout.")
    max_attempts = serializers.IntegerField(
        required=False, min_value=1, help_text="Attempts per job (absent on batches older than the policy fields)."
    )
    max_in_flight = serializers.IntegerField(
        required=False, allow_null=True, help_text="Cap on the batch's jobs in flight, or null (absent on old batches)."
    )
    standardize = serializers.BooleanField(
        required=False, help_text="Whether ligands were standardized (absent on old batches)."
    )
    target_sha256 = serializers.CharField(help_text="sha256 of the target sequence.")
    rdkit_version = serializers.CharField(help_text="RDKit that validated the ligands.")
    hub_version = serializers.CharField(help_text="Hub release that accepted the batch.")


class BatchLinksSerializer(serializers.Serializer[Any]):
    detail = serializers.URLField(help_text="GET/DELETE the batch.")
    status = serializers.URLField(help_text="GET progress and outlook.")
    results = serializers.URLField(help_text="GET ranked results.")
    export = serializers.URLField(help_text="GET the export (`?format=`).")
    jobs = serializers.URLField(help_text="GET jobs in input order.")
    cancel = serializers.URLField(help_text="POST to cancel.")
    retry = serializers.URLField(help_text="POST to re-queue failed jobs.")


class BatchDetailSerializer(BatchBriefSerializer, BatchStatusSerializer):
    owner = serializers.CharField(help_text="Username of the owner.")
    model_version = serializers.CharField(help_text="Model version the batch runs.")
    priority = serializers.IntegerField(min_value=-10, max_value=10, help_text="Priority within the owner's batches.")
    options = serializers.DictField(child=serializers.JSONField(), help_text="Model parameters after defaults.")
    policy = PolicySerializer(help_text="The batch's execution and standardization policy.")
    target = TargetSerializer(help_text="The protein.")
    validation = StoredValidationSerializer(help_text="What validation accepted and refused.")
    manifest = ManifestSerializer(help_text="Everything needed to reproduce the run.")
    webhook_url = serializers.CharField(
        allow_null=True, help_text="Where the batch's events are POSTed (docs/webhooks.md), or null."
    )
    links = BatchLinksSerializer(help_text="Absolute URLs of the batch's endpoints.")


class LegacySubmittedSerializer(BatchDetailSerializer):
    """The predecessor's answer to POST /batches/submit, the canonical detail beside it."""

    success = serializers.BooleanField(help_text="Always true on a 200.")
    batch_id = serializers.UUIDField(help_text="The batch id.")
    message = serializers.CharField(help_text="What was stored, with any warnings, for people.")
    warnings = serializers.ListField(
        child=serializers.CharField(), help_text="configuration keys accepted but not applied as given."
    )
    total_jobs = serializers.IntegerField(min_value=0, help_text="Jobs stored.")
    estimated_duration_seconds = serializers.FloatField(
        min_value=0, help_text="Worker time of every job: an upper bound (reuse, parallel workers)."
    )
    status_url = serializers.URLField(help_text="GET progress.")
    results_url = serializers.URLField(help_text="GET ranked results.")


# --- jobs and results --------------------------------------------------------

_KIND_FIELDS: dict[str, type[serializers.Field[Any, Any, Any, Any]]] = {
    "float": serializers.FloatField,
    "int": serializers.IntegerField,
    "str": serializers.CharField,
    "bool": serializers.BooleanField,
}
VALUE_KINDS = sorted(_KIND_FIELDS)


def _metric_help(out: OutputField, models: list[str]) -> str:
    unit = f", {out.unit}" if out.unit else ""
    what = f": {out.description}" if out.description else "."
    return f"{out.label} ({', '.join(models)}{unit}){what}"


def registry_metrics() -> dict[str, tuple[OutputField, list[str]]]:
    """Every output of every model, with the models that produce it."""
    found: dict[str, tuple[OutputField, list[str]]] = {}
    for spec in MODELS.values():
        for out in spec.outputs:
            found.setdefault(out.name, (out, []))[1].append(spec.name)
    return found


def numeric_metrics() -> list[str]:
    """Metrics that rank and filter: the registry's non-text outputs."""
    return [name for name, (out, _) in registry_metrics().items() if out.kind in ("float", "int")]


class JobMetricsSerializer(serializers.Serializer[Any]):
    """The job's metrics: its model's outputs (GET /models), once it has any."""

    def get_fields(self) -> Fields:
        return {
            name: _KIND_FIELDS[out.kind](required=False, allow_null=True, help_text=_metric_help(out, models))
            for name, (out, models) in registry_metrics().items()
        }


class JobRowSerializer(serializers.Serializer[Any]):
    job_id = serializers.UUIDField(help_text="The job id.")
    index = serializers.IntegerField(min_value=0, help_text="Position of the ligand in the input (0-based).")
    name = serializers.CharField(help_text="The ligand's name.")
    smiles = serializers.CharField(help_text="The SMILES as given.")
    canonical_smiles = serializers.CharField(help_text="Canonical isomeric SMILES of the standardized parent.")
    standardization = StandardizationSerializer(help_text="What standardization removed or changed.")
    status = serializers.ChoiceField(choices=states.JobStatus.choices, help_text="Job status.")
    metrics = JobMetricsSerializer(help_text="The model's outputs; empty until the job has any.")
    failure_reason = serializers.ChoiceField(
        choices=states.FailureReason.choices, allow_null=True, help_text="Why the job failed, or null."
    )
    failure_message = serializers.CharField(allow_null=True, help_text="The failure, for people, or null.")
    structure_url = serializers.URLField(allow_null=True, help_text="The structure file, or null when there is none.")


class RankedJobRowSerializer(JobRowSerializer):
    rank = serializers.IntegerField(min_value=1, help_text="1-based rank under the requested sort.")


class JobDetailSerializer(JobRowSerializer):
    url = serializers.URLField(help_text="Absolute URL of the job.")
    inchikey = serializers.CharField(allow_blank=True, help_text="InChIKey of the ligand.")
    attempts = serializers.IntegerField(min_value=0, help_text="Attempts made so far.")
    call_id = serializers.CharField(allow_null=True, help_text="Executor call id of the last attempt, or null.")
    created_at = serializers.DateTimeField(help_text="When the job was stored.")
    started_at = serializers.DateTimeField(allow_null=True, help_text="When the last attempt started.")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="When the job finished.")


class MetricFieldSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="Metric key in `metrics`, `sort=` and `min_`/`max_` filters.")
    # Shadows Field.label only for the type checker: DRF pops declared fields off the class.
    label = serializers.CharField(help_text="Display name.")  # type: ignore[assignment]
    unit = serializers.CharField(allow_blank=True, help_text="Unit, or empty when unitless.")
    better = serializers.ChoiceField(
        choices=["higher", "lower", "none"], help_text="Which way is better; `sort` ranks best first."
    )
    kind = serializers.ChoiceField(choices=VALUE_KINDS, help_text="Value type.")
    description = serializers.CharField(allow_blank=True, help_text="What it measures.")


class _PageSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(min_value=0, help_text="Items across all pages.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first.")


class BatchPageSerializer(_PageSerializer):
    results = BatchBriefSerializer(many=True, help_text="Batches, newest first.")


class JobPageSerializer(_PageSerializer):
    results = JobRowSerializer(many=True, help_text="Jobs in input order.")


class ResultsPageSerializer(_PageSerializer):
    next_cursor = serializers.CharField(
        allow_null=True,
        help_text="Pass as `cursor` for the page after this one (as fast deep in the ranking as on top); "
        "null on the last page. `next` uses it when this page was asked for by cursor.",
    )
    results = RankedJobRowSerializer(many=True, help_text="Jobs, best first.")
    batch = BatchStatusSerializer(help_text="The batch's status, so a poller needs one request.")
    metrics = MetricFieldSerializer(many=True, help_text="The model's metrics, with units and direction.")


# --- the dry run -------------------------------------------------------------


class AcceptedLigandSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField(min_value=0, help_text="Position in the input (0-based).")
    name = serializers.CharField(help_text="The ligand's name.")
    smiles = serializers.CharField(help_text="The SMILES as given.")
    canonical_smiles = serializers.CharField(help_text="Canonical isomeric SMILES of the standardized parent.")
    inchikey = serializers.CharField(help_text="InChIKey.")
    heavy_atoms = serializers.IntegerField(min_value=0, help_text="Heavy atoms.")
    standardization = StandardizationSerializer(help_text="What standardization removed or changed.")


class ValidatedModelSerializer(serializers.Serializer[Any]):
    name = serializers.ChoiceField(choices=MODEL_NAMES, help_text="Model (aliases resolved).")
    version = serializers.CharField(help_text="Model version.")
    parameters = serializers.DictField(child=serializers.JSONField(), help_text="Parameters after defaults.")


class ValidatedProteinSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="Target name: given, else from the FASTA header or the sequence.")
    length = serializers.IntegerField(min_value=1, help_text="Residues.")
    header = serializers.CharField(allow_blank=True, help_text="FASTA header, or empty.")


class ValidationReportSerializer(ValidationSummarySerializer):
    accepted_ligands = AcceptedLigandSerializer(many=True, help_text="Each accepted ligand, in input order.")
    would_run = serializers.BooleanField(help_text="Whether creating this batch would store any job.")
    estimate = EstimateSerializer(help_text="Cost of the accepted ligands.")
    queue = QueuePositionSerializer(help_text="Where the batch would queue if submitted now.")
    model = ValidatedModelSerializer(help_text="The model and its parameters.")
    protein = ValidatedProteinSerializer(help_text="The parsed protein.")
    warnings = serializers.ListField(
        child=serializers.CharField(), help_text="Options accepted but not applied as given."
    )


class DryRunSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(help_text="The dry run's id.")
    url = serializers.URLField(help_text="Where to poll it (GET) or drop it (DELETE).")
    status = serializers.ChoiceField(
        choices=["validating", "done"], help_text="`validating` in the background, then `done` with its report."
    )
    intake = IntakeSerializer(allow_null=True, help_text="Validation's progress while `validating`; else null.")
    report = ValidationReportSerializer(
        allow_null=True, help_text="The report an inline dry run answers, once `done`; else null."
    )
    created_at = serializers.DateTimeField(help_text="When the dry run was submitted.")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="When its report was written.")
    expires_at = serializers.DateTimeField(help_text="When it is deleted (OMTX_DRY_RUN_HOURS after submission).")


# --- models ------------------------------------------------------------------


class ModelParameterSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=VALUE_KINDS, help_text="Value type.")
    default = serializers.JSONField(help_text="Value used when the parameter is not given.")
    minimum = serializers.FloatField(allow_null=True, help_text="Smallest value, or null.")
    maximum = serializers.FloatField(allow_null=True, help_text="Largest value, or null.")
    choices = serializers.ListField(
        child=serializers.JSONField(), allow_null=True, help_text="Allowed values, or null for any."
    )


class LimitsSerializer(serializers.Serializer[Any]):
    max_smiles_length = serializers.IntegerField(help_text="Longest SMILES accepted.")
    max_heavy_atoms = serializers.IntegerField(help_text="Most heavy atoms in a ligand.")
    max_total_atoms = serializers.IntegerField(help_text="Most atoms in a ligand, hydrogens included.")
    min_protein_length = serializers.IntegerField(help_text="Shortest protein accepted.")
    max_protein_length = serializers.IntegerField(help_text="Longest protein accepted.")
    max_ligands = serializers.IntegerField(help_text="Most ligands in one batch.")


class ModelInfoSerializer(serializers.Serializer[Any]):
    name = serializers.ChoiceField(choices=MODEL_NAMES, help_text="Model name, for `model` at submission.")
    version = serializers.CharField(help_text="Model version.")
    title = serializers.CharField(help_text="Display name.")
    description = serializers.CharField(help_text="What the model computes.")
    executor = serializers.CharField(help_text="Executor that runs it (`local`, `modal`).")
    gpu = serializers.CharField(allow_null=True, help_text="GPU type, or null for CPU models.")
    default_rank = serializers.CharField(help_text="Metric results rank by when no `sort` is given.")
    parameters = serializers.DictField(child=ModelParameterSerializer(), help_text="`options` the model accepts.")
    limits = LimitsSerializer(help_text="Input limits.")
    metrics = MetricFieldSerializer(many=True, help_text="Outputs, with units and direction.")


class ModelListSerializer(serializers.Serializer[Any]):
    models = ModelInfoSerializer(many=True, help_text="Every model the hub serves.")


# --- downloads ---------------------------------------------------------------

EXPORT_DESCRIPTION = (
    "Streamed, one row or record per input ligand, in the media type of `format`: "
    "`csv` (metrics as columns), `jsonl` (one JSON object per line), `sdf` (3D where a structure exists), "
    "each also gzip-compressed (`csv.gz`, `jsonl.gz`, `sdf.gz`), "
    "or `zip` (results.csv, results.jsonl and every structure file). "
    "Exports of more than `OMTX_EXPORT_INLINE_ROWS` rows answer 202 instead (an export file being built)."
)
STRUCTURE_TYPES = {"sdf": "chemical/x-mdl-sdfile", "cif": "chemical/x-mmcif"}


class ExportFileSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(help_text="The export file's id.")
    batch_id = serializers.UUIDField(help_text="The batch exported.")
    batch_version = serializers.IntegerField(min_value=1, help_text="The batch version the export was asked for.")
    # Plain strings: a second `format`/`status` choice set would collide in the enum names.
    format = serializers.CharField(help_text="Export format: csv, csv.gz, jsonl, jsonl.gz, sdf or sdf.gz.")
    status = serializers.CharField(help_text="pending, building, ready or failed; `ready` and `failed` are terminal.")
    rows_total = serializers.IntegerField(min_value=0, help_text="Rows the file will hold: one per input ligand.")
    rows_written = serializers.IntegerField(min_value=0, help_text="Rows written so far.")
    progress_percent = serializers.FloatField(min_value=0, max_value=100, help_text="rows_written / rows_total.")
    size_bytes = serializers.IntegerField(min_value=0, allow_null=True, help_text="File size once ready.")
    error = serializers.CharField(allow_blank=True, help_text="Why the last attempt failed, if one did.")
    created_at = serializers.DateTimeField(help_text="When it was first asked for.")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="When it turned ready or failed.")
    url = serializers.URLField(help_text="GET to poll progress.")
    download = serializers.URLField(allow_null=True, help_text="GET the file once ready (null before).")


EXPORT_FILE_DESCRIPTION = (
    "An export larger than `OMTX_EXPORT_INLINE_ROWS` rows, being built; poll `Location`. "
    "Once its file is ready the same request answers 303 to the download."
)


def export_responses() -> dict[tuple[int, str], OpenApiResponse]:
    """One 200 body per export format, under the media type the view sends; a 202 for
    large exports."""
    return {
        **{
            (200, content_type): OpenApiResponse(OpenApiTypes.BINARY, description=EXPORT_DESCRIPTION)
            for content_type, _ in exports.FORMATS.values()
        },
        (202, "application/json"): OpenApiResponse(ExportFileSerializer, description=EXPORT_FILE_DESCRIPTION),
    }


EXPORT_FILE_DOWNLOAD = (
    "The complete export file, with its Content-Length. A storage that signs URLs (GCS) answers 302 to one instead."
)


def export_file_responses() -> dict[tuple[int, str], OpenApiResponse]:
    return {
        **{
            (200, content_type): OpenApiResponse(OpenApiTypes.BINARY, description=EXPORT_FILE_DOWNLOAD)
            for name, (content_type, _) in exports.FORMATS.items()
            if name != "zip"
        },
    }


def structure_responses() -> dict[tuple[int, str], OpenApiResponse]:
    description = "The structure file: SDF for ligand-profile, mmCIF for boltz2."
    return {
        (200, content_type): OpenApiResponse(OpenApiTypes.BINARY, description=description)
        for content_type in STRUCTURE_TYPES.values()
    }


def with_errors(ok: dict[Any, Any], *codes: int) -> dict[Any, Any]:
    """Binary 200s with JSON errors: an error's media type must be named too
    once any response names one."""
    return {**ok, **{(code, "application/json"): response for code, response in errors(*codes).items()}}
