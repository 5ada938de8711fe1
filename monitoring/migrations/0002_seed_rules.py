"""The default alert rules: the seed's thresholds and severities (DESIGN §7), plus stuck work.

Rows, not code, so operators tune them in the admin; this migration only adds the
rules that are missing, and its reverse leaves edited or added rules alone."""

from django.db import migrations

RULES = [
    ("high-cpu", "system.cpu_percent", 85.0, "warning", "CPU use above 85 %."),
    ("high-memory", "system.memory_percent", 85.0, "warning", "Memory use above 85 %."),
    ("disk-almost-full", "system.disk_percent", 90.0, "critical", "The data directory's disk is above 90 %."),
    ("high-error-rate", "requests.error_rate_percent", 10.0, "critical", "More than 10 % of requests answered 5xx."),
    ("slow-responses", "requests.p95_ms", 5000.0, "warning", "Request p95 latency above 5000 ms."),
    ("batch-failures", "batches.failure_rate_percent", 15.0, "warning", "More than 15 % of finished batches failed."),
    (
        "stuck-leases",
        "executor.oldest_expired_lease_seconds",
        300.0,
        "critical",
        "A job's lease expired over 5 minutes ago and no dispatcher recovered it: is any dispatcher running?",
    ),
    (
        "old-queued-job",
        "executor.oldest_queued_job_seconds",
        6 * 3600.0,
        "warning",
        "A job has waited in the queue for over 6 hours.",
    ),
]


def seed(apps, schema_editor):
    AlertRule = apps.get_model("monitoring", "AlertRule")
    for name, metric, threshold, severity, description in RULES:
        AlertRule.objects.get_or_create(
            name=name,
            defaults={"metric": metric, "threshold": threshold, "severity": severity, "description": description},
        )


def unseed(apps, schema_editor):
    AlertRule = apps.get_model("monitoring", "AlertRule")
    for name, metric, threshold, _severity, _description in RULES:
        AlertRule.objects.filter(name=name, metric=metric, threshold=threshold).delete()


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
