"""Alert rules (editable data) and the alerts they open (DESIGN §7).

A rule fires when its metric's value is above its threshold; the alert it
opens stays open, one per rule, until the value has been back under the
resolve bound for a few evaluations (monitoring/alerts.py says how).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Metric(models.TextChoices):
    """What a rule can watch; monitoring/readings.py measures each one."""

    CPU_PERCENT = "system.cpu_percent", "CPU use (%)"
    MEMORY_PERCENT = "system.memory_percent", "Memory use (%)"
    DISK_PERCENT = "system.disk_percent", "Disk use of the data directory (%)"
    ERROR_RATE_PERCENT = "requests.error_rate_percent", "Requests answered 5xx (%, APM window)"
    P95_MS = "requests.p95_ms", "Request p95 latency (ms, APM window)"
    BATCH_FAILURE_PERCENT = "batches.failure_rate_percent", "Batches finished failed (%, health window)"
    JOB_ERROR_PERCENT = "batches.job_error_rate_percent", "Finished jobs that failed (%, health window)"
    EXPIRED_LEASE_SECONDS = "executor.oldest_expired_lease_seconds", "Oldest expired job lease (s)"
    QUEUED_JOB_SECONDS = "executor.oldest_queued_job_seconds", "Oldest queued job (s)"


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertRule(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    metric = models.CharField(max_length=64, choices=Metric.choices)
    # The rule holds while the metric's value is strictly above this.
    threshold = models.FloatField()
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.metric} > {self.threshold:g}"

    def holds(self, value: float | None) -> bool:
        """A metric with no value (nothing measured yet) never fires a rule."""
        return value is not None and value > self.threshold


class AlertStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"


class Alert(models.Model):
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    # Copied from the rule at firing: editing the rule later does not rewrite history.
    severity = models.CharField(max_length=16, choices=Severity.choices)
    threshold = models.FloatField()
    message = models.CharField(max_length=300)
    value = models.FloatField(help_text="The metric's value when the alert fired.")
    peak_value = models.FloatField()
    last_value = models.FloatField(null=True, blank=True)
    # Consecutive evaluations with the value under the resolve bound (hysteresis).
    clear_evaluations = models.PositiveSmallIntegerField(default=0)
    opened_at = models.DateTimeField()
    last_evaluated_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            # open_alerts (dashboard, every evaluation): the few open rows, newest first.
            models.Index(fields=["-opened_at"], condition=Q(status=AlertStatus.OPEN), name="alert_open"),
        ]
        constraints = [
            # One open alert per rule, however many monitors evaluate at once.
            models.UniqueConstraint(
                fields=["rule"], condition=Q(status=AlertStatus.OPEN), name="alert_one_open_per_rule"
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message} ({self.status})"
