"""Every answer carries X-Request-ID (a sane incoming one, else a fresh one); error envelopes
carry it too, and so does every log line of the request, plain or JSON."""

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from monitoring.tests.conftest import REPO
from omtx_hub import request_id
from omtx_hub.logging import JsonFormatter, RequestIdFilter

pytestmark = pytest.mark.django_db


def test_a_sane_incoming_id_is_kept() -> None:
    response = Client().get("/health", HTTP_X_REQUEST_ID="trace-42.abc")
    assert response["X-Request-ID"] == "trace-42.abc"


@pytest.mark.parametrize("incoming", [None, "", "x" * 129, "two words", "bad\x01id", "<script>"])
def test_other_ids_are_replaced(incoming: str | None) -> None:
    headers = {} if incoming is None else {"HTTP_X_REQUEST_ID": incoming}
    first = Client().get("/health", **headers)["X-Request-ID"]
    second = Client().get("/health", **headers)["X-Request-ID"]
    assert first != incoming and len(first) == 32
    assert first != second


def test_envelope_of_an_unknown_url_carries_the_id() -> None:
    response = Client().get("/api/v3/nowhere", HTTP_X_REQUEST_ID="req-1")
    assert response.status_code == 404
    assert response.json()["error"]["request_id"] == "req-1"


def test_envelope_of_a_drf_error_carries_the_id(anon_client: APIClient) -> None:
    response = anon_client.get("/api/v3/batches", HTTP_X_REQUEST_ID="req-2")
    assert response.status_code == 401
    assert response.json()["error"]["request_id"] == "req-2"


def test_envelope_of_a_server_error_carries_the_id(owner_client: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("batches.api.cached_reads.batch_list", broken)
    owner_client.raise_request_exception = False
    response = owner_client.get("/api/v3/batches")
    assert response.status_code == 500
    assert response.json()["error"]["request_id"] == response["X-Request-ID"]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("omtx.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def test_json_lines_carry_the_fields(json_log: io.StringIO) -> None:
    token = request_id.request_id.set("req-3")
    try:
        logging.getLogger("omtx.test").info("hello %s", "world", extra={"batch": "b-1"})
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("omtx.test").exception("failed")
    finally:
        request_id.request_id.reset(token)
    first, second = (json.loads(line) for line in json_log.getvalue().splitlines())
    assert first["message"] == "hello world"
    assert (first["level"], first["logger"], first["request_id"], first["batch"]) == (
        "INFO",
        "omtx.test",
        "req-3",
        "b-1",
    )
    assert first["time"].endswith("+00:00")
    assert "ValueError: boom" in second["exc_info"]


@pytest.fixture
def apm_json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("omtx.apm")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


def test_a_log_line_inside_a_request_has_its_id(apm_json_log: io.StringIO, settings: Any) -> None:
    settings.APM_SLOW_REQUEST_MS = 0  # every request is "slow": one line logged inside it
    response = Client().get("/health", HTTP_X_REQUEST_ID="req-4")
    [line] = [json.loads(text) for text in apm_json_log.getvalue().splitlines()]
    assert line["request_id"] == response["X-Request-ID"] == "req-4"
    assert (line["route"], line["status"], line["level"]) == ("health", 200, "WARNING")
    assert line["duration_ms"] > 0


def test_plain_lines_carry_the_id(settings: Any) -> None:
    config = {k: v for k, v in settings.LOGGING["formatters"]["plain"].items() if k != "()"}
    formatter = logging.Formatter(**config)
    record = logging.makeLogRecord({"msg": "x", "levelname": "INFO", "name": "n"})
    # Through a handler without the filter: a dash, not a formatting error.
    assert formatter.format(record).endswith("INFO n [-] x")
    token = request_id.request_id.set("req-5")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.request_id.reset(token)
    assert formatter.format(record).endswith("INFO n [req-5] x")


def test_the_id_ends_with_its_request() -> None:
    Client().get("/health", HTTP_X_REQUEST_ID="req-6")
    # A line logged after the request (or an envelope built outside one) carries no stale id.
    assert request_id.current() is None


def _python(code: str, **env: str) -> "subprocess.CompletedProcess[str]":
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "omtx_hub.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True, timeout=60
    )


def test_log_format_json_turns_every_line_into_json() -> None:
    code = "import django, logging; django.setup(); logging.getLogger('omtx.x').warning('hi %d', 5)"
    done = _python(code, LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    [line] = [json.loads(text) for text in done.stderr.splitlines()]
    assert (line["message"], line["level"], line["logger"], line["request_id"]) == ("hi 5", "WARNING", "omtx.x", None)


def test_an_unknown_log_format_stops_the_start() -> None:
    done = _python("import django; django.setup()", LOG_FORMAT="xml")
    assert done.returncode != 0
    assert "LOG_FORMAT='xml'" in done.stderr
