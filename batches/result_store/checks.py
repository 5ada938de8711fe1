"""Result store misconfiguration fails at start (`manage.py check`), ids omtx.E2xx."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register(deploy=False)
def check_result_store(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.OMTX_RESULT_STORE == "firestore" and not settings.GCP_PROJECT_ID:
        return [
            Error(
                "OMTX_RESULT_STORE=firestore needs GCP_PROJECT_ID.",
                hint="Set GCP_PROJECT_ID (and FIRESTORE_DATABASE when not '(default)'), or OMTX_RESULT_STORE=database.",
                id="omtx.E201",
            )
        ]
    return []
