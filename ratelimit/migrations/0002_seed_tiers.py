"""Seeds default / premium / enterprise (ratelimit/seed.py)."""

from typing import Any

from django.db import migrations

from ratelimit.seed import ENDPOINTS, TIERS


def seed(apps: Any, schema_editor: Any) -> None:
    Tier = apps.get_model("ratelimit", "Tier")
    for tier in TIERS:
        Tier.objects.update_or_create(name=tier["name"], defaults={**tier, "endpoint_limits": dict(ENDPOINTS)})


def unseed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("ratelimit", "Tier").objects.filter(name__in=[t["name"] for t in TIERS]).delete()


class Migration(migrations.Migration):
    dependencies = [("ratelimit", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
