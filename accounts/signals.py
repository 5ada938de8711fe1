"""Failed password logins, recorded in the security log.

A receiver, not code in a view: Django sends `user_login_failed` from `authenticate()`,
which the account login page, the admin's own login page and DRF's login all call, and
the admin's view is not ours to change.
"""

import logging
from typing import Any

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from ratelimit.client_ip import client_ip

security_log = logging.getLogger("omtx.security")


@receiver(user_login_failed)
def log_login_failure(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # `credentials` has the password already masked by Django; only the username is logged.
    security_log.warning(
        "authentication failed: password login; ip=%s path=%r username=%r",
        client_ip(request) if request is not None else "",  # the client, not the proxy in front
        request.path if request is not None else "",
        credentials.get("username", ""),
        extra={"event": "auth_failed"},
    )
