from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView

from monitoring import pages as monitoring_pages
from omtx_hub import api_docs, api_errors, views

api_v3: list[URLPattern | URLResolver] = [
    path("", views.api_root, name="api-root"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", api_docs.swagger_ui, name="swagger-ui"),
    path("", include("batches.api.urls")),
    path("", include("monitoring.api.urls")),
    path("", include("ratelimit.api.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("health/ready", views.health_ready, name="health-ready"),
    path("admin/", admin.site.urls),
    path("account/", include("accounts.urls")),
    path("api-auth/", include("rest_framework.urls")),
    path("api/v3/", include((api_v3, "v3"), namespace="v3")),
    path("", include("monitoring.urls")),
    path("", include("batches.pages.urls")),
    path("monitoring/", monitoring_pages.dashboard_page, name="monitoring-page"),
]
# With DEBUG on, the pages' static files from any server (daphne too); empty with DEBUG off,
# where they are collected and served by the deployment (docs/pages.md).
urlpatterns += staticfiles_urlpatterns()

# JSON under /api/, Django's pages elsewhere (DEBUG off; omtx_hub.middleware covers DEBUG on).
handler404 = api_errors.not_found
handler500 = api_errors.server_error
