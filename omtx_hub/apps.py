from django.apps import AppConfig


class OmtxHubConfig(AppConfig):
    name = "omtx_hub"
    verbose_name = "OMTX Hub"

    def ready(self) -> None:
        from omtx_hub import checks  # noqa: F401  (registers the system checks)
