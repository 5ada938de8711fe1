"""Issue 9 for tokens: a default lifetime, never-expiring only when chosen, a new token kept
out of the session, no-store pages, and the security log."""

import logging
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, hash_token
from accounts.services import MAX_TOKEN_LIFETIME_DAYS, token_create, token_revoke
from omtx_hub.errors import InvalidInput

SECURITY = "omtx.security"


def days_left(token: ApiToken) -> float:
    assert token.expires_at is not None
    return (token.expires_at - timezone.now()) / timedelta(days=1)


def test_a_token_expires_after_the_configured_lifetime(settings: Any, owner: User) -> None:
    token, _ = token_create(user=owner)
    assert 89.9 < days_left(token) <= 90
    settings.OMTX_TOKEN_LIFETIME_DAYS = 7
    token, _ = token_create(user=owner)
    assert 6.9 < days_left(token) <= 7
    token, _ = token_create(user=owner, expires_in_days=2)
    assert 1.9 < days_left(token) <= 2


def test_never_expiring_only_by_explicit_choice(owner: User) -> None:
    token, _ = token_create(user=owner, never_expires=True)
    assert token.expires_at is None
    with pytest.raises(InvalidInput):
        token_create(user=owner, expires_in_days=5, never_expires=True)
    for days in (0, MAX_TOKEN_LIFETIME_DAYS + 1):
        with pytest.raises(InvalidInput):
            token_create(user=owner, expires_in_days=days)
    assert ApiToken.objects.filter(user=owner).count() == 1


def test_a_token_past_its_default_lifetime_is_refused(monkeypatch: pytest.MonkeyPatch, owner: User) -> None:
    _, raw = token_create(user=owner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v3/batches/").status_code == 200
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now + timedelta(days=89))
    assert client.get("/api/v3/batches/").status_code == 200
    # Past the 90 days; the row is still in the cache (its TTL runs on the real clock).
    monkeypatch.setattr(timezone, "now", lambda: now + timedelta(days=90, seconds=1))
    assert client.get("/api/v3/batches/").status_code == 401


def test_create_token_command_lifetimes(owner: User) -> None:
    def create(*args: str) -> ApiToken:
        out = StringIO()
        call_command("create_token", "owner", *args, stdout=out)
        return ApiToken.objects.get(key_hash=hash_token(out.getvalue().strip()))

    assert 89.9 < days_left(create()) <= 90
    assert create("--never-expires").expires_at is None
    with pytest.raises(CommandError):
        create("--never-expires", "--expires-in-days", "3")
    with pytest.raises(CommandError):
        create("--expires-in-days", "0")


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_account_page_lifetimes(owner: User) -> None:
    client = logged_in(owner)
    assert b'name="expires_in_days" value="90"' in client.get("/account/").content
    assert client.post("/account/tokens/", {"name": "a", "expires_in_days": "90"}).status_code == 201
    # The days field arrives filled in; ticking "never" is the choice that wins.
    assert (
        client.post("/account/tokens/", {"name": "b", "expires_in_days": "90", "never_expires": "on"}).status_code
        == 201
    )
    assert client.post("/account/tokens/", {"name": "c", "expires_in_days": "0"}).status_code == 400
    tokens = {t.name: t for t in ApiToken.objects.filter(user=owner)}
    assert set(tokens) == {"a", "b"}
    assert days_left(tokens["a"]) > 89.9 and tokens["b"].expires_at is None


def test_a_new_token_is_not_kept_in_the_session(owner: User) -> None:
    client = logged_in(owner)
    created = client.post("/account/tokens/", {"name": "laptop"})
    raw = created.content.decode().split('<pre id="new-token">')[1].split("</pre>")[0]
    assert hash_token(raw) == ApiToken.objects.get(name="laptop").key_hash
    rows = Session.objects.all()
    assert rows.count() == 1
    row = rows.get()
    assert raw not in row.session_data and raw not in str(row.get_decoded())


def test_token_pages_are_not_stored_by_caches(owner: User) -> None:
    client = logged_in(owner)
    token, _ = token_create(user=owner)
    for response in (
        client.get("/account/"),
        client.post("/account/tokens/", {"name": "x"}),
        client.post("/account/tokens/", {"expires_in_days": "-1"}),
        client.post(f"/account/tokens/{token.pk}/revoke/"),
    ):
        assert "no-store" in response["Cache-Control"], response.status_code


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == SECURITY and getattr(r, "event", None) == name]


def test_token_creation_and_revocation_are_logged(caplog: pytest.LogCaptureFixture, owner: User, staff: User) -> None:
    caplog.set_level(logging.INFO, logger=SECURITY)
    token, raw = token_create(user=owner, name="ci")
    [created] = events(caplog, "token_created")
    assert f"user={owner.pk} token={token.pk} prefix={token.prefix}" in created.getMessage()
    assert raw not in created.getMessage()
    token_revoke(token=token, actor=staff)
    token_revoke(token=token, actor=staff)  # already revoked: no second event
    [revoked] = events(caplog, "token_revoked")
    assert f"token={token.pk}" in revoked.getMessage() and f"by={staff.pk}" in revoked.getMessage()


def test_authentication_failures_are_logged(caplog: pytest.LogCaptureFixture, owner: User) -> None:
    caplog.set_level(logging.INFO, logger=SECURITY)
    token, raw = token_create(user=owner)
    token_revoke(token=token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v3/batches/", REMOTE_ADDR="203.0.113.9").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer a b")
    assert client.get("/api/v3/batches/").status_code == 401
    bad_token, malformed = events(caplog, "auth_failed")
    assert "ip=203.0.113.9" in bad_token.getMessage() and bad_token.levelno == logging.WARNING
    assert raw[:12] in bad_token.getMessage() and raw not in bad_token.getMessage()
    assert "malformed" in malformed.getMessage()


def test_failed_password_logins_are_logged(caplog: pytest.LogCaptureFixture, owner: User) -> None:
    caplog.set_level(logging.INFO, logger=SECURITY)
    response = Client().post("/account/login/", {"username": "owner", "password": "wrong-password"})
    assert response.status_code == 200  # the form again
    [failed] = events(caplog, "auth_failed")
    assert "username='owner'" in failed.getMessage() and "wrong-password" not in failed.getMessage()


def test_the_admin_cannot_reassign_unrevoke_or_extend_a_token(staff: User, owner: User, outsider: User) -> None:
    """A token's owner, revocation and expiry change only through the services (which log
    and clear the cached row); the admin form may rename it, nothing else."""
    token, raw = token_create(user=owner, expires_in_days=1)
    token_revoke(token=token, actor=staff)
    token.refresh_from_db()
    before = (token.user_id, token.revoked_at, token.expires_at)
    client = Client()
    client.force_login(staff)
    form = {
        "name": "renamed",
        "user": outsider.pk,
        "expires_at_0": "2099-01-01",
        "expires_at_1": "00:00:00",
        "revoked_at_0": "",
        "revoked_at_1": "",
    }
    response = client.post(f"/admin/accounts/apitoken/{token.pk}/change/", form)
    assert response.status_code == 302, response.content[:500]
    token.refresh_from_db()
    assert token.name == "renamed" and (token.user_id, token.revoked_at, token.expires_at) == before
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v3/batches/").status_code == 401


def test_staff_who_may_only_view_tokens_cannot_revoke_them(owner: User) -> None:
    viewer = User.objects.create_user("auditor", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="accounts", codename="view_apitoken"))
    token, _ = token_create(user=owner)
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/accounts/apitoken/").status_code == 200
    client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_security_log_names_the_client_behind_a_trusted_proxy(
    caplog: pytest.LogCaptureFixture, settings: Any, owner: User
) -> None:
    """Behind the proxy REMOTE_ADDR is the proxy, the same for everyone: the log records the
    client as the rate limiter sees it (ratelimit.client_ip)."""
    settings.OMTX_TRUSTED_PROXIES = ["10.0.0.0/8"]
    caplog.set_level(logging.INFO, logger=SECURITY)
    through_proxy = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.0.0.7"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer omtx_unknown")
    assert client.get("/api/v3/batches/", **through_proxy).status_code == 401
    Client().post("/account/login/", {"username": "owner", "password": "wrong-password"}, **through_proxy)
    token_failure, login_failure = events(caplog, "auth_failed")
    for record in (token_failure, login_failure):
        assert "ip=203.0.113.9 " in record.getMessage(), record.getMessage()
