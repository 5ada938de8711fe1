"""Monitoring misconfiguration fails at start (`manage.py check`), ids omtx.E1xx."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register(deploy=False)
def check_monitoring(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    url = settings.OMTX_ALERT_WEBHOOK_URL
    if url and not url.startswith(("http://", "https://")):
        problems.append(Error("OMTX_ALERT_WEBHOOK_URL must be an http(s) URL.", id="omtx.E101"))
    return problems
