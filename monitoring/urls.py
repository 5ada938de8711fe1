from django.urls import path

from monitoring.prometheus import metrics_view

urlpatterns = [path("metrics", metrics_view, name="prometheus-metrics")]
