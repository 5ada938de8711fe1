from django.urls import URLPattern, re_path
from rest_framework.views import APIView

from batches.api import views
from batches.webhooks import views as webhooks

UUID = r"[0-9a-fA-F-]{32,36}"


def route(pattern: str, view: type[APIView], name: str) -> URLPattern:
    # Trailing slash optional: the predecessor's clients call paths without it,
    # and a POST cannot follow APPEND_SLASH's redirect.
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


urlpatterns = [
    route("models", views.ModelCollection, "model-list"),
    route("batches", views.BatchCollection, "batch-list"),
    route("batches/submit", views.LegacySubmit, "batch-submit"),
    route("batches/validate", views.BatchValidate, "batch-validate"),
    route(rf"batches/validations/(?P<dry_run_id>{UUID})", views.DryRunDetail, "dry-run-detail"),
    route(rf"batches/(?P<batch_id>{UUID})", views.BatchDetail, "batch-detail"),
    route(rf"batches/(?P<batch_id>{UUID})/status", views.BatchStatus, "batch-status"),
    route(rf"batches/(?P<batch_id>{UUID})/results", views.BatchResults, "batch-results"),
    route(rf"batches/(?P<batch_id>{UUID})/export", views.BatchExport, "batch-export"),
    route(rf"batches/(?P<batch_id>{UUID})/exports/(?P<export_id>{UUID})", views.ExportFileDetail, "batch-export-file"),
    route(
        rf"batches/(?P<batch_id>{UUID})/exports/(?P<export_id>{UUID})/download",
        views.ExportFileDownload,
        "batch-export-download",
    ),
    route(rf"batches/(?P<batch_id>{UUID})/cancel", views.BatchCancel, "batch-cancel"),
    route(rf"batches/(?P<batch_id>{UUID})/retry", views.BatchRetry, "batch-retry"),
    route(rf"batches/(?P<batch_id>{UUID})/jobs", views.JobCollection, "batch-jobs"),
    route(rf"batches/(?P<batch_id>{UUID})/jobs/(?P<job_id>{UUID})", views.JobDetail, "job-detail"),
    route(rf"batches/(?P<batch_id>{UUID})/jobs/(?P<job_id>{UUID})/structure", views.JobStructure, "job-structure"),
    route(
        rf"batches/(?P<batch_id>{UUID})/jobs/(?P<job_id>{UUID})/download/(?P<fmt>[a-z]+)",
        views.JobDownload,
        "job-download",
    ),
    route("webhooks/secret", webhooks.SecretState, "webhook-secret"),
    route("webhooks/secret/rotate", webhooks.SecretRotate, "webhook-secret-rotate"),
    route("webhooks/deliveries", webhooks.DeliveryCollection, "webhook-delivery-list"),
    route(rf"webhooks/deliveries/(?P<delivery_id>{UUID})", webhooks.DeliveryDetail, "webhook-delivery"),
    route(
        rf"webhooks/deliveries/(?P<delivery_id>{UUID})/redeliver",
        webhooks.DeliveryRedeliver,
        "webhook-delivery-redeliver",
    ),
]
