"""The per-user limit, as a DRF throttle: it runs after authentication, so the tier is the
authenticated user's, from the database, and never anything the request says about itself.
Anonymous requests were limited by address in ratelimit.middleware already."""

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from ratelimit.limiter import limit_user, rejected


class TierThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        user = request.user
        if not settings.RATE_LIMIT_ENABLED or user is None or not user.is_authenticated:
            return True
        decision = limit_user(request._request, user_id=user.pk)
        if not decision.allowed:
            # Raised rather than returned: the envelope names the policies, and the
            # middleware adds Retry-After and the RateLimit fields from the decision.
            raise rejected(decision)
        return True
