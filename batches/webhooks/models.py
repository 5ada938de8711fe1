"""Webhooks: each user's signing secret, the outbox of deliveries, and every attempt.

A delivery row is written in the transaction that makes the change it reports
(batches/webhooks/outbox.py), so a rolled-back change sends nothing and a crash loses
nothing; the background worker sends it later (batches/webhooks/sender.py). Imported by
batches/models.py, so these are models of the `batches` app.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class WebhookSecret(models.Model):
    """The key every delivery to the user's URLs is signed with. Rotating keeps the previous
    key valid until `previous_valid_until`, and deliveries meanwhile carry both signatures."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_secret")
    secret = models.CharField(max_length=100)
    created_at = models.DateTimeField()
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_valid_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"webhook secret of {self.user_id} ({self.created_at:%Y-%m-%d})"


class WebhookEvent(models.TextChoices):
    BATCH_COMPLETED = "batch.completed"
    BATCH_COMPLETED_WITH_FAILURES = "batch.completed_with_failures"
    BATCH_FAILED = "batch.failed"
    BATCH_CANCELLED = "batch.cancelled"
    JOB_FAILED = "job.failed"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    # Claimed by a sender under `claim_token` until `next_attempt_at` (its lease).
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


DELIVERY_DUE = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


class WebhookDelivery(models.Model):
    """One event for one URL. Its id is the X-OMTX-Delivery header, the same on every
    attempt, so a receiver can drop a repeat."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No indexes of their own on owner, batch and delivery: the composite ones below lead with them.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    # SET_NULL: the log of a deleted batch's deliveries stays (its id is in the payload).
    batch = models.ForeignKey(
        "batches.Batch",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_deliveries",
        db_index=False,
    )
    job_id = models.UUIDField(null=True, blank=True)
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    # The batch's URL when the event happened.
    url = models.CharField(max_length=2000)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The attempt after which a failure is final; a redelivery raises it.
    attempt_limit = models.PositiveSmallIntegerField()
    # Pending: when the next attempt is due. Sending: when the sender's lease runs out and
    # another may claim it (a sender that died).
    next_attempt_at = models.DateTimeField()
    claim_token = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # deliveries_claim: the due ones, oldest due first. Partial, so it holds only the
            # deliveries still owed, however long the log grows.
            models.Index(fields=["next_attempt_at"], condition=Q(status__in=DELIVERY_DUE), name="webhook_due"),
            # delivery_list: a user's deliveries, newest first.
            models.Index(fields=["owner", "-created_at"], name="webhook_owner_created"),
            # The batch filter of delivery_list and the admin's link from a batch.
            models.Index(fields=["batch", "-created_at"], name="webhook_batch_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} [{self.status}]"


class WebhookAttempt(models.Model):
    """One POST of a delivery: what the receiver answered, or why there was no answer."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", db_index=False)
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)
    # What the attempt led to: delivered, retry, or failed.
    outcome = models.CharField(max_length=16)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_once")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error[:40]}"
