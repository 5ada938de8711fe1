"""Misconfiguration fails at start with stable check ids (`manage.py check`)."""

import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

EXECUTORS = {"local", "modal"}


@register(deploy=False)
def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    production = settings.ENVIRONMENT != "development"
    if production and settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        problems.append(Error("SECRET_KEY is the development key.", hint="Set SECRET_KEY.", id="omtx.E001"))
    if production and settings.DEBUG:
        problems.append(Warning("DEBUG is on outside development.", id="omtx.W001"))
    if settings.LOG_LEVEL not in logging.getLevelNamesMapping():
        problems.append(Error(f"LOG_LEVEL={settings.LOG_LEVEL!r} is not a logging level.", id="omtx.E002"))
    if settings.OMTX_BOLTZ2_EXECUTOR not in EXECUTORS:
        problems.append(
            Error(
                f"OMTX_BOLTZ2_EXECUTOR={settings.OMTX_BOLTZ2_EXECUTOR!r} is unknown.",
                hint=f"Use one of {sorted(EXECUTORS)}.",
                id="omtx.E003",
            )
        )
    if bool(settings.MODAL_TOKEN_ID) != bool(settings.MODAL_TOKEN_SECRET):
        problems.append(Error("Set both MODAL_TOKEN_ID and MODAL_TOKEN_SECRET, or neither.", id="omtx.E004"))
    for name in ("REDIS_URL", "RATE_LIMIT_REDIS_URL"):
        url = getattr(settings, name)
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            problems.append(Error(f"{name} must be a redis:// URL.", id="omtx.E005"))
    return problems


@register(deploy=False)
def check_security(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Issue 9's settings block: the trusted proxies are networks (docs/security.md)."""
    problems: list[CheckMessage] = []
    for entry in settings.OMTX_TRUSTED_PROXIES:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problems.append(
                Error(
                    f"OMTX_TRUSTED_PROXIES entry {entry!r} is not an IP network.",
                    hint="Use addresses or CIDR networks, e.g. 10.0.0.0/8,192.168.1.7.",
                    id="omtx.E010",
                )
            )
    return problems
