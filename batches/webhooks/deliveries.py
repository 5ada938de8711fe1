"""The outbox's other side: claim due deliveries, record each attempt, redeliver.

Claims follow the engine's rule: a conditional UPDATE … WHERE status IN (pending,
sending) AND next_attempt_at <= now over rows picked with FOR UPDATE SKIP LOCKED, so
two background workers never take the same delivery, and each claim stamps a token that
every later write is conditioned on. A claimed delivery's next_attempt_at is its lease:
if its sender dies, the delivery is due again when the lease runs out.
"""

import json
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from batches.webhooks.keys import signing_keys
from batches.webhooks.models import DELIVERY_DUE, DeliveryStatus, WebhookAttempt, WebhookDelivery
from batches.webhooks.signing import signature_header
from batches.webhooks.transport import Answer, attempt_seconds
from omtx_hub.errors import Conflict

# A claim's lease: at least this, and always longer than an attempt can take (its overall
# deadline, transport.attempt_seconds), so no second sender takes a delivery still being sent.
LEASE_SECONDS = 120
LEASE_MARGIN_SECONDS = 30
# Due deliveries read per claimed one, to share the claims among their owners.
CANDIDATES_PER_CLAIM = 20
# Answers that mean "try again later"; any other 4xx (and 3xx: redirects are not followed)
# fails the delivery at once.
RETRYABLE_CODES = {408, 429}
JITTER = 0.2
USER_AGENT = "OMTX-Hub-Webhooks/1"


@dataclass(frozen=True)
class Claimed:
    """A delivery one sender holds under `token`: its attempt `number` is ready to POST."""

    id: UUID
    token: str
    number: int
    limit: int
    url: str
    body: bytes
    headers: dict[str, str]


def lease_seconds() -> float:
    return max(LEASE_SECONDS, attempt_seconds(settings.OMTX_WEBHOOK_TIMEOUT_SECONDS) + LEASE_MARGIN_SECONDS)


def deliveries_claim(*, limit: int) -> list[Claimed]:
    """Take up to `limit` due deliveries, shared round-robin among their owners (oldest due
    first within each), and sign them: one user's backlog does not hold up another's."""
    now = timezone.now()
    token = uuid.uuid4().hex
    due = WebhookDelivery.objects.filter(status__in=DELIVERY_DUE, next_attempt_at__lte=now)
    with transaction.atomic():
        # SKIP LOCKED on PostgreSQL (another sender's candidates are passed over); SQLite
        # has no row locks and serialises writers instead.
        candidates = due.select_for_update(skip_locked=True).order_by("next_attempt_at", "pk")
        ids = round_robin(list(candidates.values_list("pk", "owner_id")[: limit * CANDIDATES_PER_CLAIM]), limit)
        if not ids:
            return []
        due.filter(pk__in=ids).update(
            status=DeliveryStatus.SENDING,
            claim_token=token,
            next_attempt_at=now + timedelta(seconds=lease_seconds()),
            attempts=F("attempts") + 1,
        )
        rows = list(WebhookDelivery.objects.filter(claim_token=token, status=DeliveryStatus.SENDING))
        keys = signing_keys(user_ids=[row.owner_id for row in rows], now=now)
    claimed = []
    for row in rows:
        if row.owner_id in keys:
            claimed.append(_signed(row, token, keys[row.owner_id]))
        else:
            _fail_unsigned(row, token, now)
    return claimed


def round_robin(candidates: list[tuple[UUID, int]], limit: int) -> list[UUID]:
    """Up to `limit` of the (id, owner) `candidates` (oldest first): each owner's oldest,
    owners in the order of their oldest, then each owner's second, and so on."""
    queues: dict[int, deque[UUID]] = {}
    for pk, owner_id in candidates:
        queues.setdefault(owner_id, deque()).append(pk)
    picked: list[UUID] = []
    while queues and len(picked) < limit:
        for owner_id in list(queues):
            if len(picked) == limit:
                break
            picked.append(queues[owner_id].popleft())
            if not queues[owner_id]:
                del queues[owner_id]
    return picked


def _signed(row: WebhookDelivery, token: str, keys: list[str]) -> Claimed:
    body = json.dumps(row.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-OMTX-Event": row.event,
        "X-OMTX-Delivery": str(row.pk),
        "X-OMTX-Attempt": str(row.attempts),
        "X-OMTX-Timestamp": str(timestamp),
        "X-OMTX-Signature": signature_header(keys=keys, timestamp=timestamp, body=body),
    }
    return Claimed(row.pk, token, row.attempts, row.attempt_limit, row.url, body, headers)


def _fail_unsigned(row: WebhookDelivery, token: str, now: datetime) -> None:
    """Nothing to sign with (submission requires a secret, so only a hand-made row)."""
    answer = Answer(None, 0, error="the owner has no webhook secret to sign with", retryable=False)
    claimed = Claimed(row.pk, token, row.attempts, row.attempt_limit, row.url, b"", {})
    delivery_record(claimed=claimed, answer=answer, started_at=now)


def delivery_record(*, claimed: Claimed, answer: Answer, started_at: datetime) -> str:
    """Store the attempt and what it leads to; the outcome (`stale` when this sender's
    claim was lost meanwhile: the attempt is logged, the delivery left to its holder)."""
    now = timezone.now()
    outcome, fields = _next_state(claimed, answer, now)
    with transaction.atomic():
        held = WebhookDelivery.objects.filter(pk=claimed.id, claim_token=claimed.token, status=DeliveryStatus.SENDING)
        if not held.update(**fields):
            outcome = "stale"
            if not WebhookDelivery.objects.filter(pk=claimed.id).exists():
                return "gone"
        WebhookAttempt.objects.create(
            delivery_id=claimed.id,
            number=claimed.number,
            started_at=started_at,
            duration_ms=answer.duration_ms,
            status_code=answer.status_code,
            error=answer.error,
            response_excerpt=answer.excerpt[:1000],
            outcome=outcome,
        )
    return outcome


def _next_state(claimed: Claimed, answer: Answer, now: datetime) -> tuple[str, dict[str, Any]]:
    common = {"last_status_code": answer.status_code, "last_error": answer.error, "claim_token": ""}
    code = answer.status_code
    if code is not None and 200 <= code < 300:
        return "delivered", {**common, "status": DeliveryStatus.DELIVERED, "delivered_at": now}
    retryable = answer.retryable if code is None else (code >= 500 or code in RETRYABLE_CODES)
    if not retryable or claimed.number >= claimed.limit:
        return "failed", {**common, "status": DeliveryStatus.FAILED}
    delay = retry_after_seconds(answer.retry_after, now) if code == 429 else None
    if delay is None:
        delay = backoff_seconds(claimed.number)
    delay = min(delay, settings.OMTX_WEBHOOK_BACKOFF_MAX_SECONDS)
    return "retry", {**common, "status": DeliveryStatus.PENDING, "next_attempt_at": now + timedelta(seconds=delay)}


def backoff_seconds(attempt: int) -> float:
    """Before attempt `attempt` + 1: the base doubled per attempt made, capped, ±20 %."""
    base: float = settings.OMTX_WEBHOOK_BACKOFF_SECONDS * 2 ** max(0, attempt - 1)
    capped: float = min(base, settings.OMTX_WEBHOOK_BACKOFF_MAX_SECONDS)
    # Bandit B311 does not apply: jitter spreads retries, it protects nothing.
    return capped * random.uniform(1 - JITTER, 1 + JITTER)  # nosec B311


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header's delay: seconds, or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send again now, with a fresh budget of attempts (an operator's or owner's request
    after fixing the receiver). Refused while a sender holds it."""
    updated = WebhookDelivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.SENDING)
    moved = updated.update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=timezone.now(),
        attempt_limit=F("attempts") + settings.OMTX_WEBHOOK_MAX_ATTEMPTS,
        claim_token="",
    )
    if not moved:
        raise Conflict("The delivery is being sent right now.", code="delivery_sending")
    delivery.refresh_from_db()
    return delivery
