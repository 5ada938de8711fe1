"""Sending: the signature recipe, retries, give-ups, timeouts, claims and leases, all
against real HTTP receivers (batches/webhooks/tests/receivers.py)."""

import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from batches.models import Batch
from batches.services.lifecycle import batch_cancel
from batches.webhooks.deliveries import deliveries_claim, delivery_record, lease_seconds
from batches.webhooks.keys import secret_rotate
from batches.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookSecret
from batches.webhooks.sender import Sender
from batches.webhooks.tests.conftest import send_all
from batches.webhooks.tests.receivers import HANG, Receiver, refused_url, wait_for
from batches.webhooks.transport import Answer, attempt_seconds, post

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def documented_verify() -> Callable[..., bool]:
    """The verification function exactly as docs/webhooks.md prints it."""
    text = DOCS.read_text()
    section = text.split("## Verifying a delivery", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), str(DOCS), "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def cancelled_batch(hooked_batch: Callable[..., Batch], url: str) -> WebhookDelivery:
    """A batch.cancelled delivery to `url`: the quickest event to make."""
    batch_cancel(batch=hooked_batch(url))
    return WebhookDelivery.objects.get(event="batch.cancelled")


def test_the_signature_verifies_with_the_documented_recipe(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], owner_secret: WebhookSecret, sender: Sender
) -> None:
    hook = receiver(200)
    delivery = cancelled_batch(hooked_batch, hook.url)
    assert send_all(sender) == 1
    (got,) = hook.requests
    verify = documented_verify()
    signature = got.headers["X-OMTX-Signature"]
    assert verify(owner_secret.secret, signature, got.body)
    assert not verify("whsec_wrong", signature, got.body)
    assert not verify(owner_secret.secret, signature, got.body + b" ")
    assert not verify(owner_secret.secret, signature, got.body, tolerance=-1)  # too old
    # Malformed headers are refused, never raised on.
    timestamp = got.headers["X-OMTX-Timestamp"]
    assert not verify(owner_secret.secret, f"t={timestamp},v1={'é' * 64}", got.body)
    assert not verify(owner_secret.secret, "t=²,v1=" + signature.split("v1=")[1], got.body)
    assert got.headers["X-OMTX-Delivery"] == str(delivery.pk)
    assert got.headers["X-OMTX-Event"] == "batch.cancelled"
    assert signature.startswith(f"t={got.headers['X-OMTX-Timestamp']},v1=")
    assert got.path == "/hook?x=1"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.last_status_code == 200


def test_5xx_is_retried_with_backoff_then_delivered(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], sender: Sender, settings: Any
) -> None:
    settings.OMTX_WEBHOOK_BACKOFF_SECONDS = 60
    hook = receiver(500, 503, 200)
    delivery = cancelled_batch(hooked_batch, hook.url)
    send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    # The first retry waits the base delay, ±20 %; nothing is due before it.
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 40 < wait <= 72
    assert send_all(sender) == 0
    for _ in range(2):
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    attempts = list(delivery.attempt_log.order_by("number").values_list("number", "status_code", "outcome"))
    assert attempts == [(1, 500, "retry"), (2, 503, "retry"), (3, 200, "delivered")]
    assert {got.headers["X-OMTX-Delivery"] for got in hook.requests} == {str(delivery.pk)}
    assert [got.headers["X-OMTX-Attempt"] for got in hook.requests] == ["1", "2", "3"]
    assert len({got.body for got in hook.requests}) == 1


def test_a_receiver_that_never_answers_times_out_and_is_retried(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], sender: Sender, settings: Any
) -> None:
    settings.OMTX_WEBHOOK_BACKOFF_SECONDS = 0
    hook = receiver(HANG, 200)
    delivery = cancelled_batch(hooked_batch, hook.url)
    send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert "timed out" in delivery.last_error
    send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == ["retry", "delivered"]


@pytest.mark.parametrize("code", [400, 401, 404, 410, 422, 301])
def test_a_4xx_or_a_redirect_fails_at_once(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], sender: Sender, settings: Any, code: int
) -> None:
    settings.OMTX_WEBHOOK_BACKOFF_SECONDS = 0
    hook = receiver(code, 200)
    delivery = cancelled_batch(hooked_batch, hook.url)
    send_all(sender)
    assert send_all(sender) == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1 and len(hook.requests) == 1
    assert delivery.attempt_log.get().response_excerpt == f"answered {code}"


@pytest.mark.parametrize("code", [408, 429])
def test_408_and_429_are_retried(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], sender: Sender, settings: Any, code: int
) -> None:
    settings.OMTX_WEBHOOK_BACKOFF_SECONDS = 0
    hook = receiver(code, 200)
    delivery = cancelled_batch(hooked_batch, hook.url)
    send_all(sender)
    send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and len(hook.requests) == 2


def test_429_waits_its_retry_after(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], sender: Sender, settings: Any
) -> None:
    settings.OMTX_WEBHOOK_BACKOFF_SECONDS = 1
    hook = receiver((429, {"Retry-After": "600"}))
    delivery = cancelled_batch(hooked_batch, hook.url)
    send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert 590 < (delivery.next_attempt_at - timezone.now()).total_seconds() <= 600


def test_a_receiver_that_is_down_gets_a_retry_scheduled(hooked_batch: Callable[..., Batch], sender: Sender) -> None:
    delivery = cancelled_batch(hooked_batch, refused_url())
    send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.next_attempt_at > timezone.now()
    attempt = delivery.attempt_log.get()
    assert attempt.status_code is None and "refused" in attempt.error.lower()
    assert attempt.outcome == "retry"


def test_the_delivery_fails_after_its_last_attempt(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], sender: Sender, settings: Any
) -> None:
    settings.OMTX_WEBHOOK_MAX_ATTEMPTS = 3
    settings.OMTX_WEBHOOK_BACKOFF_SECONDS = 0
    hook = receiver(500)
    delivery = cancelled_batch(hooked_batch, hook.url)
    for _ in range(5):
        send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert len(hook.requests) == 3
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == ["retry", "retry", "failed"]


def test_a_slow_receiver_does_not_hold_up_the_others(
    make_batch: Callable[..., Batch], receiver: Callable[..., Receiver], owner_secret: WebhookSecret, settings: Any
) -> None:
    settings.OMTX_WEBHOOK_TIMEOUT_SECONDS = 5
    slow = receiver(HANG)
    quick = receiver(200, watch=slow)
    sender = Sender(workers=2)
    try:
        batch_cancel(batch=make_batch(webhook_url=slow.url))
        sender.step()
        wait_for(lambda: slow.hanging == 1)
        batch_cancel(batch=make_batch(webhook_url=quick.url))
        sender.step()
        wait_for(lambda: quick.requests, seconds=3)
        # The quick receiver was served while the slow one still held its request.
        assert quick.requests[0].seen_hanging == 1
    finally:
        slow.release.set()
        sender.shutdown()


def test_the_background_pass_does_not_wait_for_a_hanging_receiver(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], settings: Any
) -> None:
    from batches.background import loop
    from batches.webhooks import sender as module

    settings.OMTX_WEBHOOK_TIMEOUT_SECONDS = 5
    hook = receiver(HANG)
    delivery = cancelled_batch(hooked_batch, hook.url)
    try:
        assert loop.run_once()
        wait_for(lambda: hook.hanging == 1)
        # The pass has returned while the POST is still held: later steps and passes go on.
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SENDING
    finally:
        hook.release.set()
        module.shutdown()


def test_a_url_that_turned_private_is_refused_at_delivery(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], sender: Sender, settings: Any
) -> None:
    hook = receiver(200)
    delivery = cancelled_batch(hooked_batch, hook.url)
    settings.OMTX_WEBHOOK_ALLOW_PRIVATE = False
    send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert "private" in delivery.last_error and not hook.requests and hook.connections == 0


def test_a_lost_claim_is_taken_again_and_the_late_answer_changes_nothing(
    hooked_batch: Callable[..., Batch], receiver: Callable[..., Receiver], sender: Sender
) -> None:
    hook = receiver(200)
    delivery = cancelled_batch(hooked_batch, hook.url)
    (first,) = deliveries_claim(limit=10)
    assert deliveries_claim(limit=10) == []  # held under its lease
    # The first sender hangs past its lease; another takes the delivery and delivers it.
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    send_all(sender)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    late = delivery_record(claimed=first, answer=Answer(500, 10), started_at=timezone.now())
    assert late == "stale"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert list(delivery.attempt_log.order_by("number").values_list("number", "outcome")) == [
        (1, "stale"),
        (2, "delivered"),
    ]


def _trickling_receiver(stop: threading.Event) -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        # One header byte every 0.1 s: each read answers well within the timeout.
        while not stop.is_set():
            try:
                conn.sendall(b"X")
            except OSError:
                break
            time.sleep(0.1)
        conn.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1])


def test_a_trickling_receiver_cannot_hold_an_attempt_past_its_deadline() -> None:
    stop = threading.Event()
    port = _trickling_receiver(stop)
    timeout = 0.5
    result: dict[str, Any] = {}

    def attempt() -> None:
        started = time.monotonic()
        result["answer"] = post(url=f"http://127.0.0.1:{port}/hook", body=b"{}", headers={}, timeout=timeout)
        result["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    # Generous: a connect and a read each within the timeout, several times over.
    worker.join(timeout * 10)
    stop.set()
    worker.join(5)
    assert "seconds" in result and result["seconds"] < timeout * 10, (
        "the attempt was still reading after 10x OMTX_WEBHOOK_TIMEOUT_SECONDS"
    )
    answer = result["answer"]
    assert answer.status_code is None and answer.retryable and "timed out" in answer.error


def test_a_dns_lookup_that_hangs_is_given_up_and_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hanging(*args: Any, **kwargs: Any) -> list[Any]:
        release.wait(30)  # a resolver that answers, eventually, with a closed local port
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 9))]

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    result: dict[str, Answer] = {}
    worker = threading.Thread(
        target=lambda: result.update(answer=post(url="http://slow.example/hook", body=b"{}", headers={}, timeout=0.3)),
        daemon=True,
    )
    worker.start()
    worker.join(10)
    release.set()
    assert "answer" in result, "the attempt waited for the DNS answer"
    answer = result["answer"]
    assert answer.status_code is None and answer.retryable and "does not resolve" in answer.error


def test_the_claim_s_lease_outlasts_the_attempt_s_deadline(settings: Any) -> None:
    for timeout in (2.0, 60.0):
        settings.OMTX_WEBHOOK_TIMEOUT_SECONDS = timeout
        assert lease_seconds() > attempt_seconds(timeout)


def _due_deliveries(owner: User, *, age_seconds: int, count: int) -> None:
    due_at = timezone.now() - timedelta(seconds=age_seconds)
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            owner=owner,
            event=WebhookEvent.JOB_FAILED,
            url="http://127.0.0.1:9/hook",
            payload={"n": n},
            attempt_limit=8,
            next_attempt_at=due_at,
            created_at=due_at,
        )
        for n in range(count)
    )


def test_a_flood_of_one_user_s_deliveries_does_not_starve_another_user(owner: User, outsider: User) -> None:
    secret_rotate(user=owner)
    secret_rotate(user=outsider)
    _due_deliveries(owner, age_seconds=60, count=50)  # a big failing batch's job.failed rows
    _due_deliveries(outsider, age_seconds=1, count=1)  # someone else's batch.completed, due just after
    claimed = deliveries_claim(limit=4)  # one sender's free threads
    owners = {WebhookDelivery.objects.get(pk=one.id).owner_id for one in claimed}
    assert outsider.pk in owners, "the other user's delivery waits until the whole backlog is sent"
