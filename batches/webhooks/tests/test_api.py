"""The webhook endpoints and the webhook_url of a submission, for the owner, an outsider
(404) and an anonymous client (401)."""

import ipaddress
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from batches.models import Batch
from batches.services.lifecycle import batch_cancel
from batches.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookSecret
from batches.webhooks.sender import Sender
from batches.webhooks.tests.conftest import send_all
from batches.webhooks.tests.receivers import Receiver
from batches.webhooks.tests.test_delivery import documented_verify
from conftest import CDK2, LIGANDS

SECRET = "/api/v3/webhooks/secret"
ROTATE = "/api/v3/webhooks/secret/rotate"
DELIVERIES = "/api/v3/webhooks/deliveries"


def submit(client: APIClient, url: str) -> Any:
    body = {"model": "ligand-profile", "protein_sequence": CDK2, "ligands": LIGANDS, "webhook_url": url}
    return client.post("/api/v3/batches", body, format="json")


def test_the_secret_is_created_shown_once_and_rotated(owner_client: APIClient) -> None:
    assert owner_client.get(SECRET).json() == {"exists": False, "created_at": None, "previous_valid_until": None}
    first = owner_client.post(ROTATE)
    assert first.status_code == 201 and first["Cache-Control"] == "no-store"
    assert first.json()["secret"].startswith("whsec_") and first.json()["previous_valid_until"] is None
    state = owner_client.get(SECRET).json()
    assert state["exists"] is True and "secret" not in state
    second = owner_client.post(ROTATE).json()
    assert second["secret"] != first.json()["secret"]
    assert second["previous_valid_until"] is not None
    assert owner_client.get(SECRET).json()["previous_valid_until"] == second["previous_valid_until"]


def test_secrets_are_per_user(owner_client: APIClient, outsider_client: APIClient) -> None:
    owner_client.post(ROTATE)
    assert outsider_client.get(SECRET).json()["exists"] is False
    outsider_client.post(ROTATE)
    assert WebhookSecret.objects.count() == 2
    assert len(set(WebhookSecret.objects.values_list("secret", flat=True))) == 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", SECRET),
        ("post", ROTATE),
        ("get", DELIVERIES),
        ("get", f"{DELIVERIES}/00000000-0000-0000-0000-000000000000"),
        ("post", f"{DELIVERIES}/00000000-0000-0000-0000-000000000000/redeliver"),
    ],
)
def test_anonymous_is_refused(anon_client: APIClient, method: str, path: str) -> None:
    assert getattr(anon_client, method)(path).status_code == 401


def test_during_the_grace_both_secrets_sign_and_after_it_only_the_new(
    owner: User,
    owner_client: APIClient,
    make_batch: Callable[..., Batch],
    receiver: Callable[..., Receiver],
    sender: Sender,
) -> None:
    verify = documented_verify()
    old = owner_client.post(ROTATE).json()["secret"]
    new = owner_client.post(ROTATE).json()["secret"]
    hook = receiver(200)
    batch_cancel(batch=make_batch(webhook_url=hook.url))
    send_all(sender)
    got = hook.requests[-1]
    signature = got.headers["X-OMTX-Signature"]
    assert signature.count("v1=") == 2
    assert verify(new, signature, got.body) and verify(old, signature, got.body)
    # The grace period ends: only the new secret signs.
    WebhookSecret.objects.filter(user=owner).update(previous_valid_until=timezone.now() - timedelta(seconds=1))
    assert owner_client.get(SECRET).json()["previous_valid_until"] is None
    batch_cancel(batch=make_batch(webhook_url=hook.url))
    send_all(sender)
    got = hook.requests[-1]
    signature = got.headers["X-OMTX-Signature"]
    assert signature.count("v1=") == 1
    assert verify(new, signature, got.body) and not verify(old, signature, got.body)


def test_no_grace_drops_the_old_secret_at_once(owner_client: APIClient, settings: Any) -> None:
    settings.OMTX_WEBHOOK_SECRET_GRACE_SECONDS = 0
    owner_client.post(ROTATE)
    assert owner_client.post(ROTATE).json()["previous_valid_until"] is None
    assert WebhookSecret.objects.get().previous_secret == ""


def test_a_submission_with_a_url_needs_a_secret(owner_client: APIClient) -> None:
    response = submit(owner_client, "http://127.0.0.1:9/hook")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_secret_missing"
    assert not Batch.objects.exists()


def test_the_url_is_stored_and_shown(owner_client: APIClient) -> None:
    owner_client.post(ROTATE)
    response = submit(owner_client, "http://127.0.0.1:9/hook")
    assert response.status_code == 201, response.json()
    assert response.json()["webhook_url"] == "http://127.0.0.1:9/hook"
    detail = owner_client.get(response.json()["url"]).json()
    assert detail["webhook_url"] == "http://127.0.0.1:9/hook"
    plain = owner_client.post(
        "/api/v3/batches", {"protein_sequence": CDK2, "ligands": LIGANDS, "model": "ligand-profile"}, format="json"
    )
    assert plain.json()["webhook_url"] is None


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.org/hook", "invalid_webhook_url"),
        ("javascript:alert(1)", "invalid_webhook_url"),
        ("http:///nohost", "invalid_webhook_url"),
        ("http://user:pw@127.0.0.1/hook", "invalid_webhook_url"),
        ("http://127.0.0.1:99999/hook", "invalid_webhook_url"),
        ("http://no-such-host.invalid/hook", "webhook_url_unresolved"),
    ],
)
def test_a_malformed_url_is_400(owner_client: APIClient, url: str, code: str) -> None:
    owner_client.post(ROTATE)
    response = submit(owner_client, url)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and error["details"] == {"field": "webhook_url"}


def test_a_url_too_long_is_400(owner_client: APIClient) -> None:
    owner_client.post(ROTATE)
    response = submit(owner_client, "http://127.0.0.1/" + "a" * 2000)
    assert response.status_code == 400
    assert "webhook_url" in response.json()["error"]["details"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00:ec2::254]/hook",
        "https://[fe80::1]/hook",
        # IPv6 forms that carry an IPv4 address the packets go to.
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/hook",  # 6to4 of 169.254.169.254
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "http://[::127.0.0.1]/hook",  # IPv4-compatible
        "http://[::10.0.0.1]/hook",
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
    ],
)
def test_private_targets_are_refused_in_production(owner_client: APIClient, settings: Any, url: str) -> None:
    settings.OMTX_WEBHOOK_ALLOW_PRIVATE = False
    owner_client.post(ROTATE)
    response = submit(owner_client, url)
    assert response.status_code == 400, url
    assert response.json()["error"]["code"] == "webhook_url_not_public"
    assert not Batch.objects.exists()


def test_a_public_address_passes_the_rule(settings: Any) -> None:
    from batches.webhooks.addresses import resolve_target

    settings.OMTX_WEBHOOK_ALLOW_PRIVATE = False
    target = resolve_target("https://93.184.215.14:8443/hook?a=b")
    assert (target.scheme, target.address, target.port, target.path) == ("https", "93.184.215.14", 8443, "/hook?a=b")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b::c0a8:1", False),  # NAT64 of 192.168.0.1
        ("::8.8.8.8", True),
        ("::100.64.0.1", False),  # IPv4-compatible, shared address space
        ("2606:4700::1111", True),  # plain global IPv6: nothing embedded
    ],
)
def test_ipv6_forms_are_judged_by_the_ipv4_address_they_carry(settings: Any, address: str, allowed: bool) -> None:
    from batches.webhooks.addresses import address_allowed

    settings.OMTX_WEBHOOK_ALLOW_PRIVATE = False
    assert address_allowed(ipaddress.ip_address(address)) is allowed


def test_the_dry_run_checks_the_url_too(owner_client: APIClient, settings: Any) -> None:
    settings.OMTX_WEBHOOK_ALLOW_PRIVATE = False
    body = {"model": "ligand-profile", "protein_sequence": CDK2, "ligands": LIGANDS, "webhook_url": "http://10.0.0.1/"}
    response = owner_client.post("/api/v3/batches/validate", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "webhook_url_not_public"


def make_delivery(owner_client: APIClient, make_batch: Callable[..., Batch]) -> tuple[Batch, WebhookDelivery]:
    owner_client.post(ROTATE)
    batch = make_batch(webhook_url="http://127.0.0.1:9/hook")
    batch_cancel(batch=batch)
    return batch, WebhookDelivery.objects.get(batch=batch)


def test_the_owner_lists_and_reads_deliveries_with_their_attempts(
    owner_client: APIClient, make_batch: Callable[..., Batch], sender: Sender
) -> None:
    batch, delivery = make_delivery(owner_client, make_batch)
    send_all(sender)  # port 9: refused, retry scheduled
    page = owner_client.get(DELIVERIES).json()
    assert page["count"] == 1
    (row,) = page["results"]
    assert (row["id"], row["event"], row["batch_id"], row["status"]) == (
        str(delivery.pk),
        "batch.cancelled",
        str(batch.pk),
        "pending",
    )
    assert row["next_attempt_at"] is not None and row["attempts"] == 1
    detail = owner_client.get(row["url"]).json()
    assert detail["payload"]["id"] == str(delivery.pk)
    (attempt,) = detail["attempt_log"]
    assert attempt["number"] == 1 and attempt["status_code"] is None and attempt["outcome"] == "retry"
    assert "refused" in attempt["error"].lower()


def test_delivery_filters(owner_client: APIClient, make_batch: Callable[..., Batch]) -> None:
    batch, _ = make_delivery(owner_client, make_batch)
    other = make_batch(webhook_url="http://127.0.0.1:9/other")
    batch_cancel(batch=other)
    assert owner_client.get(DELIVERIES, {"batch": str(batch.pk)}).json()["count"] == 1
    assert owner_client.get(DELIVERIES, {"status": "pending"}).json()["count"] == 2
    assert owner_client.get(DELIVERIES, {"status": "delivered"}).json()["count"] == 0
    assert owner_client.get(DELIVERIES, {"event": "batch.cancelled"}).json()["count"] == 2
    assert owner_client.get(DELIVERIES, {"event": "job.failed"}).json()["count"] == 0
    for params, code in [({"batch": "x"}, "invalid_batch"), ({"status": "nope"}, "invalid_status")]:
        response = owner_client.get(DELIVERIES, params)
        assert response.status_code == 400 and response.json()["error"]["code"] == code


def test_an_outsider_sees_none_of_them(
    owner_client: APIClient, outsider_client: APIClient, make_batch: Callable[..., Batch]
) -> None:
    _, delivery = make_delivery(owner_client, make_batch)
    assert outsider_client.get(DELIVERIES).json()["count"] == 0
    assert outsider_client.get(f"{DELIVERIES}/{delivery.pk}").status_code == 404
    assert outsider_client.post(f"{DELIVERIES}/{delivery.pk}/redeliver").status_code == 404
    assert owner_client.get(f"{DELIVERIES}/not-a-uuid").status_code == 404


def test_redeliver_sends_again_with_a_fresh_budget(
    owner_client: APIClient, make_batch: Callable[..., Batch], settings: Any
) -> None:
    settings.OMTX_WEBHOOK_MAX_ATTEMPTS = 2
    _, delivery = make_delivery(owner_client, make_batch)
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED, attempts=2, next_attempt_at=timezone.now())
    response = owner_client.post(f"{DELIVERIES}/{delivery.pk}/redeliver")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_limit) == (DeliveryStatus.PENDING, 4)
    WebhookDelivery.objects.update(status=DeliveryStatus.SENDING)
    conflict = owner_client.post(f"{DELIVERIES}/{delivery.pk}/redeliver")
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "delivery_sending"


def test_the_account_page_shows_the_webhook_section(owner: User, owner_client: APIClient) -> None:
    browser = Client()
    browser.force_login(owner)
    page = browser.get("/account/").content.decode()
    assert "No webhook secret yet" in page and "/api/v3/webhooks/secret/rotate" in page
    owner_client.post(ROTATE)
    page = browser.get("/account/").content.decode()
    assert "Your webhook secret was made" in page and "Rotate the webhook secret" in page
    assert WebhookSecret.objects.get().secret not in page


def test_the_account_pages_button_rotates_and_shows_the_secret_once(owner: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    page = browser.get("/account/")
    token = page.cookies["csrftoken"].value
    response = browser.post(ROTATE, {"csrfmiddlewaretoken": token}, HTTP_ACCEPT="text/html")
    assert response.status_code == 201
    assert WebhookSecret.objects.get(user=owner).secret in response.content.decode()
