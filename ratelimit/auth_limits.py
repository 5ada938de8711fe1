"""django-ratelimit where a fixed window per address is what is wanted: the login form and
token creation, a handful of attempts a minute per client address (ratelimit.client_ip).
The main limiter is the Lua token bucket (docs/rate-limiting.md says why)."""

import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited
from django_ratelimit.decorators import ratelimit

from ratelimit.client_ip import ratelimit_key

View = Callable[..., Any]
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def scaled(rate: str) -> str:
    """`10/m` times RATE_LIMIT_SCALE (the test suite's 1000 keeps its logins unlimited)."""
    count, _, period = rate.partition("/")
    return f"{max(1, math.ceil(int(count) * settings.RATE_LIMIT_SCALE))}/{period}"


def period_seconds(rate: str) -> int:
    return PERIODS[rate.partition("/")[2][-1:] or "m"]


def _login_rate(group: str, request: Any) -> str:
    return scaled(settings.RATE_LIMIT_LOGIN_RATE)


def _token_rate(group: str, request: Any) -> str:
    return scaled(settings.RATE_LIMIT_TOKEN_RATE)


def login_limited(view: View) -> View:
    """Failed and successful login posts alike: a guesser cannot tell which counted."""
    limited: View = ratelimit(group="login", key=ratelimit_key, rate=_login_rate, method="POST", block=True)(view)
    return limited


def over_login_limit(request: HttpRequest) -> bool:
    """The same count as `login_limited`, for a login view the hub does not route itself
    (DRF's browsable-API login, ratelimit.middleware)."""
    limited: bool = is_ratelimited(
        request, group="login", key=ratelimit_key, rate=_login_rate, method="POST", increment=True
    )
    return limited


def token_creation_limited(view: View) -> View:
    limited: View = ratelimit(group="token-create", key=ratelimit_key, rate=_token_rate, method="POST", block=True)(
        view
    )
    return limited
