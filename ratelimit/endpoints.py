"""Endpoint identity for endpoint limits: the resolved URL name and the method. The names
are the keys of Tier.endpoint_limits."""

from django.http import HttpRequest

ENDPOINTS: dict[tuple[str, str], str] = {
    ("v3:batch-list", "POST"): "submit",
    ("v3:batch-submit", "POST"): "submit",
    ("v3:batch-status", "GET"): "status",
    ("v3:batch-results", "GET"): "results",
}


def endpoint_name(request: HttpRequest) -> str | None:
    match = request.resolver_match
    if match is None:
        return None
    return ENDPOINTS.get((match.view_name, request.method or ""))
