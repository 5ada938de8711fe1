"""Response shapes, for the OpenAPI schema (the fuzzer checks answers against it)."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

# The one error envelope's schema component (API layer to API layer; no batches models).
from batches.api.schemas import ERROR_DESCRIPTIONS, ErrorSerializer

DESCRIPTIONS = {
    **ERROR_DESCRIPTIONS,
    403: "Not allowed: staff with the model permission only, a quota passed, or a blocked address.",
    409: "Already there.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """401 and 429 for every authenticated request, 400 for its input, plus `codes`."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=DESCRIPTIONS[code])
        for code in sorted({400, 401, 429, *codes})
    }


class TierSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    requests_per_minute = serializers.IntegerField()
    burst = serializers.IntegerField()
    endpoint_limits = serializers.DictField(child=serializers.IntegerField())
    fair_share_weight = serializers.FloatField()


class BucketSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="The policy's name in the RateLimit headers.")
    limit_per_minute = serializers.IntegerField()
    capacity = serializers.IntegerField()
    remaining = serializers.IntegerField()
    reset_seconds = serializers.FloatField(help_text="Until the bucket is full again.")


class LimiterSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField()
    backend = serializers.ChoiceField(choices=["redis", "memory"])
    breaker_state = serializers.ChoiceField(choices=["closed", "open", "half_open"])
    breaker_failures = serializers.IntegerField()
    breaker_failures_total = serializers.IntegerField()
    breaker_opened = serializers.IntegerField()
    breaker_last_error = serializers.CharField(allow_blank=True)
    rejections = serializers.IntegerField()
    rejections_window_seconds = serializers.IntegerField()
    blocked_ips = serializers.IntegerField()


class RateLimitStatusSerializer(serializers.Serializer[Any]):
    user_id = serializers.IntegerField()
    tier = TierSerializer()
    buckets = BucketSerializer(many=True)
    recent_rejections = serializers.IntegerField()
    limiter = LimiterSerializer()


class BlockedIPSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    ip = serializers.IPAddressField()
    reason = serializers.CharField()
    counts = serializers.DictField()
    offence = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    note = serializers.CharField(allow_blank=True)


class BlockedIPListSerializer(serializers.Serializer[Any]):
    blocked_ips = BlockedIPSerializer(many=True, help_text="Active blocks, newest first.")


class BlockRequestSerializer(serializers.Serializer[Any]):
    ip = serializers.IPAddressField(min_length=2, max_length=45)
    seconds = serializers.IntegerField(min_value=1, max_value=366 * 86400, required=False)
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class UnblockSerializer(serializers.Serializer[Any]):
    ip = serializers.CharField()
    lifted = serializers.IntegerField()


class AllowedNetworkSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    network = serializers.CharField(min_length=2, max_length=64, help_text="CIDR, e.g. 10.0.0.0/8.")
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class AllowedNetworkListSerializer(serializers.Serializer[Any]):
    networks = AllowedNetworkSerializer(many=True)


class QuotaSerializer(serializers.Serializer[Any]):
    limit = serializers.IntegerField()
    used = serializers.IntegerField()


class QuotasSerializer(serializers.Serializer[Any]):
    tier = serializers.CharField()
    quotas = serializers.DictField(child=QuotaSerializer())


class RateLimitMetricsSerializer(serializers.Serializer[Any]):
    limiter = LimiterSerializer()
    active_blocks_by_reason = serializers.DictField(child=serializers.IntegerField())
    users_by_tier = serializers.DictField(child=serializers.IntegerField())


class ResourceMetricsSerializer(serializers.Serializer[Any]):
    active_batches = serializers.IntegerField()
    queued_jobs = serializers.IntegerField()
    gpu_seconds_month = serializers.IntegerField()
    users_by_tier = serializers.DictField(child=serializers.IntegerField())
