"""Errors: one envelope for every error under /api/ (DEBUG on or off), ids checked before the
database, query text and limit/offset checked before any query.

Run on SQLite and on PostgreSQL (DATABASE_URL=postgres://…): PostgreSQL is where a NUL in
text or a malformed UUID used to become a 500.
"""

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.http import Http404, HttpRequest, HttpResponse
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, path
from django.views.decorators.http import require_POST
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from batches.models import Batch, Job
from batches.selectors import batch_get, job_get
from conftest import CDK2, LIGANDS
from omtx_hub import api_errors
from omtx_hub import urls as project_urls
from omtx_hub.errors import NotFound

BATCHES = "/api/v3/batches/"
# Inside the URL pattern's alphabet and length, yet not a UUID.
MALFORMED_IDS = ["0" * 36, "-" * 36, "0" * 33, "abcdef" * 6]


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error: dict[str, Any] = json.loads(response.content)["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    # Through the middleware, the response's id; a handler called alone runs in no request.
    assert error["request_id"] == (response["X-Request-ID"] if response.has_header("X-Request-ID") else None)
    assert error["code"] == code, error
    return error


@pytest.fixture
def batch(make_batch: Callable[..., Batch]) -> Batch:
    return make_batch()


@pytest.fixture
def job(batch: Batch) -> Job:
    first = batch.jobs.order_by("index").first()
    assert first is not None
    return first


@pytest.fixture
def lenient(owner_client: APIClient) -> APIClient:
    """The owner's client answering 500s instead of re-raising, to read the 500 body."""
    owner_client.raise_request_exception = False
    return owner_client


# --- ids are validated before the database -------------------------------------------------

BATCH_ENDPOINTS = [
    ("get", "{batch}/"),
    ("get", "{batch}/status"),
    ("get", "{batch}/results"),
    ("get", "{batch}/export"),
    ("get", "{batch}/jobs/"),
    ("post", "{batch}/cancel"),
    ("post", "{batch}/retry"),
    ("delete", "{batch}/"),
]
JOB_ENDPOINTS = ["{job}/", "{job}/structure", "{job}/download/sdf"]


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
@pytest.mark.parametrize("method,template", BATCH_ENDPOINTS)
def test_malformed_batch_id_is_404(lenient: APIClient, batch: Batch, method: str, template: str, bad_id: str) -> None:
    response = getattr(lenient, method)(BATCHES + template.format(batch=bad_id))
    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
@pytest.mark.parametrize("template", JOB_ENDPOINTS)
def test_malformed_job_id_is_404(lenient: APIClient, batch: Batch, template: str, bad_id: str) -> None:
    response = lenient.get(f"{BATCHES}{batch.pk}/jobs/" + template.format(job=bad_id))
    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize("bad_id", [*MALFORMED_IDS, "", "x", 42])
def test_malformed_ids_never_reach_the_database(
    owner: Any, batch: Batch, bad_id: Any, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0), pytest.raises(NotFound):
        batch_get(user=owner, batch_id=bad_id)
    with django_assert_num_queries(0), pytest.raises(NotFound):
        job_get(batch=batch, job_id=bad_id)


def test_well_formed_ids_in_any_spelling_are_found(owner_client: APIClient, batch: Batch, job: Job) -> None:
    for spelling in (str(batch.pk), str(batch.pk).upper(), batch.pk.hex):
        assert owner_client.get(f"{BATCHES}{spelling}/").status_code == 200, spelling
        assert owner_client.get(f"{BATCHES}{spelling}/jobs/{job.pk.hex}/").status_code == 200, spelling


def test_a_job_of_another_batch_is_404(owner_client: APIClient, make_batch: Callable[..., Batch], job: Job) -> None:
    other = make_batch(name="other")
    assert_envelope(owner_client.get(f"{BATCHES}{other.pk}/jobs/{job.pk}/"), 404, "not_found")


# --- query text: NUL, other controls, invalid UTF-8 ------------------------------------------

QUERY_PARAMETERS = [
    ("get", "", ["status", "model", "search", "created_after", "created_before", "limit", "offset"]),
    ("get", "{batch}/results", ["sort", "order", "status", "min_qed", "max_qed", "limit", "offset"]),
    ("get", "{batch}/export", ["format"]),
    ("get", "{batch}/jobs/", ["status", "limit", "offset"]),
    ("get", "{batch}/jobs/{job}/", ["anything"]),
    ("get", "{batch}/", ["anything"]),
    ("post", "", ["anything"]),
    ("post", "validate", ["anything"]),
]
EVERY_PARAMETER = [(m, t, p) for m, t, params in QUERY_PARAMETERS for p in params]


@pytest.mark.parametrize("method,template,parameter", EVERY_PARAMETER)
def test_nul_in_any_query_value_is_400(
    lenient: APIClient, batch: Batch, job: Job, method: str, template: str, parameter: str
) -> None:
    url = BATCHES + template.format(batch=batch.pk, job=job.pk) + f"?{parameter}=a%00b"
    error = assert_envelope(getattr(lenient, method)(url), 400, "invalid_query")
    assert error["details"] == {"parameter": parameter}
    assert parameter in error["message"]


@pytest.mark.parametrize(
    "query,parameter",
    [
        ("search=%01", "search"),
        ("search=a%09b", "search"),  # tab: refused too (middleware docstring says why)
        ("search=a%0Ab", "search"),
        ("search=%1F", "search"),
        ("search=%7F", "search"),
        ("search=%FF", "search"),  # not UTF-8
        ("search=%C3", "search"),  # a truncated sequence
        ("status=queued&search=%ED%A0%80", "search"),  # a surrogate: not UTF-8 either
        ("%00=1", "\x00"),
        ("se%00arch=x", "se\x00arch"),
        ("%FF=1", "\ufffd"),
    ],
)
def test_control_characters_and_invalid_utf8_are_400(lenient: APIClient, query: str, parameter: str) -> None:
    error = assert_envelope(lenient.get(f"{BATCHES}?{query}"), 400, "invalid_query")
    assert error["details"] == {"parameter": parameter}


@pytest.mark.parametrize("query", ["search=caf%C3%A9", "search=caf\u00e9", "search=a+b", "search=", "search", "&&"])
def test_clean_text_passes_the_guard(owner_client: APIClient, batch: Batch, query: str) -> None:
    assert owner_client.get(f"{BATCHES}?{query}").status_code == 200


def test_the_guard_is_for_the_api_only(db: None) -> None:
    assert APIClient().get("/health?x=%00").status_code == 200


# --- text in the body and the Idempotency-Key header ----------------------------------------


def submission(**overrides: Any) -> dict[str, Any]:
    return {"name": "screen", "model": "ligand-profile", "protein_sequence": CDK2, "ligands": LIGANDS, **overrides}


@pytest.mark.parametrize("field", ["name", "protein_name", "protein_sequence", "model"])
def test_nul_in_a_body_text_field_is_400(owner_client: APIClient, field: str) -> None:
    response = owner_client.post(BATCHES, submission(**{field: "CDK\x002"}), format="json")
    error = assert_envelope(response, 400, "validation_error")
    assert field in error["details"]
    assert not Batch.objects.exists()


def test_nul_in_a_legacy_body_is_400(owner_client: APIClient) -> None:
    legacy = {"job_name": "a\x00b", "protein_sequence": CDK2, "ligands": LIGANDS, "model_name": "ligand-profile"}
    error = assert_envelope(owner_client.post(f"{BATCHES}submit", legacy, format="json"), 400, "validation_error")
    assert "job_name" in error["details"]


@pytest.mark.parametrize("key", ["k\x00", "\x00", "k\x01ey", "key\x7f"])
def test_control_characters_in_the_idempotency_key_are_400(lenient: APIClient, key: str) -> None:
    response = lenient.post(BATCHES, submission(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert_envelope(response, 400, "invalid_idempotency_key")
    assert not Batch.objects.exists()


def test_a_clean_idempotency_key_is_honoured(owner_client: APIClient) -> None:
    first = owner_client.post(BATCHES, submission(), format="json", HTTP_IDEMPOTENCY_KEY="run-2024-01-01 #1")
    again = owner_client.post(BATCHES, submission(), format="json", HTTP_IDEMPOTENCY_KEY="run-2024-01-01 #1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


# --- limit and offset -----------------------------------------------------------------------

PAGED = ["", "{batch}/results", "{batch}/jobs/"]
# Empty is junk too: the schema says integer, and the contract is the schema.
BAD_LIMITS = [
    "",
    "abc",
    "-1",
    "0",
    "1001",
    "99999999999999999999",
    "9" * 5000,
    "1.5",
    " 5",
    "5_0",
    "+5",
    "\u0665",
    "1e3",
]
BAD_OFFSETS = ["", "abc", "-5", "-0", "10000001", "99999999999999999999", "9" * 5000, "0.0", "0x10"]


@pytest.mark.parametrize("template", PAGED)
@pytest.mark.parametrize("value", BAD_LIMITS)
def test_junk_limit_is_400_naming_its_bounds(lenient: APIClient, batch: Batch, template: str, value: str) -> None:
    response = lenient.get(BATCHES + template.format(batch=batch.pk), {"limit": value})
    error = assert_envelope(response, 400, "invalid_limit")
    assert error["details"] == {"parameter": "limit", "minimum": 1, "maximum": 1000}
    assert "limit" in error["message"] and "1000" in error["message"]


@pytest.mark.parametrize("template", PAGED)
@pytest.mark.parametrize("value", BAD_OFFSETS)
def test_junk_offset_is_400_naming_its_bounds(lenient: APIClient, batch: Batch, template: str, value: str) -> None:
    response = lenient.get(BATCHES + template.format(batch=batch.pk), {"offset": value})
    error = assert_envelope(response, 400, "invalid_offset")
    assert error["details"] == {"parameter": "offset", "minimum": 0, "maximum": 10_000_000}


GOOD_PAGES = [
    ({"limit": "1"}, 1),
    ({"limit": "0001"}, 1),
    ({"limit": "1000"}, 4),
    ({"limit": "2", "offset": "3"}, 1),
    ({"offset": "0"}, 4),
    ({"offset": "10000000"}, 0),
]


@pytest.mark.parametrize("query,rows", GOOD_PAGES)
def test_limit_and_offset_within_bounds_page(
    owner_client: APIClient, batch: Batch, query: dict[str, str], rows: int
) -> None:
    body = owner_client.get(f"{BATCHES}{batch.pk}/jobs/", query).json()
    assert body["count"] == 4
    assert len(body["results"]) == rows


# --- dates and thresholds -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2024-02-30",  # well formed, impossible: parse_date raises
        "2024-13-45",
        "2024-01-01T25:00:00Z",
        "2024-01-01T12:00:00",  # no offset: RFC 3339 requires one
        "20240101",  # ISO 8601's basic format, not RFC 3339
    ],
)
@pytest.mark.parametrize("parameter", ["created_after", "created_before"])
def test_impossible_dates_are_400(lenient: APIClient, batch: Batch, parameter: str, value: str) -> None:
    error = assert_envelope(lenient.get(BATCHES, {parameter: value}), 400, "invalid_date")
    assert error["details"] == {"parameter": parameter}


@pytest.mark.parametrize(
    "value,count",
    [
        ("2000-01-01", 1),
        ("2000-01-01T00:00:00+05:00", 1),
        ("9999-12-31", 0),
        ("0001-01-01T00:00:00+01:00", 1),  # before year 1 in UTC: the earliest instant
        ("9999-12-31T23:59:59-23:59", 0),  # after year 9999 in UTC: the latest
    ],
)
def test_possible_dates_filter(owner_client: APIClient, batch: Batch, value: str, count: int) -> None:
    assert owner_client.get(BATCHES, {"created_after": value}).json()["count"] == count


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999", "abc", ""])
@pytest.mark.parametrize("parameter", ["min_qed", "max_qed"])
def test_non_finite_thresholds_are_400(lenient: APIClient, batch: Batch, parameter: str, value: str) -> None:
    response = lenient.get(f"{BATCHES}{batch.pk}/results", {parameter: value})
    error = assert_envelope(response, 400, "invalid_threshold")
    assert error["details"] == {"parameter": parameter}


# --- 404, 405 and 500 in the envelope, DEBUG on and off --------------------------------------


def _django_boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret detail")


@require_POST
def _django_post_only(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


class _DrfBoom(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError("secret detail")


# This module doubles as a URLconf (pytest.mark.urls): the project's routes plus views that
# fail outside and inside DRF, under /api/ and elsewhere.
urlpatterns: list[URLPattern | URLResolver] = [
    path("api/test/django-boom", _django_boom),
    path("api/test/post-only", _django_post_only),
    path("api/test/drf-boom", _DrfBoom.as_view()),
    path("test/django-boom", _django_boom),
    *project_urls.urlpatterns,
]
handler404 = project_urls.handler404
handler500 = project_urls.handler500

debug_modes = pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])


@debug_modes
@pytest.mark.parametrize("url", ["/api/nope", "/api/v3/nope/", "/api/v2/batches/", f"{BATCHES}not-a-uuid/"])
def test_unknown_api_url_is_404_envelope(settings: Any, lenient: APIClient, debug: bool, url: str) -> None:
    settings.DEBUG = debug
    assert_envelope(lenient.get(url), 404, "not_found")


@debug_modes
def test_unknown_page_outside_the_api_stays_html(settings: Any, db: None, debug: bool) -> None:
    settings.DEBUG = debug
    response = APIClient().get("/nope/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@debug_modes
@pytest.mark.parametrize(
    "method,template,allow",
    [("put", "{batch}/", "GET, DELETE"), ("delete", "", "GET, POST"), ("get", "{batch}/cancel", "POST")],
)
def test_wrong_method_is_405_envelope(
    settings: Any, lenient: APIClient, batch: Batch, debug: bool, method: str, template: str, allow: str
) -> None:
    settings.DEBUG = debug
    response = getattr(lenient, method)(BATCHES + template.format(batch=batch.pk))
    assert_envelope(response, 405, "method_not_allowed")
    assert set(response["Allow"].split(", ")) >= set(allow.split(", "))


@debug_modes
@pytest.mark.urls(__name__)
def test_wrong_method_outside_drf_is_405_envelope(settings: Any, db: None, debug: bool) -> None:
    settings.DEBUG = debug
    response = APIClient().get("/api/test/post-only")
    assert_envelope(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


@debug_modes
@pytest.mark.urls(__name__)
@pytest.mark.parametrize("url", ["/api/test/drf-boom", "/api/test/django-boom"])
def test_unhandled_exception_is_500_envelope_without_the_traceback(
    settings: Any, db: None, caplog: Any, debug: bool, url: str
) -> None:
    settings.DEBUG = debug
    client = APIClient(raise_request_exception=False)
    with caplog.at_level(logging.ERROR):
        response = client.get(url)
    assert_envelope(response, 500, "server_error")
    assert b"secret detail" not in response.content and b"Traceback" not in response.content
    logged = [r for r in caplog.records if r.exc_info and "secret detail" in str(r.exc_info[1])]
    assert logged, "the traceback must be logged"


@debug_modes
@pytest.mark.urls(__name__)
def test_unhandled_exception_in_a_drf_view_is_answered_by_the_api_handler(
    settings: Any, db: None, caplog: Any, debug: bool
) -> None:
    # Not left to Django's 500 path: the DRF handler answers and logs it itself.
    settings.DEBUG = debug
    with caplog.at_level(logging.ERROR, logger="omtx_hub.api_errors"):
        response = APIClient(raise_request_exception=False).get("/api/test/drf-boom")
    assert isinstance(response, Response)
    assert_envelope(response, 500, "server_error")
    assert [r.exc_info[0] for r in caplog.records if r.name == "omtx_hub.api_errors"] == [RuntimeError]


@pytest.mark.urls(__name__)
def test_unhandled_exception_in_a_drf_view_still_reaches_the_test_client(db: None) -> None:
    # The handler sends got_request_exception as Django would: the client re-raises,
    # and error reporters listening on the signal see the exception.
    with pytest.raises(RuntimeError, match="secret detail"):
        APIClient().get("/api/test/drf-boom")


@pytest.mark.urls(__name__)
def test_server_error_outside_the_api_stays_html(db: None) -> None:
    response = APIClient(raise_request_exception=False).get("/test/django-boom")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_handlers_answer_json_under_the_api_and_html_elsewhere(rf: RequestFactory) -> None:
    # The handlers themselves, apart from the middleware that would also convert their HTML.
    assert_envelope(api_errors.not_found(rf.get("/api/v3/nope"), Http404()), 404, "not_found")
    assert_envelope(api_errors.server_error(rf.get("/api/v3/batches/")), 500, "server_error")
    assert api_errors.not_found(rf.get("/nope"), Http404())["Content-Type"].startswith("text/html")
    assert api_errors.server_error(rf.get("/"))["Content-Type"].startswith("text/html")
    assert project_urls.handler404 is api_errors.not_found
    assert project_urls.handler500 is api_errors.server_error


@pytest.mark.parametrize("path", ["/api/v3/batches/?status={}", "/api/v3/batches/{batch}/jobs?status={}"])
def test_an_unknown_status_is_400_naming_it(owner_client: APIClient, batch: Batch, path: str) -> None:
    response = owner_client.get(path.format("queued,bogus", batch=batch.pk))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_status"
    assert error["details"]["unknown"] == ["bogus"]
    assert owner_client.get(path.format("queued", batch=batch.pk)).status_code == 200


def test_a_forged_session_cookie_is_no_session(owner_client: APIClient, batch: Batch) -> None:
    owner_client.cookies["sessionid"] = "abc\x00def' OR 1=1"
    response = owner_client.get(f"/api/v3/batches/{batch.pk}/status")
    assert response.status_code == 200  # the token still authenticates; the cookie is ignored
    anonymous = APIClient()
    anonymous.cookies["sessionid"] = "\x00" * 40
    assert anonymous.get("/api/v3/batches/").status_code == 401
    assert anonymous.get("/admin/").status_code == 302  # to the login page, not a 500
