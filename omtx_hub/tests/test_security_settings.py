"""Production settings (issue 9), read the way production reads them: in a fresh process with
the production environment, since settings.py decides them once at import."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
# The variables docs/security.md tells a production deployment to set.
PRODUCTION_ENV = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "hub.example.org",
}
# Anything these tests decide must not leak in from the shell that runs them.
OVERRIDABLE = (
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "OMTX_TRUSTED_PROXIES",
    "CORS_ALLOWED_ORIGINS",
    "OMTX_TOKEN_LIFETIME_DAYS",
)
SETTINGS_DUMP = (
    "import django, json; django.setup(); from django.conf import settings as s; print(json.dumps({n: getattr(s, n)"
    " for n in ('SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD',"
    " 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_PROXY_SSL_HEADER', 'CORS_ALLOWED_ORIGINS',"
    " 'OMTX_TOKEN_LIFETIME_DAYS', 'DEBUG')}))"
)


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in OVERRIDABLE}
    environ["DJANGO_SETTINGS_MODULE"] = "omtx_hub.settings"
    environ.update(env)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120)


def settings_under(**env: str) -> dict[str, Any]:
    done = run(["-c", SETTINGS_DUMP], **env)
    assert done.returncode == 0, done.stderr
    values: dict[str, Any] = json.loads(done.stdout)
    return values


def test_check_deploy_is_silent_in_production() -> None:
    done = run(["manage.py", "check", "--deploy"], **PRODUCTION_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.strip() == "System check identified no issues (0 silenced)."


def test_check_deploy_sees_a_protection_switched_off() -> None:
    # The silence above is the settings' doing: turn one off and Django's warning is back.
    done = run(["manage.py", "check", "--deploy"], **PRODUCTION_ENV, SECURE_SSL_REDIRECT="false")
    assert "security.W008" in done.stdout + done.stderr


def test_production_turns_every_protection_on() -> None:
    values = settings_under(**PRODUCTION_ENV)
    assert values["SECURE_SSL_REDIRECT"] and values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_HSTS_PRELOAD"]
    assert values["DEBUG"] is False
    # No proxy declared: X-Forwarded-Proto from a client is not believed.
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["CORS_ALLOWED_ORIGINS"] == []
    assert values["OMTX_TOKEN_LIFETIME_DAYS"] == 90


def test_production_values_are_overridable_and_the_proxy_header_needs_trusted_proxies() -> None:
    values = settings_under(
        **PRODUCTION_ENV,
        SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_PRELOAD="false",
        OMTX_TRUSTED_PROXIES="10.0.0.0/8",
        CORS_ALLOWED_ORIGINS="https://app.example.org",
        OMTX_TOKEN_LIFETIME_DAYS="30",
    )
    assert values["SECURE_HSTS_SECONDS"] == 600 and values["SECURE_HSTS_PRELOAD"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["CORS_ALLOWED_ORIGINS"] == ["https://app.example.org"]
    assert values["OMTX_TOKEN_LIFETIME_DAYS"] == 30


def test_development_keeps_plain_http() -> None:
    values = settings_under(ENVIRONMENT="development")
    assert not values["SECURE_SSL_REDIRECT"] and not values["SESSION_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] == 0


@pytest.mark.parametrize("value", ["nope", "10.0.0.0/33"])
def test_a_trusted_proxy_that_is_not_a_network_fails_the_checks(value: str) -> None:
    done = run(["manage.py", "check"], OMTX_TRUSTED_PROXIES=f"10.0.0.0/8,{value}")
    assert done.returncode != 0 and "omtx.E010" in done.stderr
