"""Tokens made before tokens expired by default get the default lifetime from the migration
(accounts/migrations/0002_expire_old_tokens.py); revoked and already-dated ones are left alone."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from accounts.models import ApiToken

BEFORE = [("accounts", "0001_initial")]
AFTER = [("accounts", "0002_expire_old_tokens")]


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_old_tokens_without_expiry_get_the_default_lifetime(settings: Any) -> None:
    settings.OMTX_TOKEN_LIFETIME_DAYS = 30
    apps = migrate(BEFORE)
    try:
        user = apps.get_model("auth", "User").objects.create(username="old-timer")
        Token = apps.get_model("accounts", "ApiToken")
        dated = timezone.now() + timedelta(days=3)
        made = {
            name: Token.objects.create(user=user, name=name, prefix=name, key_hash=name, **fields).pk
            for name, fields in {
                "old": {},
                "revoked": {"revoked_at": timezone.now()},
                "dated": {"expires_at": dated},
            }.items()
        }
    finally:
        migrate(AFTER)
    tokens = {t.name: t for t in ApiToken.objects.filter(pk__in=made.values())}
    expires = tokens["old"].expires_at
    assert expires is not None and abs((expires - timezone.now()) / timedelta(days=1) - 30) < 0.01
    assert tokens["revoked"].expires_at is None
    assert tokens["dated"].expires_at == dated
