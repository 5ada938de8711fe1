from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, hash_token
from accounts.services import token_create, token_revoke

URL = "/api/v3/batches/"


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_token_is_stored_hashed(owner: User) -> None:
    token, raw = token_create(user=owner)
    assert raw.startswith("omtx_")
    assert token.key_hash == hash_token(raw) and raw not in (token.key_hash, token.prefix)
    assert bearer(raw).get(URL).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_token_keyword_variants(owner: User) -> None:
    _, raw = token_create(user=owner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    assert client.get(URL).status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Bearer")
    assert client.get(URL).status_code == 401


@pytest.mark.parametrize("state", ["revoked", "expired", "wrong", "inactive_user"])
def test_unusable_tokens_get_401(owner: User, state: str) -> None:
    token, raw = token_create(user=owner)
    if state == "revoked":
        token_revoke(token=token)
    elif state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif state == "wrong":
        raw = raw + "x"
    else:
        User.objects.filter(pk=owner.pk).update(is_active=False)
    response = bearer(raw).get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_create_token_command_prints_a_working_token(owner: User) -> None:
    out = StringIO()
    call_command("create_token", "owner", "--name", "ci", "--expires-in-days", "7", stdout=out)
    raw = out.getvalue().strip()
    assert bearer(raw).get(URL).status_code == 200
    token = ApiToken.objects.get(key_hash=hash_token(raw))
    assert token.name == "ci" and token.expires_at is not None


def test_create_token_command_for_missing_user(db: None) -> None:
    with pytest.raises(CommandError):
        call_command("create_token", "nobody", stdout=StringIO())
    out = StringIO()
    call_command("create_token", "script-bot", "--create-user", stdout=out)
    assert User.objects.filter(username="script-bot").exists()


def test_account_page_creates_shows_once_and_revokes(owner: User, outsider: User) -> None:
    client = Client()
    assert client.get("/account/").status_code == 302  # login first
    client.force_login(owner)
    created = client.post("/account/tokens/", {"name": "laptop"})
    assert created.status_code == 201
    page = created.content.decode()
    token = ApiToken.objects.get(user=owner, name="laptop")
    raw = page.split('<pre id="new-token">')[1].split("</pre>")[0]
    assert hash_token(raw) == token.key_hash
    assert raw not in client.get("/account/").content.decode()  # shown once
    # Another user cannot revoke it.
    other = Client()
    other.force_login(outsider)
    assert other.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    assert not token.is_active


def test_login_page_and_session_api(owner: User) -> None:
    client = Client()
    assert client.get("/account/login/").status_code == 200
    response = client.post("/account/login/", {"username": "owner", "password": "pw-owner-123"})
    assert response.status_code == 302
    assert client.get(URL, HTTP_ACCEPT="application/json").status_code == 200
    assert client.get(URL, HTTP_ACCEPT="text/html").status_code == 200  # browsable API


def test_admin_revoke_action(staff: User, owner: User) -> None:
    token, _ = token_create(user=owner)
    client = Client()
    client.force_login(staff)
    response = client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
