"""Server-rendered shells of the batch pages. Each page renders what it knows at load;
static/batch.js and static/submit.js keep it current over the websocket and the API, so
the pages hold no logic the API does not already have: the same selectors decide who sees what.

Another user's batch, a missing one and a malformed id are one 404, as in the API."""

from pathlib import Path
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from batches.api.representations import batch_status, metric_fields
from batches.catalog import DEFAULT_MODEL, MODELS, get_model
from batches.models import Batch
from batches.selectors import batch_get, batch_list, batch_progress, sees_all
from batches.validation.files import FORMATS
from omtx_hub.errors import NotFound

BATCHES_PER_PAGE = 25
# Rejected ligands rendered with the page; the export lists every one of them.
REJECTED_SHOWN = 200
EXPORT_FORMATS = ("csv", "jsonl", "sdf", "zip")
# The demo target (batches/demo/README.md), one click away on the submission page.
DEMO_FASTA = Path(__file__).resolve().parents[1] / "demo" / "cdk2_human.fasta"


@never_cache
@login_required
def batch_list_page(request: HttpRequest) -> HttpResponse:
    staff = sees_all(request.user)
    batches = batch_list(user=request.user)
    if staff:
        batches = batches.select_related("owner")
    page = Paginator(batches, BATCHES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [{"batch": batch, "progress": batch_progress(batch)} for batch in page]
    return render(request, "batches/list.html", {"page": page, "rows": rows, "staff": staff})


@never_cache
@login_required
def batch_page(request: HttpRequest, batch_id: UUID) -> HttpResponse:
    batch = _visible_batch(request, batch_id)
    report = batch.validation_report or {}
    rejected = report.get("rejected_ligands", [])
    context = {
        "batch": batch,
        "status": batch_status(batch),
        "metrics": metric_fields(batch.model),
        "default_rank": get_model(batch.model).default_rank,
        "rejected": rejected[:REJECTED_SHOWN],
        "rejected_total": len(rejected),
        "validation_error": report.get("error"),
        "exports": [(fmt, f"{_api('batch-export', batch)}?format={fmt}") for fmt in EXPORT_FORMATS],
        "page_config": _batch_config(batch),
    }
    return render(request, "batches/detail.html", context)


def _visible_batch(request: HttpRequest, batch_id: UUID) -> Batch:
    try:
        return batch_get(user=request.user, batch_id=batch_id)
    except NotFound as exc:
        raise Http404("No such batch.") from exc


def _api(name: str, batch: Batch) -> str:
    return reverse(f"v3:{name}", kwargs={"batch_id": batch.pk})


def _batch_config(batch: Batch) -> dict[str, Any]:
    """What static/batch.js needs beyond the status: where to read and act."""
    return {
        "batch": str(batch.pk),
        "socket": f"/ws/v3/batches/{batch.pk}/",
        "status_url": _api("batch-status", batch),
        "results_url": _api("batch-results", batch),
        "cancel_url": _api("batch-cancel", batch),
        "retry_url": _api("batch-retry", batch),
        "default_rank": get_model(batch.model).default_rank,
        # An export of more rows (accepted and rejected ligands) is built as a file first
        # (202, then poll); the page compares with the live counts when a button is pressed.
        "export_inline_rows": settings.OMTX_EXPORT_INLINE_ROWS,
    }


@never_cache
@login_required
def batch_new_page(request: HttpRequest) -> HttpResponse:
    models = [_model_choice(name) for name in MODELS]
    config = {
        "validate_url": reverse("v3:batch-validate"),
        "create_url": reverse("v3:batch-list"),
        "page_url": reverse("batch-page-list"),
    }
    context = {
        "models": models,
        "default_model": DEFAULT_MODEL,
        "file_formats": sorted(FORMATS),
        "demo_fasta": DEMO_FASTA.read_text(),
        "page_config": config,
    }
    return render(request, "batches/new.html", context)


def _model_choice(name: str) -> dict[str, Any]:
    spec = MODELS[name]
    return {"name": spec.name, "title": spec.title, "description": spec.description}
