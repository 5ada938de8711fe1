from django.apps import AppConfig
from django.conf import settings


class MonitoringConfig(AppConfig):
    name = "monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from monitoring import (
            checks,  # noqa: F401  (registers the system checks)
            queries,
        )

        if settings.APM_ENABLED:
            queries.install()
