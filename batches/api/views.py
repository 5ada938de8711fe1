"""v3 batch endpoints. Views parse, call one service or selector, and render."""

from typing import Any

from django.core.files.storage import default_storage
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from batches import exports
from batches.api import cached_reads, schema_inputs, schemas
from batches.api import representations as rep
from batches.api.downloads import artifact_response
from batches.api.inputs import (
    LegacySubmissionSerializer,
    SubmissionSerializer,
    SubmissionUploadSerializer,
    submission_from_request,
)
from batches.api.pagination import Pagination
from batches.catalog import MODELS
from batches.export_files import export_file_get, export_file_request, export_is_large
from batches.models import ExportFile, ExportStatus
from batches.selectors import CHANGE_BATCH, DELETE_BATCH, batch_get, job_get, job_list
from batches.services.dry_runs import dry_run_delete, dry_run_get, dry_run_start
from batches.services.lifecycle import batch_cancel, batch_delete, batch_retry_failed
from batches.services.submission import batch_create, batch_validate, validates_inline
from batches.states import BatchStatus as BatchState
from omtx_hub.errors import Conflict, InvalidInput, NotFound
from omtx_hub.requests import request_user

# A submission is JSON, or a multipart form with the ligands as a file. Not an urlencoded
# form: it cannot carry the file, and the JSON body carries everything else.
SUBMISSION_PARSERS = [JSONParser, MultiPartParser]
SUBMISSION_BODIES = {"application/json": SubmissionSerializer, "multipart/form-data": SubmissionUploadSerializer}


class BatchCollection(APIView):
    parser_classes = SUBMISSION_PARSERS

    @extend_schema(
        operation_id="batches_list",
        parameters=schema_inputs.BATCH_LIST_PARAMETERS,
        responses={200: schemas.BatchPageSerializer, **schemas.errors()},
    )
    def get(self, request: Request) -> Response:
        return Response(cached_reads.batch_page(request=request, view=self))

    @extend_schema(
        operation_id="batches_create",
        request=SUBMISSION_BODIES,
        examples=[schema_inputs.SUBMISSION_EXAMPLE],
        parameters=[schema_inputs.IDEMPOTENCY_KEY, schema_inputs.LOCATION],
        responses={
            201: OpenApiResponse(schemas.BatchDetailSerializer, description="Created: validated and queued."),
            202: OpenApiResponse(
                schemas.BatchDetailSerializer,
                description=(
                    "Accepted: more ligands than OMTX_INLINE_VALIDATION_LIGANDS; stored as `validating` and "
                    "validated in the background, then `queued` or `rejected` (poll the status URL)."
                ),
            ),
            200: OpenApiResponse(schemas.BatchDetailSerializer, description="Idempotent replay: the first batch."),
            **schemas.errors(409, 413, 503),
        },
    )
    def post(self, request: Request) -> Response:
        return create_batch(request)


def create_batch(request: Request, *, legacy: bool = False) -> Response:
    """Shared by the canonical create (201, or 200 for an Idempotency-Key
    replay) and the predecessor's /submit path (always 200, its own body)."""
    submission, fingerprint = submission_from_request(request, legacy=legacy)
    key = request.headers.get("Idempotency-Key") or None
    if key is not None and len(key) > 200:
        raise InvalidInput("Idempotency-Key is longer than 200 characters.", code="invalid_idempotency_key")
    batch, created = batch_create(
        owner=request_user(request), submission=submission, idempotency_key=key, request_sha256=fingerprint
    )
    if legacy:
        body = rep.legacy_submitted(batch, request, created=created)
        return Response(body, status=status.HTTP_200_OK, headers={"Location": body["url"]})
    code: int
    if not created:
        code = status.HTTP_200_OK  # an Idempotency-Key replay, whatever the batch's status
    elif batch.status == BatchState.VALIDATING:
        code = status.HTTP_202_ACCEPTED  # stored; validated in the background
    else:
        code = status.HTTP_201_CREATED
    body = rep.batch_detail(batch, request)
    return Response(body, status=code, headers={"Location": body["url"]})


class LegacySubmit(APIView):
    """POST /api/v3/batches/submit: the predecessor's path, body and answer; same service.
    Its clients sent JSON, and its body has no field a form could carry a file in."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="batches_submit_legacy",
        request=LegacySubmissionSerializer,
        parameters=[schema_inputs.IDEMPOTENCY_KEY],
        responses={
            200: OpenApiResponse(schemas.LegacySubmittedSerializer, description="Created, or an idempotent replay."),
            **schemas.errors(409, 413, 503),
        },
    )
    def post(self, request: Request) -> Response:
        return create_batch(request, legacy=True)


class BatchValidate(APIView):
    parser_classes = SUBMISSION_PARSERS

    @extend_schema(
        operation_id="batches_validate",
        request=SUBMISSION_BODIES,
        examples=[schema_inputs.SUBMISSION_EXAMPLE],
        responses={
            200: OpenApiResponse(schemas.ValidationReportSerializer, description="The report; nothing stored."),
            202: OpenApiResponse(
                schemas.DryRunSerializer,
                description=(
                    "Accepted: more ligands than OMTX_INLINE_VALIDATION_LIGANDS; validated in the background "
                    "(poll the `Location` URL until `done`, then read `report`)."
                ),
            ),
            **schemas.errors(413),
        },
    )
    def post(self, request: Request) -> Response:
        submission, _ = submission_from_request(request)
        owner = request_user(request)
        if validates_inline(submission):
            return Response(batch_validate(submission=submission, owner=owner))
        body = rep.dry_run(dry_run_start(owner=owner, submission=submission), request)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class DryRunDetail(APIView):
    @extend_schema(
        operation_id="batches_validation_retrieve",
        parameters=[schema_inputs.DRY_RUN_ID],
        responses={200: schemas.DryRunSerializer, **schemas.errors(404)},
    )
    def get(self, request: Request, dry_run_id: str) -> Response:
        return Response(rep.dry_run(dry_run_get(user=request_user(request), dry_run_id=dry_run_id), request))

    @extend_schema(
        operation_id="batches_validation_destroy",
        parameters=[schema_inputs.DRY_RUN_ID],
        responses={204: OpenApiResponse(description="Dropped, validated or not."), **schemas.errors(404)},
    )
    def delete(self, request: Request, dry_run_id: str) -> Response:
        dry_run_delete(run=dry_run_get(user=request_user(request), dry_run_id=dry_run_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BatchDetail(APIView):
    @extend_schema(
        operation_id="batches_retrieve",
        parameters=[schema_inputs.BATCH_ID],
        responses={200: schemas.BatchDetailSerializer, **schemas.errors(404)},
    )
    def get(self, request: Request, batch_id: str) -> Response:
        return Response(rep.batch_detail(batch_get(user=request.user, batch_id=batch_id), request))

    @extend_schema(
        operation_id="batches_destroy",
        parameters=[schema_inputs.BATCH_ID],
        responses={204: OpenApiResponse(description="Deleted, with its files."), **schemas.errors(404, 409)},
    )
    def delete(self, request: Request, batch_id: str) -> Response:
        batch_delete(batch=batch_get(user=request.user, batch_id=batch_id, perm=DELETE_BATCH))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BatchStatus(APIView):
    @extend_schema(
        operation_id="batches_status",
        parameters=[schema_inputs.BATCH_ID],
        responses={200: schemas.BatchStatusSerializer, **schemas.errors(404)},
    )
    def get(self, request: Request, batch_id: str) -> Response:
        return Response(cached_reads.batch_status(request=request, batch_id=batch_id))


class BatchCancel(APIView):
    @extend_schema(
        operation_id="batches_cancel",
        request=None,
        parameters=[schema_inputs.BATCH_ID],
        responses={200: schemas.BatchStatusSerializer, **schemas.errors(404, 409)},
    )
    def post(self, request: Request, batch_id: str) -> Response:
        batch = batch_cancel(batch=batch_get(user=request.user, batch_id=batch_id, perm=CHANGE_BATCH))
        return Response(rep.batch_status(batch))


class BatchRetry(APIView):
    @extend_schema(
        operation_id="batches_retry",
        request=None,
        parameters=[schema_inputs.BATCH_ID],
        responses={200: schemas.BatchRetrySerializer, **schemas.errors(404, 409)},
    )
    def post(self, request: Request, batch_id: str) -> Response:
        batch = batch_get(user=request.user, batch_id=batch_id, perm=CHANGE_BATCH)
        requeued = batch_retry_failed(batch=batch)
        return Response({"requeued": requeued, **rep.batch_status(batch)})


class BatchResults(APIView):
    @extend_schema(
        operation_id="batches_results",
        parameters=schema_inputs.RESULTS_PARAMETERS,
        responses={200: schemas.ResultsPageSerializer, **schemas.errors(404)},
    )
    def get(self, request: Request, batch_id: str) -> Response:
        return Response(cached_reads.results_page(request=request, batch_id=batch_id))


class BatchExport(APIView):
    @extend_schema(
        operation_id="batches_export",
        parameters=schema_inputs.EXPORT_PARAMETERS,
        responses=schemas.with_errors(schemas.export_responses(), 404),
    )
    def get(self, request: Request, batch_id: str) -> HttpResponseBase:
        batch = batch_get(user=request.user, batch_id=batch_id)
        fmt = request.query_params.get("format", "csv")
        if fmt not in exports.FORMATS:
            raise InvalidInput(f"format must be one of {list(exports.FORMATS)}.", code="invalid_format")
        if not export_is_large(batch):
            content_type, suffix = exports.FORMATS[fmt]
            response = StreamingHttpResponse(exports.stream(batch, fmt), content_type=content_type)
            response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.{suffix}"'
            return response
        export = export_file_request(batch=batch, fmt=fmt)
        body = _export_file(export, request)
        if export.status == ExportStatus.READY:
            return HttpResponseRedirect(body["download"], status=status.HTTP_303_SEE_OTHER)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"], "Retry-After": "2"})


class ExportFileDetail(APIView):
    @extend_schema(
        operation_id="batches_export_file",
        parameters=[schema_inputs.BATCH_ID, schema_inputs.EXPORT_ID],
        responses={200: schemas.ExportFileSerializer, **schemas.errors(404)},
    )
    def get(self, request: Request, batch_id: str, export_id: str) -> Response:
        batch = batch_get(user=request.user, batch_id=batch_id)
        return Response(_export_file(export_file_get(batch=batch, export_id=export_id), request))


class ExportFileDownload(APIView):
    @extend_schema(
        operation_id="batches_export_download",
        parameters=[schema_inputs.BATCH_ID, schema_inputs.EXPORT_ID],
        responses=schemas.with_errors(schemas.export_file_responses(), 404, 409),
    )
    def get(self, request: Request, batch_id: str, export_id: str) -> HttpResponseBase:
        export = export_file_get(batch=batch_get(user=request.user, batch_id=batch_id), export_id=export_id)
        if export.status == ExportStatus.FAILED:
            raise Conflict(f"The export failed: {export.error}", code="export_failed")
        if export.status != ExportStatus.READY:
            raise Conflict("The export is not built yet; poll its url.", code="export_not_ready")
        content_type, suffix = exports.FORMATS[export.format]
        return artifact_response(export.file, filename=f"batch-{export.batch_id}.{suffix}", content_type=content_type)


def _export_file(export: ExportFile, request: Request) -> dict[str, Any]:
    ids = {"batch_id": export.batch_id, "export_id": export.pk}
    ready = export.status == ExportStatus.READY
    return {
        "id": str(export.pk),
        "batch_id": str(export.batch_id),
        "batch_version": export.batch_version,
        "format": export.format,
        "status": export.status,
        "rows_total": export.rows_total,
        "rows_written": export.rows_written,
        "progress_percent": export.progress_percent,
        "size_bytes": export.size if ready else None,
        "error": export.error,
        "created_at": export.created_at,
        "finished_at": export.finished_at,
        "url": reverse("v3:batch-export-file", kwargs=ids, request=request),
        "download": reverse("v3:batch-export-download", kwargs=ids, request=request) if ready else None,
    }


class JobCollection(APIView):
    @extend_schema(
        operation_id="jobs_list",
        parameters=schema_inputs.JOB_LIST_PARAMETERS,
        responses={200: schemas.JobPageSerializer, **schemas.errors(404)},
    )
    def get(self, request: Request, batch_id: str) -> Response:
        batch = batch_get(user=request.user, batch_id=batch_id)
        jobs = job_list(batch=batch, status=request.query_params.get("status"))
        paginator = Pagination()
        page = paginator.paginate_queryset(jobs, request, view=self) or []
        return paginator.get_paginated_response([rep.job_row(job, request) for job in page])


class JobDetail(APIView):
    @extend_schema(
        operation_id="jobs_retrieve",
        parameters=[schema_inputs.BATCH_ID, schema_inputs.JOB_ID],
        responses={200: schemas.JobDetailSerializer, **schemas.errors(404)},
    )
    def get(self, request: Request, batch_id: str, job_id: str) -> Response:
        batch = batch_get(user=request.user, batch_id=batch_id)
        return Response(rep.job_detail(job_get(batch=batch, job_id=job_id), request))


class JobStructure(APIView):
    @extend_schema(
        operation_id="jobs_structure",
        parameters=[schema_inputs.BATCH_ID, schema_inputs.JOB_ID],
        responses=schemas.with_errors(schemas.structure_responses(), 404),
    )
    def get(self, request: Request, batch_id: str, job_id: str, fmt: str | None = None) -> HttpResponseBase:
        job = job_get(batch=batch_get(user=request.user, batch_id=batch_id), job_id=job_id)
        if not job.artifact or not default_storage.exists(job.artifact.name):
            raise NotFound("This job has no structure file.", code="no_structure")
        suffix = job.artifact.name.rsplit(".", 1)[-1]
        if fmt is not None and fmt != suffix:
            raise NotFound(f"This job's structure is {suffix}, not {fmt}.", code="no_structure")
        content_type = {"sdf": "chemical/x-mdl-sdfile", "cif": "chemical/x-mmcif"}.get(
            suffix, "application/octet-stream"
        )
        return artifact_response(job.artifact.name, filename=f"{job.name}.{suffix}", content_type=content_type)


class JobDownload(JobStructure):
    """The predecessor's /download/<fmt> path; 404 when the structure is another format."""

    @extend_schema(
        operation_id="jobs_download",
        parameters=[schema_inputs.BATCH_ID, schema_inputs.JOB_ID, schema_inputs.STRUCTURE_FORMAT],
        responses=schemas.with_errors(schemas.structure_responses(), 404),
    )
    def get(self, request: Request, batch_id: str, job_id: str, fmt: str | None = None) -> HttpResponseBase:
        return super().get(request, batch_id, job_id, fmt)


class ModelCollection(APIView):
    @extend_schema(operation_id="models_list", responses={200: schemas.ModelListSerializer, **schemas.errors()})
    def get(self, request: Request) -> Response:
        return Response({"models": [_model_info(spec.name) for spec in MODELS.values()]})


def _model_info(name: str) -> dict[str, Any]:
    spec = MODELS[name]
    return {
        "name": spec.name,
        "version": spec.version,
        "title": spec.title,
        "description": spec.description,
        "executor": spec.executor,
        "gpu": spec.gpu,
        "default_rank": spec.default_rank,
        "parameters": {
            k: {
                "type": p.kind.__name__,
                "default": p.default,
                "minimum": p.minimum,
                "maximum": p.maximum,
                "choices": list(p.choices) or None,
            }
            for k, p in spec.params.items()
        },
        "limits": vars(spec.limits),
        "metrics": rep.metric_fields(spec.name),
    }
