"""Tiers as data (edited in the admin), who is on which tier, blocked IPs and the
allow-list. The limiter reads tiers through `ratelimit.tiers` (cached briefly) and
blocked IPs through `ratelimit.blocklist` (held in Redis or process memory), so the
request path queries none of these tables."""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from ratelimit.endpoints import ENDPOINTS


class Tier(models.Model):
    name = models.SlugField(max_length=40, unique=True)
    # At least 1: a zero rate never refills and has no expiry (the bucket script divides by it).
    requests_per_minute = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    # Bucket capacity: how many requests may arrive at once before the per-minute rate paces them.
    burst = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    # Per-endpoint requests per minute, by endpoint name (ratelimit.endpoints.ENDPOINTS),
    # e.g. {"submit": 10, "status": 180, "results": 60}; an endpoint not listed has the tier limit only.
    endpoint_limits = models.JSONField(default=dict, blank=True)
    max_ligands_per_batch = models.PositiveIntegerField()
    max_active_batches = models.PositiveIntegerField()
    max_queued_jobs = models.PositiveIntegerField()
    gpu_seconds_per_month = models.PositiveBigIntegerField()
    # The dispatcher's fair share (batches/engine/fairness.py) divides a user's jobs in flight by this.
    fair_share_weight = models.FloatField(default=1.0)
    # Users without an assignment are on this tier; one tier at most is the default.
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["requests_per_minute", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_tier"),
            models.CheckConstraint(condition=Q(fair_share_weight__gt=0), name="tier_weight_positive"),
            models.CheckConstraint(condition=Q(burst__gte=1), name="tier_burst_positive"),
            models.CheckConstraint(condition=Q(requests_per_minute__gte=1), name="tier_rate_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        problem = endpoint_limits_problem(self.endpoint_limits)
        if problem:
            raise ValidationError({"endpoint_limits": problem})


def endpoint_limits_problem(value: Any) -> str:
    """What is wrong with an endpoint_limits value ("" when nothing): a mapping from the
    endpoint names of ratelimit.endpoints to whole requests per minute, at least 1."""
    if not isinstance(value, dict):
        return 'A mapping of endpoint name to requests per minute, e.g. {"status": 180}.'
    names = sorted(set(ENDPOINTS.values()))
    for name, limit in value.items():
        if name not in names:
            return f"Unknown endpoint {name!r}; the endpoints are {', '.join(names)}."
        if not valid_limit(limit):
            return f"The limit of {name!r} must be a whole number of requests per minute, at least 1."
    return ""


def valid_limit(limit: Any) -> bool:
    # bool is an int to Python, and True is no limit anyone meant.
    return isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1


class TierAssignment(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tier_assignment")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="assignments")
    assigned_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} → {self.tier}"


class BlockedIP(models.Model):
    """One block of one address: why, what was counted, until when. A repeat offender's
    next block lasts longer (ratelimit.suspicious.block_seconds counts earlier rows)."""

    class Reason(models.TextChoices):
        AUTH_FAILURES = "auth_failures", "Repeated authentication failures"
        NOT_FOUND_PROBING = "not_found_probing", "Probing non-existent ids"
        RATE_LIMITED = "rate_limited", "Repeatedly rate limited"
        MANUAL = "manual", "Blocked by staff"

    ip = models.GenericIPAddressField()
    reason = models.CharField(max_length=32, choices=Reason.choices)
    counts = models.JSONField(default=dict, blank=True)
    offence = models.PositiveIntegerField(default=1, help_text="1 for a first block, 2 for the next, …")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # blocks_active and block_seconds: an address's blocks, newest first.
            models.Index(fields=["ip", "-created_at"], name="blockedip_ip_created"),
        ]

    def __str__(self) -> str:
        return f"{self.ip} ({self.reason})"


class AllowedNetwork(models.Model):
    """Never blocked, never limited by address (internal networks, health checkers).
    Users on an allowed network keep their tier's limits."""

    network = models.CharField(max_length=64, unique=True, help_text="CIDR, e.g. 10.0.0.0/8 or 192.0.2.7/32")
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.network
