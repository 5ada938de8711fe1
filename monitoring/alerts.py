"""Alert rule evaluation (services).

`evaluate` reads one snapshot and, per enabled rule:
- no open alert and the value above the threshold → open one (fired);
- an open alert → record the value; resolve it once the value has stayed at
  or under the resolve bound, threshold − |threshold| × OMTX_ALERT_RESOLVE_MARGIN,
  for OMTX_ALERT_RESOLVE_EVALUATIONS consecutive evaluations (resolved).
A value between the bound and the threshold neither fires nor clears, and
restarts the count: a metric hovering at the line cannot flap. A metric with
no value (empty request window, empty queue) counts as clear. Open alerts of
a disabled rule resolve at once.

One open alert per rule: the code looks for the open alert under the rule's
row lock, and the partial unique constraint `alert_one_open_per_rule` refuses
a second one from a monitor that did not see the first.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from monitoring.models import Alert, AlertRule, AlertStatus
from monitoring.readings import Snapshot, reading, take_snapshot
from omtx_hub.errors import Conflict

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    fired: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)


def evaluate(*, now: datetime, snapshot: Snapshot | None = None) -> Evaluation:
    snapshot = snapshot or take_snapshot(now=now)
    result = Evaluation()
    open_alerts = {alert.rule_id: alert for alert in open_alert_list()}
    for rule in AlertRule.objects.filter(enabled=True):
        value = reading(snapshot, rule.metric)
        alert = open_alerts.pop(rule.pk, None)
        if alert is not None:
            if alert_observe(alert=alert, value=value, now=now):
                result.resolved.append(alert)
        elif value is not None and rule.holds(value):
            fired = alert_open(rule=rule, value=value, now=now)
            if fired is not None:  # None: another monitor opened it first
                result.fired.append(fired)
    # What is left belongs to rules that are disabled now.
    for alert in open_alerts.values():
        if _resolve(alert=alert, now=now, reason="rule disabled"):
            result.resolved.append(alert)
    return result


def open_alert_list() -> list[Alert]:
    """The open alerts, newest first (partial index alert_open)."""
    return list(Alert.objects.filter(status=AlertStatus.OPEN).select_related("rule").order_by("-opened_at"))


def resolve_bound(rule: AlertRule) -> float:
    return rule.threshold - abs(rule.threshold) * settings.OMTX_ALERT_RESOLVE_MARGIN


def alert_open(*, rule: AlertRule, value: float, now: datetime) -> Alert | None:
    """Open the rule's alert, or None when another monitor already has."""
    try:
        with transaction.atomic():
            # Two monitors evaluating at once queue here; the second sees the first's alert.
            AlertRule.objects.select_for_update().filter(pk=rule.pk).first()
            if Alert.objects.filter(rule=rule, status=AlertStatus.OPEN).exists():
                return None
            alert = Alert.objects.create(
                rule=rule,
                severity=rule.severity,
                threshold=rule.threshold,
                message=f"{rule.get_metric_display()} is {value:g}, above {rule.threshold:g}",
                value=value,
                peak_value=value,
                last_value=value,
                opened_at=now,
                last_evaluated_at=now,
            )
    except IntegrityError:
        # alert_one_open_per_rule: a monitor that took no lock opened it first.
        return None
    log.warning("alert fired: %s [%s] %s", rule.name, alert.severity, alert.message)
    return alert


def alert_observe(*, alert: Alert, value: float | None, now: datetime) -> bool:
    """Record one evaluation of an open alert; True when this one resolved it."""
    rule = alert.rule
    clear = value is None or value <= resolve_bound(rule)
    updates: dict[str, Any] = {"last_value": value, "last_evaluated_at": now}
    updates["clear_evaluations"] = F("clear_evaluations") + 1 if clear else 0
    if value is not None and value > alert.peak_value:
        updates["peak_value"] = value
    Alert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(**updates)
    if not clear:
        return False
    return _resolve(alert=alert, now=now, reason=f"back to {value if value is not None else 'no value'}")


def _resolve(*, alert: Alert, now: datetime, reason: str) -> bool:
    """Resolve if still open and, for an enabled rule, clear for long enough.
    Conditional, so of two monitors only one resolves (and announces) it."""
    pending = Alert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN)
    if alert.rule.enabled:
        pending = pending.filter(clear_evaluations__gte=settings.OMTX_ALERT_RESOLVE_EVALUATIONS)
    if not pending.update(status=AlertStatus.RESOLVED, resolved_at=now):
        return False
    alert.refresh_from_db()
    log.warning("alert resolved: %s (%s)", alert.rule.name, reason)
    return True


def alert_acknowledge(*, alert: Alert, user: Any, now: datetime) -> None:
    """An operator has seen it. Acknowledging does not resolve: the rule does."""
    done = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now, acknowledged_by=user
    )
    if not done:
        raise Conflict(f"Alert {alert.pk} is already acknowledged.", code="already_acknowledged")
    log.info("alert acknowledged: %s by %s", alert.rule.name, user)
