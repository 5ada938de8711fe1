"""A bad Tier value is refused where it is entered, and one stored anyway (a shell, an old
row) costs its endpoint limit, never every request on the tier (review finding 12)."""

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from ratelimit.models import Tier
from ratelimit.seed import DEFAULT
from ratelimit.tiers import TierLimits

pytestmark = pytest.mark.django_db


def tier(**fields: Any) -> Tier:
    return Tier(**{**DEFAULT, "name": "odd", "is_default": False, **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {"requests_per_minute": 0},
        {"burst": 0},
        {"endpoint_limits": {"status": "180/min"}},
        {"endpoint_limits": {"status": 0}},
        {"endpoint_limits": {"status": True}},
        {"endpoint_limits": {"statuses": 10}},
        {"endpoint_limits": ["status"]},
    ],
)
def test_the_admin_refuses_a_bad_tier_value(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        tier(**fields).full_clean()


def test_a_good_tier_passes() -> None:
    tier(endpoint_limits={"submit": 5, "status": 100}).full_clean()


def test_the_database_refuses_zero_requests_per_minute() -> None:
    with pytest.raises(IntegrityError):
        tier(requests_per_minute=0).save()


def test_a_bad_stored_endpoint_limit_is_ignored_not_raised() -> None:
    limits = TierLimits.of(tier(endpoint_limits={"status": "180/min", "results": 0, "submit": 5, "other": 3}))
    assert limits.endpoint_limits == {"submit": 5}
