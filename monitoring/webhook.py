"""Alert notifications: one JSON POST per fired or resolved alert.

Sent after the evaluation's writes, never inside them. Each POST waits at
most OMTX_ALERT_WEBHOOK_TIMEOUT seconds; a failure is logged and dropped (the
alert itself is in the database and the admin either way), so an unreachable
receiver delays one evaluation by the timeout, never blocks the monitor.
"""

import json
import logging
import urllib.request
from typing import Any

from django.conf import settings

from monitoring.alerts import Evaluation
from monitoring.models import Alert

log = logging.getLogger(__name__)


def alert_payload(*, event: str, alert: Alert) -> dict[str, Any]:
    rule = alert.rule
    return {
        "event": event,
        "alert_id": alert.pk,
        "rule": rule.name,
        "metric": rule.metric,
        "severity": alert.severity,
        "threshold": alert.threshold,
        "value": alert.value,
        "peak_value": alert.peak_value,
        "last_value": alert.last_value,
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def deliver(evaluation: Evaluation) -> int:
    """POST every change of this evaluation; how many the receiver accepted."""
    url = settings.OMTX_ALERT_WEBHOOK_URL
    if not url:
        return 0
    events = [("fired", alert) for alert in evaluation.fired] + [("resolved", alert) for alert in evaluation.resolved]
    return sum(post(url=url, payload=alert_payload(event=event, alert=alert)) for event, alert in events)


def post(*, url: str, payload: dict[str, Any]) -> bool:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        # Bandit B310 (urlopen of a URL) does not apply: the URL is the operator's setting,
        # and monitoring.checks refuses any scheme but http(s).
        with urllib.request.urlopen(request, timeout=settings.OMTX_ALERT_WEBHOOK_TIMEOUT) as response:  # nosec B310
            accepted = bool(200 <= response.status < 300)
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts and refused connections are OSErrors
        log.warning("alert webhook failed for %s %s: %r", payload["event"], payload["rule"], exc)
        return False
    if not accepted:
        log.warning("alert webhook answered %s for %s %s", response.status, payload["event"], payload["rule"])
    return accepted
