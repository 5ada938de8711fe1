"""The monitoring page: staff who may read monitoring; others 404; anonymous to log in."""

import json
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_the_dashboard(staff: User) -> None:
    page = signed_in(staff).get("/monitoring/")
    assert page.status_code == 200
    html = page.content.decode()
    found = re.search(r'<script id="dashboard-data" type="application/json">(.*?)</script>', html, re.S)
    assert found
    initial = json.loads(found.group(1))
    assert {"system_health", "batch_health", "cache_stats", "performance", "alerts"} <= set(initial)
    assert '"/ws/v3/monitoring/"' in html


def test_users_who_may_not_read_monitoring_get_404(owner: User) -> None:
    assert signed_in(owner).get("/monitoring/").status_code == 404
    clerk = User.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    assert signed_in(clerk).get("/monitoring/").status_code == 404


def test_anonymous_is_sent_to_log_in() -> None:
    answer = Client().get("/monitoring/")
    assert answer.status_code == 302 and answer.url == "/account/login/?next=/monitoring/"
