from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import Client

from omtx_hub.env import env_bool, env_int, env_list


def ids(**overrides: Any) -> set[str]:
    return {m.id for m in run_checks() if m.id and m.id.startswith("omtx.")}


def test_default_configuration_passes_checks(db: None) -> None:
    assert ids() == set()


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ({"ENVIRONMENT": "production"}, "omtx.E001"),
        ({"ENVIRONMENT": "production", "SECRET_KEY": "x" * 50, "DEBUG": True}, "omtx.W001"),
        ({"LOG_LEVEL": "LOUD"}, "omtx.E002"),
        ({"OMTX_BOLTZ2_EXECUTOR": "cloud"}, "omtx.E003"),
        ({"MODAL_TOKEN_ID": "ak-1"}, "omtx.E004"),
        ({"REDIS_URL": "localhost:6379"}, "omtx.E005"),
    ],
)
def test_misconfiguration_is_caught_by_checks(settings: Any, overrides: dict[str, Any], expected: str) -> None:
    for key, value in overrides.items():
        setattr(settings, key, value)
    assert expected in ids()


def test_env_helpers_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("X_BOOL", "perhaps")
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_BOOL", False)
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_INT", "-1")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_INT", 1, minimum=0)
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    monkeypatch.setenv("X_BOOL", "off")
    assert env_bool("X_BOOL", True) is False


def test_health(db: None) -> None:
    response = Client().get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_schema_and_docs_are_served(db: None) -> None:
    client = Client()
    schema = client.get("/api/v3/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v3/batches/submit" in {p.rstrip("/") for p in paths} | set(paths)
    docs = client.get("/api/v3/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()


def test_api_root_and_home(db: None) -> None:
    client = Client()
    assert client.get("/api/v3/", HTTP_ACCEPT="application/json").json()["version"] == "v3"
    assert client.get("/").status_code == 200


def test_unknown_api_path_is_404(db: None) -> None:
    assert Client().get("/api/v3/nothing-here/").status_code == 404


def test_openapi_schema_is_valid_without_warnings(db: None) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("spectacular", "--api-version", "v3", "--validate", "--fail-on-warn", stdout=out)
    assert "/api/v3/batches/{batch_id}/results/" in out.getvalue()
