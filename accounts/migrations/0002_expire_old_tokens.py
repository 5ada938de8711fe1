"""Tokens made before tokens expired by default (issue 9) were given no expiry, so they
would live for ever. This gives each one still in use the default lifetime counted from
the migration (settings.OMTX_TOKEN_LIFETIME_DAYS): from when it was made would expire the
older ones at once and break their clients without warning. Revoked tokens are left as they
are. A token made never-expiring after this migration ran is an explicit choice and keeps
its NULL; there is no reverse, as a backfilled expiry cannot be told from a chosen one."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def give_old_tokens_the_default_lifetime(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    expires_at = timezone.now() + timedelta(days=settings.OMTX_TOKEN_LIFETIME_DAYS)
    ApiToken.objects.filter(expires_at__isnull=True, revoked_at__isnull=True).update(expires_at=expires_at)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(give_old_tokens_the_default_lifetime, migrations.RunPython.noop)]
