"""What the production settings make the hub answer: HSTS, the HTTPS redirect, secure cookie
flags, the proxy header, CSP and CORS, through the test client with the settings on."""

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client

HSTS_SECONDS = 31_536_000
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
SCRIPT_SRC = re.compile(r"<script[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)


@pytest.fixture
def production(settings: Any) -> Any:
    """The values settings.py gives ENVIRONMENT=production (test_security_settings.py checks
    that it does). Set before a Client is made: SecurityMiddleware reads them when built."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = HSTS_SECONDS
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    return settings


def directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {part[0]: part[1:] for part in parts}


def test_https_answers_carry_hsts(production: Any, db: None) -> None:
    response = Client().get("/", secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == f"max-age={HSTS_SECONDS}; includeSubDomains; preload"


def test_plain_http_is_redirected_but_health_is_not(production: Any, db: None) -> None:
    client = Client()
    response = client.get("/account/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/account/login/"
    assert client.get("/health").status_code == 200


def test_forwarded_proto_is_believed_only_with_a_trusted_proxy(production: Any, db: None) -> None:
    assert Client().get("/", HTTP_X_FORWARDED_PROTO="https").status_code == 301
    production.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = Client().get("/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200 and "Strict-Transport-Security" in response


def test_session_and_csrf_cookies_are_secure(production: Any, owner: User) -> None:
    client = Client()
    page = client.get("/account/login/", secure=True)
    assert page.cookies["csrftoken"]["secure"] is True
    login = client.post(
        "/account/login/",
        {"username": "owner", "password": "pw-owner-123"},
        secure=True,
    )
    assert login.status_code == 302
    session = login.cookies["sessionid"]
    assert session["secure"] is True and session["httponly"] is True


def test_pages_get_a_strict_policy(owner: User) -> None:
    client = Client()
    client.force_login(owner)
    for path in ("/", "/account/", "/account/login/", "/admin/login/"):
        policy = directives(client.get(path))
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


def test_pages_run_no_inline_script(owner: User, staff: User) -> None:
    """Under script-src 'self' an inline script would not run: the pages must not need one."""
    client = Client()
    client.force_login(staff)
    for path in ("/", "/account/", "/admin/", "/admin/batches/batch/", "/api/v3/docs/"):
        html = client.get(path, HTTP_ACCEPT="text/html").content.decode()
        assert not INLINE_SCRIPT.search(html), path


def test_api_docs_render_under_the_policy(db: None) -> None:
    """The Swagger UI page: every script it loads comes from the hub (served), none is
    inline; only styles (and data: images) are relaxed, and only on this page."""
    client = Client()
    page = client.get("/api/v3/docs/")
    assert page.status_code == 200
    policy = directives(page)
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" in policy["style-src"] and "data:" in policy["img-src"]
    sources = SCRIPT_SRC.findall(page.content.decode())
    assert len(sources) == 3
    for src in sources:
        assert src.startswith("/") and not src.startswith("//"), src
        if src.startswith("/static/"):
            assert finders.find(src.removeprefix("/static/")), src
        else:
            script = client.get(src)
            assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
            assert b"SwaggerUIBundle(" in script.content


ORIGIN = "https://app.example.org"


def preflight(origin: str, path: str = "/api/v3/batches/") -> Any:
    return Client().options(path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")


def test_cors_allows_only_listed_origins_on_the_api(settings: Any, db: None) -> None:
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]
    assert preflight(ORIGIN)["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Credentials" not in preflight(ORIGIN)
    assert "Access-Control-Allow-Origin" not in preflight("https://evil.example")
    assert "Access-Control-Allow-Origin" not in preflight(ORIGIN, path="/account/login/")


def test_cors_is_closed_by_default(db: None) -> None:
    assert "Access-Control-Allow-Origin" not in preflight(ORIGIN)
