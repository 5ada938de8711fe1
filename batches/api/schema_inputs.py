"""The v3 contract for the OpenAPI schema: what each endpoint takes (path,
query and header parameters with their types and bounds, a request example).
Enums come from `states.py`, metric names from the registry."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter

from batches import exports, states
from batches.api.pagination import MAX_LIMIT, MAX_OFFSET
from batches.api.schemas import STRUCTURE_TYPES, numeric_metrics, registry_metrics
from batches.catalog import ALIASES, MODELS
from batches.selectors import SEARCH_MAX_LENGTH

# --- requests ----------------------------------------------------------------

SUBMISSION_EXAMPLE = OpenApiExample(
    "Two ligands",
    request_only=True,
    media_type="application/json",
    value={
        "name": "example",
        "model": "ligand-profile",
        "protein_name": "CDK2 fragment",
        "protein_sequence": "MENFQKVEKIGEGTYGVVYKARNKLTGEVVALKKIRL",
        "ligands": [{"name": "aspirin", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}, "CCO"],
        "options": {"conformer": False},
    },
)


# --- parameters --------------------------------------------------------------

BATCH_ID = OpenApiParameter("batch_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The batch id.")
JOB_ID = OpenApiParameter("job_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The job id.")
EXPORT_ID = OpenApiParameter("export_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The export file id.")
DRY_RUN_ID = OpenApiParameter("dry_run_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The dry run id.")
PAGE = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description="Page size, 1 to 1000 (default 50).",
    ),
    OpenApiParameter(
        "offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, description="Items to skip (default 0)."
    ),
]


def status_parameter(choices: list[str], description: str, *, alone: str | None = None) -> OpenApiParameter:
    """Comma-separated statuses, at least one (`status=` names none: 400), each once; `alone`,
    a value that stands only by itself."""
    items = {"type": "string", "enum": choices}
    listed: dict[str, Any] = {"type": "array", "minItems": 1, "uniqueItems": True, "items": items}
    if alone is not None:
        only = {"type": "array", "minItems": 1, "maxItems": 1, "items": {"type": "string", "enum": [alone]}}
        listed = {"oneOf": [listed, only]}
    return OpenApiParameter(
        "status", listed, style="form", explode=False, description=f"{description} Comma-separated, each once."
    )


def threshold_parameters() -> list[OpenApiParameter]:
    """`min_<metric>` and `max_<metric>` for each numeric metric of the registry."""
    metrics = registry_metrics()
    return [
        OpenApiParameter(
            f"{prefix}{name}",
            OpenApiTypes.DOUBLE,
            description=f"Keep rows whose {metrics[name][0].label} is {word} this "
            f"({', '.join(metrics[name][1])}; other models refuse it with 400).",
        )
        for name in numeric_metrics()
        for prefix, word in (("min_", "at least"), ("max_", "at most"))
    ]


def _instant_parameter(name: str, word: str) -> OpenApiParameter:
    # What batches/api/params.py reads: RFC 3339, nothing looser.
    either = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}
    return OpenApiParameter(
        name, either, description=f"Batches created {word} this RFC 3339 date-time, or date (its midnight UTC)."
    )


BATCH_LIST_PARAMETERS = [
    status_parameter(list(states.BatchStatus.values), "Batch statuses to keep."),
    OpenApiParameter("model", str, enum=sorted({*MODELS, *ALIASES}), description="Batches of this model."),
    OpenApiParameter(
        "search",
        {"type": "string", "maxLength": SEARCH_MAX_LENGTH, "pattern": "^[^\\x00-\\x1f\\x7f]*$"},
        description="Text in the batch name (case-insensitive); no control characters.",
    ),
    _instant_parameter("created_after", "at or after"),
    _instant_parameter("created_before", "before"),
    *PAGE,
]
RESULTS_PARAMETERS = [
    BATCH_ID,
    OpenApiParameter(
        "sort", str, enum=numeric_metrics(), description="Metric to rank by (default: the model's ranking metric)."
    ),
    OpenApiParameter("order", str, enum=["asc", "desc"], description="Override the metric's direction."),
    status_parameter(
        list(states.JobStatus.values),
        "Job statuses to keep (default `succeeded`); `all` alone keeps every one.",
        alone="all",
    ),
    *threshold_parameters(),
    *PAGE,
    OpenApiParameter(
        "cursor",
        {"type": "string", "maxLength": 1000},
        description="A page's `next_cursor`: the page after it, under the same sort, order, status and "
        "filters (another query's cursor: 400). Instead of `offset`.",
    ),
]
JOB_LIST_PARAMETERS = [BATCH_ID, status_parameter(list(states.JobStatus.values), "Job statuses to keep."), *PAGE]
EXPORT_PARAMETERS = [
    BATCH_ID,
    OpenApiParameter(
        "format", str, enum=list(exports.FORMATS), default="csv", description="Export format; `.gz`: gzip-compressed."
    ),
]
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": 200},
    OpenApiParameter.HEADER,
    description="Replays of one key with the same body return the first batch (200); with another body, 409.",
)
LOCATION = OpenApiParameter(
    "Location", OpenApiTypes.URI, OpenApiParameter.HEADER, description="The batch's URL.", response=[200, 201]
)
STRUCTURE_FORMAT = OpenApiParameter(
    "fmt",
    str,
    OpenApiParameter.PATH,
    enum=list(STRUCTURE_TYPES),
    description="The structure's suffix; 404 when the job's structure has the other one.",
)
