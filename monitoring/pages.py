"""The operator's live dashboard page. Its numbers come from the dashboard document
(monitoring/dashboard.py), pushed over /ws/v3/monitoring/ or polled from the API by
static/monitoring.js; the page renders the first one so it is never empty."""

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from accounts.permissions import sees_monitoring
from monitoring.dashboard import dashboard


@never_cache
def dashboard_page(request: HttpRequest) -> HttpResponse:
    """Anonymous visitors are sent to log in; a signed-in user who may not read
    monitoring gets a 404, as for any page that is not theirs."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not sees_monitoring(request.user):
        raise Http404("No such page.")
    config = {
        "socket": "/ws/v3/monitoring/",
        "dashboard_url": "/api/v3/monitoring/dashboard",
    }
    context = {"initial": dashboard(now=timezone.now()), "page_config": config}
    return render(request, "monitoring/dashboard.html", context)
