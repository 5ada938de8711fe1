"""Right after AuthenticationMiddleware. Per request: a blocked address gets 403 before
anything else (from the backend's blocked set: no database query); an anonymous API request
takes from its address's bucket once the URL is resolved; every answer is counted for
suspicious activity; every limited answer carries the RateLimit fields (and Retry-After
when refused), whichever of this or the DRF throttle made the decision."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_ratelimit.exceptions import Ratelimited

from accounts.authentication import BearerTokenAuthentication
from omtx_hub.api_errors import error_body, is_api
from ratelimit.allowlist import is_allowed
from ratelimit.auth_limits import over_login_limit, period_seconds
from ratelimit.blocks import blocked_until
from ratelimit.client_ip import client_ip
from ratelimit.limiter import DECISION_ATTR, headers, limit_address, record_rejection, rejected
from ratelimit.suspicious import observe

GetResponse = Callable[[HttpRequest], HttpResponse]
IP_ATTR = "omtx_client_ip"
# Login views routed by a package, not decorated in accounts/urls.py.
OTHER_LOGIN_VIEWS = {"rest_framework:login"}


class RateLimitMiddleware:
    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.RATE_LIMIT_ENABLED:
            return self.get_response(request)
        ip = client_ip(request)
        setattr(request, IP_ATTR, ip)
        if blocked_until(ip) is not None:
            record_rejection(scope="blocked")
            return _blocked()
        response = self.get_response(request)
        observe(
            ip=ip,
            status=response.status_code,
            api=is_api(request),
            credentials=presents_token(request),
            authenticated=signed_in(request),
        )
        decision = getattr(request, DECISION_ATTR, None)
        if decision is not None:
            for name, value in headers(decision).items():
                response[name] = value
        return response

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        """Anonymous API requests, by address. Requests with credentials are limited per
        user by ratelimit.throttle; credentials that fail count as auth failures. DRF's
        login page shares the login form's limit."""
        if not settings.RATE_LIMIT_ENABLED:
            return None
        match = request.resolver_match
        if match is not None and match.view_name in OTHER_LOGIN_VIEWS and over_login_limit(request):
            return _too_many_logins()
        if not is_api(request) or presents_token(request) or signed_in(request):
            return None
        ip = getattr(request, IP_ATTR, None) or client_ip(request)
        if is_allowed(ip):
            return None
        decision = limit_address(request, ip=ip)
        if decision.allowed:
            return None
        refusal = rejected(decision, anonymous=True)
        return JsonResponse(error_body(refusal.code, refusal.message, refusal.details), status=refusal.status_code)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """django-ratelimit's refusal (login, token creation) as a 429, not Django's 403."""
        return _too_many_logins() if isinstance(exception, Ratelimited) else None


def _too_many_logins() -> HttpResponse:
    record_rejection(scope="login")
    retry = period_seconds(settings.RATE_LIMIT_LOGIN_RATE)
    response = HttpResponse(f"Too many attempts; try again in {retry} s.", status=429, content_type="text/plain")
    response["Retry-After"] = str(retry)
    return response


def presents_token(request: HttpRequest) -> bool:
    """An Authorization header in a scheme the API authenticates: such a request is either
    signed in by DRF (and limited per user by ratelimit.throttle) or refused with 401. Any
    other scheme is ignored by authentication, so the request stays anonymous and must be
    limited by address here."""
    scheme = request.META.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0].lower()
    return scheme in BearerTokenAuthentication.keywords


def signed_in(request: HttpRequest) -> bool:
    # DRF writes the user it authenticated back onto the Django request, so after the view
    # this is the token's user too, and anonymous when the token was refused.
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def _blocked() -> JsonResponse:
    message = "Requests from this address are blocked for suspicious activity."
    return JsonResponse(error_body("ip_blocked", message), status=403)
