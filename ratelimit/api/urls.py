from django.urls import path, re_path

from ratelimit.api import views

# Any path segment: the view validates the address and answers 400, never a bare 404.
IP = r"[^/]+"

urlpatterns = [
    path("rate-limit/status", views.RateLimitStatus.as_view(), name="rate-limit-status"),
    path("rate-limit/blocked-ips", views.BlockedIPCollection.as_view(), name="rate-limit-blocked-ips"),
    re_path(
        rf"^rate-limit/blocked-ips/(?P<ip>{IP})/unblock$", views.BlockedIPUnblock.as_view(), name="rate-limit-unblock"
    ),
    path("rate-limit/allowed-networks", views.AllowedNetworkCollection.as_view(), name="rate-limit-allowed-networks"),
    path(
        "rate-limit/allowed-networks/<int:network_id>",
        views.AllowedNetworkDetail.as_view(),
        name="rate-limit-allowed-network",
    ),
    path("rate-limit/metrics", views.RateLimitMetrics.as_view(), name="rate-limit-metrics"),
    path("resources/quotas", views.ResourceQuotas.as_view(), name="resources-quotas"),
    path("resources/metrics", views.ResourceMetrics.as_view(), name="resources-metrics"),
]
