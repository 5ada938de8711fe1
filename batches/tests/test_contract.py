"""The OpenAPI contract where the fuzzer (`make fuzz` with other seeds) found the API
looser or stricter than its schema, or a 500: every schema-valid request is answered,
every schema-violating one is refused with the error envelope."""

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from batches.api.params import EARLIEST, LATEST, instant
from batches.models import Batch
from batches.services.submission import MAX_IN_FLIGHT
from conftest import CDK2, LIGANDS
from omtx_hub.errors import InvalidInput

BATCHES = "/api/v3/batches/"
SUBMIT = "/api/v3/batches/submit"
VALIDATE = "/api/v3/batches/validate"


@pytest.fixture
def batch(make_batch: Callable[..., Batch]) -> Batch:
    return make_batch()


def error_of(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    error: dict[str, Any] = json.loads(response.content)["error"]
    return error


# --- given but empty is not absent --------------------------------------------------------


@pytest.mark.parametrize("value", ["", "queued,", ",queued", "queued,queued"])
def test_status_lists_name_each_status_once_and_at_least_one(owner_client: APIClient, batch: Batch, value: str) -> None:
    # `status=` read as "no filter" answered 200 to [""], which the enum refuses.
    for url in (BATCHES, f"{BATCHES}{batch.pk}/jobs/", f"{BATCHES}{batch.pk}/results"):
        assert error_of(owner_client.get(url, {"status": value}))["code"] == "invalid_status", url


def test_results_status_all_stands_alone(owner_client: APIClient, batch: Batch) -> None:
    url = f"{BATCHES}{batch.pk}/results"
    assert owner_client.get(url, {"status": "all"}).json()["count"] == 4
    assert owner_client.get(url, {"status": "queued,failed"}).json()["count"] == 4
    for value in ("all,queued", "all,all"):
        assert error_of(owner_client.get(url, {"status": value}))["code"] == "invalid_status"


@pytest.mark.parametrize(
    "path,parameter,code",
    [
        ("", "model", "unknown_model"),
        ("{batch}/results", "sort", "unknown_metric"),
        ("{batch}/results", "order", "invalid_order"),
    ],
)
def test_empty_enum_values_are_400(owner_client: APIClient, batch: Batch, path: str, parameter: str, code: str) -> None:
    response = owner_client.get(BATCHES + path.format(batch=batch.pk), {parameter: ""})
    assert error_of(response)["code"] == code


def test_search_is_at_most_as_long_as_a_name(owner_client: APIClient, make_batch: Callable[..., Batch]) -> None:
    make_batch(name="é" * 200)
    assert owner_client.get(BATCHES, {"search": "é" * 200}).json()["count"] == 1
    error = error_of(owner_client.get(BATCHES, {"search": "é" * 201}))
    assert error["code"] == "invalid_search" and error["details"] == {"maximum": 200}


# --- numbers and instants as their schema writes them ------------------------------------


@pytest.mark.parametrize("value", ["0.5", "-0.0", "1", "1e-3", "1.5E+2", "-2.25e-07"])
def test_thresholds_take_json_numbers(owner_client: APIClient, batch: Batch, value: str) -> None:
    assert owner_client.get(f"{BATCHES}{batch.pk}/results", {"min_qed": value}).status_code == 200


@pytest.mark.parametrize("value", ["1_0", " 0.5", "0.5 ", ".5", "5.", "+1", "01", "١", "0x10", "Infinity"])
def test_thresholds_refuse_what_float_reads_but_json_does_not(
    owner_client: APIClient, batch: Batch, value: str
) -> None:
    error = error_of(owner_client.get(f"{BATCHES}{batch.pk}/results", {"max_qed": value}))
    assert error["code"] == "invalid_threshold" and error["details"] == {"parameter": "max_qed"}


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("2024-05-01t12:30:00z", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ("2024-05-01T12:30:00.123456789+02:00", datetime(2024, 5, 1, 10, 30, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T00:30:00+01:00", datetime(2024, 4, 30, 23, 30, tzinfo=UTC)),
        # A leap second: the last second of a UTC day, in any offset.
        ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),
        ("2016-12-31T18:59:60.5-05:00", datetime(2017, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        # Past either end of `datetime` in UTC: the earliest or latest instant.
        ("0001-01-01T00:00:00+00:01", EARLIEST),
        ("0000-06-15", EARLIEST),
        ("0000-12-31T23:00:00-05:00", datetime(1, 1, 1, 4, tzinfo=UTC)),
        ("9999-12-31T23:59:59-00:01", LATEST),
        ("9999-12-31T23:59:60Z", LATEST),
    ],
)
def test_instants_are_rfc_3339(value: str, expected: datetime) -> None:
    assert instant({"at": value}, "at") == expected


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01T12:30:00",  # no offset
        "2024-05-01 12:30:00Z",  # a space: ISO 8601, not RFC 3339's date-time
        "2024-05-01T12:30Z",  # no seconds
        "2024-05-01T12:30:60Z",  # a leap second at no day's end
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:00:00+24:00",
        "2024-05-01T12:00:00+0200",
        "2024-05-01T12:00:00,5Z",
        "2023-02-29",
        "20240501",
        "2024-W18-3",
        "٢٠٢٤-05-01",
        "",
    ],
)
def test_anything_else_is_not_an_instant(value: str) -> None:
    with pytest.raises(InvalidInput):
        instant({"at": value}, "at")


def test_date_bounds_past_either_end_filter_instead_of_400(owner_client: APIClient, batch: Batch) -> None:
    def count(**query: str) -> int:
        response = owner_client.get(BATCHES, query)
        assert response.status_code == 200, response.content
        result: int = response.json()["count"]
        return result

    assert count(created_after="0001-01-01T00:00:00+05:00") == 1
    assert count(created_before="0001-01-01T00:00:00+05:00") == 0
    assert count(created_after="9999-12-31T23:00:00-05:00") == 0
    assert count(created_before="9999-12-31T23:00:00-05:00") == 1
    assert count(created_after="2016-12-31T23:59:60Z") == 1
    created = batch.created_at.astimezone(UTC)
    assert count(created_before=(created + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")) == 1


# --- bounded policy: a 400, not the database's 500 ----------------------------------------


def body(**fields: Any) -> dict[str, Any]:
    return {"name": "contract", "protein_sequence": CDK2, "ligands": LIGANDS, **fields}


@pytest.mark.parametrize("path", ["", "validate"])
@pytest.mark.parametrize("value", [MAX_IN_FLIGHT + 1, 2**31, 10**20])
def test_max_in_flight_past_any_batch_is_400(owner_client: APIClient, path: str, value: int) -> None:
    response = owner_client.post(BATCHES + path, body(max_in_flight=value), format="json")
    assert error_of(response)["code"] == "validation_error"
    assert not Batch.objects.exists()


def test_max_in_flight_up_to_the_largest_batch_is_kept(owner_client: APIClient) -> None:
    response = owner_client.post(BATCHES, body(max_in_flight=MAX_IN_FLIGHT), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["policy"]["max_in_flight"] == MAX_IN_FLIGHT


@pytest.mark.parametrize("value", [MAX_IN_FLIGHT + 1, 10**20])
def test_legacy_max_concurrent_jobs_past_any_batch_is_400(owner_client: APIClient, value: int) -> None:
    legacy = {
        "job_name": "old",
        "model_name": "ligand-profile",
        "protein_sequence": CDK2,
        "ligands": LIGANDS,
        "configuration": {"max_concurrent_jobs": value},
    }
    error = error_of(owner_client.post(SUBMIT, legacy, format="json"))
    assert error["code"] == "invalid_configuration"
    assert error["details"]["key"] == "configuration.max_concurrent_jobs"
    assert not Batch.objects.exists()


@pytest.mark.parametrize("value", [9, 1801])
def test_timeout_seconds_outside_every_models_bounds_is_400(owner_client: APIClient, value: int) -> None:
    response = owner_client.post(BATCHES + "validate", body(timeout_seconds=value), format="json")
    assert "timeout_seconds" in error_of(response)["details"]


# --- the predecessor's path reads the predecessor's body ----------------------------------


def test_submit_reads_its_body_as_the_predecessors_even_without_its_keys(owner_client: APIClient) -> None:
    # Read as a canonical body it dropped use_msa unchecked and ran the canonical default model.
    refused = owner_client.post(
        SUBMIT, {"protein_sequence": CDK2, "ligands": LIGANDS, "use_msa": "junk"}, format="json"
    )
    assert error_of(refused)["code"] == "validation_error"
    defaulted = owner_client.post(SUBMIT, {"protein_sequence": CDK2, "ligands": LIGANDS}, format="json")
    assert error_of(defaulted, 503)["code"] == "model_unavailable"  # boltz2, the predecessor's default
    assert not Batch.objects.exists()


@pytest.mark.parametrize("field,value", [("priority", 5), ("priority", "bad"), ("standardize", 5), ("name", "x")])
def test_the_predecessors_body_on_the_canonical_path_has_no_canonical_fields(
    owner_client: APIClient, field: str, value: object
) -> None:
    # Read as the predecessor's, the canonical field was dropped unchecked: 201, priority 0.
    mixed = {"model_name": "ligand-profile", "protein_sequence": CDK2, "ligands": LIGANDS, field: value}
    error = error_of(owner_client.post(BATCHES, mixed, format="json"))
    assert error["code"] == "mixed_body" and error["details"] == {"fields": [field]}
    assert not Batch.objects.exists()


def test_a_json_body_without_ligands_is_a_field_error(owner_client: APIClient) -> None:
    for url in (BATCHES, VALIDATE):
        error = error_of(owner_client.post(url, {"protein_sequence": CDK2}, format="json"))
        assert error["code"] == "validation_error" and "ligands" in error["details"], url


def test_submit_takes_json_only(owner_client: APIClient) -> None:
    form = {"job_name": "old", "model_name": "ligand-profile", "protein_sequence": CDK2, "ligands": "CCO"}
    assert owner_client.post(SUBMIT, form).status_code == 415
    assert not Batch.objects.exists()


# --- the upload form: a file, and each field's JSON spelling as text ----------------------


def form(**fields: Any) -> dict[str, Any]:
    upload = io.BytesIO(b"CCO ethanol\nc1ccccc1O phenol\n")
    upload.name = "two.smi"
    return {"ligands_file": upload, "protein_sequence": CDK2, **fields}


def test_a_form_reads_json_spellings(owner_client: APIClient) -> None:
    fields = {"standardize": "false", "priority": "-3", "max_in_flight": "null", "options": '{"conformer": false}'}
    response = owner_client.post(VALIDATE, form(**fields), format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["standardization"]["standardize"] is False
    created = owner_client.post(BATCHES, form(**fields), format="multipart")
    assert created.status_code == 201, created.content
    assert created.json()["priority"] == -3 and created.json()["policy"]["max_in_flight"] is None


@pytest.mark.parametrize(
    "field,value",
    [
        # DRF's BooleanField and IntegerField read these; the schema's boolean and integer do not.
        ("standardize", "yes"),
        ("standardize", "1"),
        ("standardize", "on"),
        ("standardize", ""),
        ("priority", " 3"),
        ("priority", "3.0"),
        ("priority", "+3"),
        ("priority", ""),
        ("priority", "null"),  # not nullable
        ("max_attempts", "007"),
        ("options", "[1]"),
        ("options", '{"conformer": NaN}'),
    ],
)
def test_a_form_refuses_what_its_schema_does_not_say(owner_client: APIClient, field: str, value: str) -> None:
    response = owner_client.post(VALIDATE, form(**{field: value}), format="multipart")
    assert field in error_of(response)["details"], response.content


def test_a_form_without_its_file_is_400_not_read_as_json(owner_client: APIClient) -> None:
    fields = {"protein_sequence": CDK2, "ligands": ["CCO"]}
    assert "ligands_file" in error_of(owner_client.post(VALIDATE, fields, format="multipart"))["details"]
    upload = io.BytesIO(b"CCO\n")
    upload.name = "one.smi"
    aliased = {"file": upload, "protein_sequence": CDK2}  # an undocumented alias, gone
    assert "ligands_file" in error_of(owner_client.post(BATCHES, aliased, format="multipart"))["details"]
    assert not Batch.objects.exists()


def test_an_urlencoded_form_is_415(owner_client: APIClient) -> None:
    body = "protein_sequence=" + CDK2 + "&ligands=CCO"
    for url in (BATCHES, VALIDATE):
        response = owner_client.post(url, body, content_type="application/x-www-form-urlencoded")
        assert error_of(response, 415)["code"] == "unsupported_media_type", url
