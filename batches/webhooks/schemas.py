"""The webhook endpoints' bodies, for the OpenAPI schema (batches/webhooks/views.py)."""

from typing import Any

from rest_framework import serializers

from batches.webhooks.models import DeliveryStatus, WebhookEvent


class SecretStateSerializer(serializers.Serializer[Any]):
    exists = serializers.BooleanField(help_text="Whether you have a webhook secret.")
    created_at = serializers.DateTimeField(allow_null=True, help_text="When the current secret was made, or null.")
    previous_valid_until = serializers.DateTimeField(
        allow_null=True, help_text="Until when deliveries also carry the previous secret's signature, or null."
    )


class NewSecretSerializer(SecretStateSerializer):
    secret = serializers.CharField(help_text="The new secret. Shown this once: store it now.")


class AttemptSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField(min_value=1, help_text="1 for the first attempt.")
    started_at = serializers.DateTimeField(help_text="When the POST began.")
    duration_ms = serializers.IntegerField(min_value=0, help_text="How long it took.")
    status_code = serializers.IntegerField(allow_null=True, help_text="The receiver's status code, or null.")
    error = serializers.CharField(allow_blank=True, help_text="Why there was no answer (timeout, refused, …).")
    response_excerpt = serializers.CharField(allow_blank=True, help_text="The first characters of the answer.")
    outcome = serializers.ChoiceField(
        choices=["delivered", "retry", "failed", "stale"], help_text="What the attempt led to."
    )


class DeliverySerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField(help_text="The delivery id: the X-OMTX-Delivery header.")
    url = serializers.URLField(help_text="This delivery (absolute URL).")
    event = serializers.ChoiceField(choices=WebhookEvent.choices, help_text="The event type.")
    batch_id = serializers.UUIDField(allow_null=True, help_text="The batch, or null once it is deleted.")
    job_id = serializers.UUIDField(allow_null=True, help_text="The job of a job.* event, else null.")
    target = serializers.CharField(help_text="Where it is POSTed (the batch's webhook_url).")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, help_text="Delivery status.")
    attempts = serializers.IntegerField(min_value=0, help_text="Attempts so far.")
    next_attempt_at = serializers.DateTimeField(
        allow_null=True, help_text="When the next attempt is due (pending), or null."
    )
    created_at = serializers.DateTimeField(help_text="When the event happened.")
    delivered_at = serializers.DateTimeField(allow_null=True, help_text="When a 2xx came back, or null.")
    last_status_code = serializers.IntegerField(allow_null=True, help_text="The last answer's status code, or null.")
    last_error = serializers.CharField(allow_blank=True, help_text="The last attempt's error, if any.")


class DeliveryDetailSerializer(DeliverySerializer):
    payload = serializers.DictField(child=serializers.JSONField(), help_text="The body POSTed (docs/webhooks.md).")
    attempt_log = AttemptSerializer(many=True, help_text="Every attempt, first first.")


class DeliveryPageSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField(min_value=0, help_text="Items across all pages.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first.")
    results = DeliverySerializer(many=True, help_text="Deliveries, newest first.")
