"""Two monitors evaluating at once (PostgreSQL: real concurrent transactions)."""

import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from monitoring import alerts
from monitoring.models import Alert, AlertRule
from monitoring.tests.fakes import FakeSources, fake_sources_fixture  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_sources")]


def test_two_monitors_open_one_alert(fake_sources: FakeSources, monkeypatch: pytest.MonkeyPatch) -> None:
    if not AlertRule.objects.filter(name="slow-responses").exists():
        # transaction=True flushes the seeded rows: put the one under test back.
        AlertRule.objects.create(name="slow-responses", metric="requests.p95_ms", threshold=5000.0)
    # Only the rule under test: a busy CI machine must not fire high-cpu here.
    AlertRule.objects.exclude(name="slow-responses").update(enabled=False)
    fake_sources.set_p95(9000.0)
    # Both monitors read "no open alert" before either opens one: the rule lock decides.
    barrier = threading.Barrier(2)
    real_open = alerts.alert_open

    def racing_open(**kwargs: Any) -> Any:
        barrier.wait(timeout=10)
        return real_open(**kwargs)

    monkeypatch.setattr(alerts, "alert_open", racing_open)
    # The rule lock makes the second monitor see the first's alert and not even try
    # (the unique constraint behind it would refuse the row, silently).
    inserts: list[int] = []
    real_create = Alert.objects.create

    def counting_create(**kwargs: Any) -> Alert:
        inserts.append(1)
        return real_create(**kwargs)

    monkeypatch.setattr(Alert.objects, "create", counting_create)
    results: list[int] = []
    errors: list[BaseException] = []

    def monitor() -> None:
        try:
            fired = alerts.evaluate(now=timezone.now()).fired
            results.append(sum(alert.rule.name == "slow-responses" for alert in fired))
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=monitor) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(results) == [0, 1]
    assert Alert.objects.filter(rule__name="slow-responses").count() == 1
    assert len(inserts) == sum(results) == 1
