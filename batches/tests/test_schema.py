"""The OpenAPI schema is the contract (batches/api/schemas.py): typed bodies,
documented errors, real parameters, and real responses that match it."""

import dataclasses
from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
import schemathesis
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator

from accounts.services import token_create
from batches import exports
from batches.api.schemas import LimitsSerializer
from batches.catalog import MODELS
from batches.models import Batch, Job
from batches.registry import Limits
from batches.services.transitions import job_transition
from batches.states import BatchStatus, JobStatus
from conftest import CDK2

Operation = tuple[str, str, dict[str, Any]]
NUMERIC = {out.name for spec in MODELS.values() for out in spec.outputs if out.kind in ("float", "int")}
# Beyond 400, 401 and 429 (every operation) and 404 (every path with an id).
EXTRA_ERRORS = {
    "batches_create": {409, 413, 503},
    "batches_submit_legacy": {409, 413, 503},
    "batches_validate": {413},
    "batches_cancel": {409},
    "batches_retry": {409},
    "batches_destroy": {409},
    "batches_export_download": {409},
    # The staff-only monitoring paths (monitoring/api/).
    **{
        operation_id: {403}
        for operation_id in (
            "monitoring_dashboard",
            "cache_stats",
            "monitoring_health",
            "health_status",
            "health_services",
            "health_metrics",
            "health_slo",
        )
    },
    # ratelimit/api: staff-only operations, a missing user or network, a network already allowed.
    "rate_limit_status": {403, 404},
    "rate_limit_blocked_ips": {403},
    "rate_limit_block": {403},
    "rate_limit_unblock": {403},
    "rate_limit_allowed_networks": {403},
    "rate_limit_allow": {403, 409},
    "rate_limit_disallow": {403, 404},
    "rate_limit_metrics": {403},
    # batches/webhooks/views.py: a delivery that is not yours, one being sent.
    "webhooks_deliveries_retrieve": {404},
    "webhooks_deliveries_redeliver": {404, 409},
    "resources_metrics": {403},
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return generated


def operations(schema: dict[str, Any]) -> Iterator[Operation]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def by_id(schema: dict[str, Any], operation_id: str) -> dict[str, Any]:
    return next(op for _, _, op in operations(schema) if op["operationId"] == operation_id)


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        found: dict[str, Any] = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        return resolve(schema, found)
    return node


def parameters(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", [])}


def test_spectacular_documents_v3_without_an_api_version() -> None:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    paths = yaml.safe_load(out.getvalue())["paths"]
    assert "/api/v3/batches/{batch_id}/results/" in paths and len(paths) >= 14


def test_every_success_is_a_typed_body(schema: dict[str, Any]) -> None:
    for path, method, operation in operations(schema):
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert successes, (method, path)
        for code, response in successes.items():
            if code == "204":
                assert "content" not in response
                continue
            for media_type, body in response["content"].items():
                if media_type == "application/json":
                    component = resolve(schema, body["schema"])
                    assert component["type"] == "object" and component["properties"], (method, path, code)
                else:
                    assert body["schema"] == {"type": "string", "format": "binary"}, (method, path, media_type)


def test_every_operation_is_authenticated_and_documents_its_errors(schema: dict[str, Any]) -> None:
    for path, method, operation in operations(schema):
        assert operation["security"] and {} not in operation["security"], (method, path)
        expected = {400, 401, 429} | EXTRA_ERRORS.get(operation["operationId"], set())
        if "{batch_id}" in path or "{dry_run_id}" in path:
            expected.add(404)
        errors = {int(code): r for code, r in operation["responses"].items() if not code.startswith("2")}
        assert set(errors) == expected, (method, path)
        for response in errors.values():
            assert response["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def test_the_error_envelope(schema: dict[str, Any]) -> None:
    envelope = schema["components"]["schemas"]["Error"]
    assert envelope["required"] == ["error"]
    detail = resolve(schema, envelope["properties"]["error"]["allOf"][0])
    assert set(detail["required"]) == {"code", "message", "details", "request_id"}
    assert detail["properties"]["code"]["type"] == "string"
    assert detail["properties"]["details"]["nullable"] is True


def test_downloads_document_the_media_types_the_views_send(schema: dict[str, Any]) -> None:
    export = by_id(schema, "batches_export")["responses"]["200"]["content"]
    assert set(export) == {
        "text/csv",
        "application/x-ndjson",
        "chemical/x-mdl-sdfile",
        "application/zip",
        "application/gzip",
    }
    assert set(export) == {content_type for content_type, _ in exports.FORMATS.values()}
    for operation_id in ("jobs_structure", "jobs_download"):
        structure = by_id(schema, operation_id)["responses"]["200"]["content"]
        assert set(structure) == {"chemical/x-mdl-sdfile", "chemical/x-mmcif"}


def test_thresholds_are_one_parameter_per_numeric_metric(schema: dict[str, Any]) -> None:
    names = set(parameters(by_id(schema, "batches_results")))
    assert {"min_qed", "max_qed", "min_affinity_pred_value"} <= names
    assert not any("<" in name for name in names)
    assert "min_alerts" not in names  # text metrics neither rank nor filter
    for prefix in ("min_", "max_"):
        assert {n.removeprefix(prefix) for n in names if n.startswith(prefix)} == NUMERIC


def test_query_parameters_are_typed_and_bounded(schema: dict[str, Any]) -> None:
    for operation_id in ("batches_list", "batches_results", "jobs_list"):
        params = parameters(by_id(schema, operation_id))
        assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
        assert params["offset"]["schema"] == {"type": "integer", "minimum": 0, "maximum": 10_000_000}
        assert params["status"]["explode"] is False
    listing = parameters(by_id(schema, "batches_list"))
    assert listing["status"]["schema"]["items"]["enum"] == BatchStatus.values
    assert listing["status"]["schema"]["minItems"] == 1 and listing["status"]["schema"]["uniqueItems"]
    for name in ("created_after", "created_before"):
        formats = [branch["format"] for branch in listing[name]["schema"]["anyOf"]]
        assert formats == ["date-time", "date"], name
    assert parameters(by_id(schema, "jobs_list"))["status"]["schema"]["items"]["enum"] == JobStatus.values
    results = parameters(by_id(schema, "batches_results"))
    listed, alone = results["status"]["schema"]["oneOf"]
    assert listed["items"]["enum"] == JobStatus.values
    assert alone["items"]["enum"] == ["all"] and alone["maxItems"] == 1
    assert set(results["sort"]["schema"]["enum"]) == NUMERIC
    assert results["order"]["schema"]["enum"] == ["asc", "desc"]
    assert parameters(by_id(schema, "batches_export"))["format"]["schema"]["enum"] == list(exports.FORMATS)


def test_limits_schema_lists_the_registry_limits() -> None:
    assert set(LimitsSerializer().fields) == {f.name for f in dataclasses.fields(Limits)}


# --- real responses against the schema -------------------------------------


@pytest.fixture
def api(db: None) -> Iterator[Any]:
    """The schema loaded from the app itself, calls going through WSGI in this
    test's transaction (as Django's test client keeps its connection open)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v3/schema/", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _fail_one(batch: Batch) -> None:
    """Turn one succeeded job into a failed one through the real transition."""
    job = batch.jobs.get(index=0)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    Batch.objects.filter(pk=batch.pk).update(n_succeeded=batch.n_succeeded - 1, n_running=1, status=BatchStatus.RUNNING)
    job_transition(job=job, source=JobStatus.RUNNING, target=JobStatus.FAILED, failure_reason="timeout")


def test_real_responses_match_the_schema(
    api: Any, owner: User, outsider: User, make_batch: Callable[..., Batch], run_all: Callable[[], None]
) -> None:
    batch = make_batch(["CCO", "C1CC", "c1ccccc1O", "OCC", "CC(=O)Oc1ccccc1C(=O)O"])
    run_all()
    batch.refresh_from_db()
    job = batch.jobs.get(index=2)
    _fail_one(batch)
    ids = {"batch_id": str(batch.pk)}
    job_ids = {**ids, "job_id": str(job.pk)}
    body = {"name": "contract", "protein_sequence": CDK2, "ligands": ["CCO", "C1CC"]}
    calls: list[tuple[str, dict[str, Any], dict[str, Any], int]] = [
        ("models_list", {}, {}, 200),
        ("batches_list", {}, {"query": {"status": "completed,running", "limit": 1}}, 200),
        ("batches_retrieve", ids, {}, 200),
        ("batches_status", ids, {}, 200),
        ("batches_results", ids, {"query": {"status": "all", "sort": "clogp", "min_qed": 0.1}}, 200),
        ("batches_results", ids, {"query": {"sort": "affinity_pred_value"}}, 400),
        ("jobs_list", ids, {"query": {"status": "succeeded,failed"}}, 200),
        ("jobs_retrieve", job_ids, {}, 200),
        ("jobs_structure", job_ids, {}, 200),
        ("jobs_download", {**job_ids, "fmt": "sdf"}, {}, 200),
        ("jobs_download", {**job_ids, "fmt": "cif"}, {}, 404),
        *(("batches_export", ids, {"query": {"format": fmt}}, 200) for fmt in exports.FORMATS),
        ("batches_validate", {}, {"body": body, "media_type": "application/json"}, 200),
        (
            "batches_create",
            {},
            {"body": body, "media_type": "application/json", "headers": {"Idempotency-Key": "k"}},
            201,
        ),
        (
            "batches_create",
            {},
            {"body": body, "media_type": "application/json", "headers": {"Idempotency-Key": "k"}},
            200,
        ),
        (
            "batches_create",
            {},
            {"body": {**body, "name": "x"}, "media_type": "application/json", "headers": {"Idempotency-Key": "k"}},
            409,
        ),
        ("batches_retry", ids, {}, 200),
        ("batches_retry", ids, {}, 409),
        ("batches_destroy", ids, {}, 409),
        ("batches_cancel", ids, {}, 200),
        ("batches_cancel", ids, {}, 409),
        ("batches_destroy", ids, {}, 204),
        ("batches_status", ids, {}, 404),
    ]
    _, token = token_create(user=owner, name="contract")
    for operation_id, path_parameters, request, expected in calls:
        headers = {"Authorization": f"Bearer {token}", **request.pop("headers", {})}
        case = api.find_operation_by_id(operation_id).Case(path_parameters=path_parameters, **request)
        response = case.call(headers=headers)
        assert response.status_code == expected, (operation_id, response.status_code, response.get_data()[:300])
        case.validate_response(response, headers=headers)


def test_refusals_match_the_schema(api: Any, outsider: User, make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    _, token = token_create(user=outsider, name="contract")
    for headers, expected in (({}, 401), ({"Authorization": f"Bearer {token}"}, 404)):
        case = api.find_operation_by_id("batches_retrieve").Case(path_parameters={"batch_id": str(batch.pk)})
        response = case.call(headers=headers)
        assert response.status_code == expected
        case.validate_response(response, headers=headers)
