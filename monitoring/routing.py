from django.urls import re_path

from monitoring.consumers import MonitoringConsumer

websocket_urlpatterns = [
    re_path(r"^ws/v3/monitoring/$", MonitoringConsumer.as_asgi()),
]
