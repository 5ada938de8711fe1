from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from monitoring import alerts
from monitoring.models import Alert, AlertRule
from monitoring.tests.fakes import FakeSources, fake_sources_fixture  # noqa: F401

pytestmark = pytest.mark.usefixtures("fake_sources")


def session(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def open_alert(db: None, fake_sources: FakeSources) -> Alert:
    fake_sources.set_p95(8000.0)
    alerts.evaluate(now=timezone.now())
    return Alert.objects.get(rule__name="slow-responses")


def test_console_pages_render(staff: User, open_alert: Alert) -> None:
    client = session(staff)
    for url in [
        "/admin/monitoring/alertrule/",
        f"/admin/monitoring/alertrule/{open_alert.rule_id}/change/",
        "/admin/monitoring/alert/",
        "/admin/monitoring/alert/?status__exact=open",
        "/admin/monitoring/alert/?acknowledged_at__isempty=1",
        f"/admin/monitoring/alert/{open_alert.pk}/change/",
    ]:
        assert client.get(url).status_code == 200, url


def test_rules_are_edited_in_the_console(staff: User) -> None:
    rule = AlertRule.objects.get(name="high-cpu")
    data: dict[str, Any] = {
        "name": rule.name,
        "metric": rule.metric,
        "threshold": "92.5",
        "severity": "critical",
        "enabled": "on",
        "description": rule.description,
    }
    response = session(staff).post(f"/admin/monitoring/alertrule/{rule.pk}/change/", data)
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.threshold, rule.severity) == (92.5, "critical")


def test_acknowledge_action_calls_the_service(staff: User, open_alert: Alert) -> None:
    action = {"action": "acknowledge", "_selected_action": [open_alert.pk]}
    response = session(staff).post("/admin/monitoring/alert/", action, follow=True)
    assert "1 alert(s) acknowledged." in response.content.decode()
    open_alert.refresh_from_db()
    assert open_alert.acknowledged_by == staff
    again = session(staff).post("/admin/monitoring/alert/", action, follow=True)
    assert "already acknowledged" in again.content.decode()


def test_viewers_cannot_acknowledge(db: None, open_alert: Alert) -> None:
    viewer = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_alert"))
    client = session(viewer)
    assert client.get("/admin/monitoring/alert/").status_code == 200
    client.post("/admin/monitoring/alert/", {"action": "acknowledge", "_selected_action": [open_alert.pk]})
    open_alert.refresh_from_db()
    assert open_alert.acknowledged_at is None


def test_non_staff_cannot_reach_the_console(owner: User) -> None:
    assert session(owner).get("/admin/monitoring/alert/").status_code == 302
