from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring import alerts
from monitoring.models import Alert, AlertRule, AlertStatus, Metric, Severity
from monitoring.readings import READERS
from monitoring.tests.fakes import FakeSources, fake_sources_fixture  # noqa: F401
from omtx_hub.errors import Conflict

pytestmark = pytest.mark.usefixtures("fake_sources")


@pytest.fixture(autouse=True)
def _hysteresis(settings: Any) -> None:
    settings.OMTX_ALERT_RESOLVE_MARGIN = 0.05
    settings.OMTX_ALERT_RESOLVE_EVALUATIONS = 2


def slow_rule() -> AlertRule:
    return AlertRule.objects.get(name="slow-responses")


def step(fake: FakeSources, p95: float | None, *, minutes: int) -> alerts.Evaluation:
    fake.set_p95(p95)
    return alerts.evaluate(now=timezone.now() + timedelta(minutes=minutes))


def of_rule(found: list[Alert], rule: AlertRule) -> list[Alert]:
    return [alert for alert in found if alert.rule_id == rule.pk]


def test_seeded_rules_carry_the_seeds_thresholds(db: None) -> None:
    rules = {rule.name: (rule.metric, rule.threshold, rule.severity) for rule in AlertRule.objects.all()}
    assert rules["high-cpu"] == (Metric.CPU_PERCENT, 85.0, Severity.WARNING)
    assert rules["high-memory"] == (Metric.MEMORY_PERCENT, 85.0, Severity.WARNING)
    assert rules["disk-almost-full"] == (Metric.DISK_PERCENT, 90.0, Severity.CRITICAL)
    assert rules["high-error-rate"] == (Metric.ERROR_RATE_PERCENT, 10.0, Severity.CRITICAL)
    assert rules["slow-responses"] == (Metric.P95_MS, 5000.0, Severity.WARNING)
    assert rules["batch-failures"] == (Metric.BATCH_FAILURE_PERCENT, 15.0, Severity.WARNING)
    assert rules["stuck-leases"][0] == Metric.EXPIRED_LEASE_SECONDS
    assert rules["old-queued-job"][0] == Metric.QUEUED_JOB_SECONDS


def test_every_metric_has_a_reader() -> None:
    assert set(READERS) == set(Metric.values)


def test_over_threshold_opens_exactly_one_alert_and_back_under_resolves_it(db: None, fake_sources: FakeSources) -> None:
    rule = slow_rule()
    fired = of_rule(step(fake_sources, 6000.0, minutes=0).fired, rule)
    assert len(fired) == 1 and fired[0].value == 6000.0
    for minute, value in enumerate([7000.0, 5500.0, 6500.0], start=1):
        assert not of_rule(step(fake_sources, value, minutes=minute).fired, rule)
    open_alerts = Alert.objects.filter(rule=rule, status=AlertStatus.OPEN)
    assert open_alerts.count() == 1
    assert open_alerts.get().peak_value == 7000.0 and open_alerts.get().last_value == 6500.0
    # Back under the bound (5000 × 0.95 = 4750): the first evaluation counts, the second resolves.
    assert not of_rule(step(fake_sources, 1000.0, minutes=5).resolved, rule)
    resolved = of_rule(step(fake_sources, 1200.0, minutes=6).resolved, rule)
    assert len(resolved) == 1 and resolved[0].status == AlertStatus.RESOLVED and resolved[0].resolved_at
    assert not Alert.objects.filter(rule=rule, status=AlertStatus.OPEN).exists()
    # Holding again opens a new alert: the history keeps both.
    assert len(of_rule(step(fake_sources, 8000.0, minutes=7).fired, rule)) == 1
    assert Alert.objects.filter(rule=rule).count() == 2


def test_value_between_bound_and_threshold_neither_clears_nor_fires(db: None, fake_sources: FakeSources) -> None:
    rule = slow_rule()
    step(fake_sources, 6000.0, minutes=0)
    step(fake_sources, 1000.0, minutes=1)  # one clear evaluation
    step(fake_sources, 4900.0, minutes=2)  # in the band: the count restarts
    assert Alert.objects.get(rule=rule).clear_evaluations == 0
    step(fake_sources, 1000.0, minutes=3)
    assert Alert.objects.get(rule=rule).status == AlertStatus.OPEN
    assert of_rule(step(fake_sources, 1000.0, minutes=4).resolved, rule)


def test_a_value_at_the_threshold_does_not_fire(db: None, fake_sources: FakeSources) -> None:
    assert not of_rule(step(fake_sources, 5000.0, minutes=0).fired, slow_rule())


def test_no_value_counts_as_clear(db: None, fake_sources: FakeSources) -> None:
    rule = slow_rule()
    step(fake_sources, 6000.0, minutes=0)
    step(fake_sources, None, minutes=1)
    assert of_rule(step(fake_sources, None, minutes=2).resolved, rule)


def test_disabling_a_rule_resolves_its_open_alert(db: None, fake_sources: FakeSources) -> None:
    rule = slow_rule()
    step(fake_sources, 6000.0, minutes=0)
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    assert of_rule(step(fake_sources, 6000.0, minutes=1).resolved, rule)
    assert not of_rule(step(fake_sources, 6000.0, minutes=2).fired, rule)


def test_alert_open_refuses_a_second_open_alert(db: None) -> None:
    rule = slow_rule()
    now = timezone.now()
    assert alerts.alert_open(rule=rule, value=6000.0, now=now) is not None
    with CaptureQueriesContext(connection) as queries:
        assert alerts.alert_open(rule=rule, value=6100.0, now=now) is None
    # The code saw the open alert: it did not lean on the constraint to refuse the insert.
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert Alert.objects.filter(rule=rule).count() == 1


def test_an_alert_resolves_once(db: None, fake_sources: FakeSources) -> None:
    rule = slow_rule()
    step(fake_sources, 6000.0, minutes=0)
    alert = Alert.objects.get(rule=rule)
    Alert.objects.filter(pk=alert.pk).update(clear_evaluations=5)
    # Two monitors resolving the same alert: only the first announces it.
    assert alerts._resolve(alert=alert, now=timezone.now(), reason="test") is True
    assert alerts._resolve(alert=alert, now=timezone.now(), reason="test") is False


def test_database_refuses_two_open_alerts_for_one_rule(db: None) -> None:
    rule = slow_rule()
    now = timezone.now()
    fields = {"severity": "warning", "threshold": 1.0, "message": "x", "value": 2.0, "peak_value": 2.0}
    Alert.objects.create(rule=rule, opened_at=now, last_evaluated_at=now, **fields)
    Alert.objects.create(rule=rule, status=AlertStatus.RESOLVED, opened_at=now, last_evaluated_at=now, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(rule=rule, opened_at=now, last_evaluated_at=now, **fields)


def test_rule_edits_do_not_rewrite_an_open_alert(db: None, fake_sources: FakeSources) -> None:
    rule = slow_rule()
    step(fake_sources, 6000.0, minutes=0)
    AlertRule.objects.filter(pk=rule.pk).update(threshold=100.0, severity=Severity.CRITICAL)
    alert = Alert.objects.get(rule=rule)
    assert (alert.threshold, alert.severity) == (5000.0, Severity.WARNING)
    # The new threshold governs resolution: 4000 is above 100 × 0.95 now.
    step(fake_sources, 4000.0, minutes=1)
    step(fake_sources, 4000.0, minutes=2)
    assert Alert.objects.get(rule=rule).status == AlertStatus.OPEN


def test_acknowledge_once(db: None, staff: User, fake_sources: FakeSources) -> None:
    step(fake_sources, 6000.0, minutes=0)
    alert = Alert.objects.get(rule=slow_rule())
    alerts.alert_acknowledge(alert=alert, user=staff, now=timezone.now())
    alert.refresh_from_db()
    assert alert.acknowledged_by == staff and alert.acknowledged_at is not None
    assert alert.status == AlertStatus.OPEN  # seen, not resolved
    with pytest.raises(Conflict):
        alerts.alert_acknowledge(alert=alert, user=staff, now=timezone.now())


def test_firing_and_resolution_are_logged(
    db: None, fake_sources: FakeSources, caplog: pytest.LogCaptureFixture
) -> None:
    step(fake_sources, 6000.0, minutes=0)
    step(fake_sources, 10.0, minutes=1)
    step(fake_sources, 10.0, minutes=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "monitoring.alerts"]
    assert any(line.startswith("alert fired: slow-responses") for line in lines)
    assert any(line.startswith("alert resolved: slow-responses") for line in lines)


def test_error_rate_rule_reads_the_apm_fraction_as_percent(db: None, fake_sources: FakeSources) -> None:
    rule = AlertRule.objects.get(name="high-error-rate")
    fake_sources.perf["error_rate"] = 0.09  # 9 %: under 10 %
    assert not of_rule(alerts.evaluate(now=timezone.now()).fired, rule)
    fake_sources.perf["error_rate"] = 0.12
    fired = of_rule(alerts.evaluate(now=timezone.now()).fired, rule)
    assert len(fired) == 1 and fired[0].value == 12.0
    # No request in the window: no rate, so nothing to alarm about.
    fake_sources.perf.update(requests=0, error_rate=0.0)
    alerts.evaluate(now=timezone.now())
    assert of_rule(alerts.evaluate(now=timezone.now()).resolved, rule)
