"""The per-user limit, as a DRF throttle: it runs after authentication, so the tier is the
authenticated user's, from the database, and never anything the request says about itself.
Anonymous requests were limited by address in ratelimit.middleware already; one that reaches
here without a decision (a header the middleware took for credentials that authenticated
nobody) is limited by address now, never let through unlimited."""

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from ratelimit.allowlist import is_allowed
from ratelimit.client_ip import client_ip
from ratelimit.limiter import DECISION_ATTR, limit_address, limit_user, rejected


class TierThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        if not settings.RATE_LIMIT_ENABLED:
            return True
        user, raw = request.user, request._request
        if user is not None and user.is_authenticated:
            decision, anonymous = limit_user(raw, user_id=user.pk), False
        elif getattr(raw, DECISION_ATTR, None) is None and not is_allowed(ip := client_ip(raw)):
            decision, anonymous = limit_address(raw, ip=ip), True
        else:
            return True
        if not decision.allowed:
            # Raised rather than returned: the envelope names the policies, and the
            # middleware adds Retry-After and the RateLimit fields from the decision.
            raise rejected(decision, anonymous=anonymous)
        return True
