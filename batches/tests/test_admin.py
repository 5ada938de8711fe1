from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client

from batches.models import Batch
from batches.states import BatchStatus


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_pages_render(make_batch: Callable[..., Batch], staff: User, run_all: Callable[[], None]) -> None:
    batch = make_batch()
    run_all()
    client = admin_client(staff)
    for url in [
        "/admin/batches/batch/",
        f"/admin/batches/batch/{batch.pk}/change/",
        "/admin/batches/job/",
        f"/admin/batches/job/{batch.jobs.first().pk}/change/",
        "/admin/batches/job/?status__exact=succeeded",
        "/admin/batches/target/",
    ]:
        assert client.get(url).status_code == 200, url


def test_admin_cancel_action_calls_the_service(
    make_batch: Callable[..., Batch], staff: User, run_all: Callable[[], None]
) -> None:
    running = make_batch(name="running")
    response = admin_client(staff).post(
        "/admin/batches/batch/", {"action": "cancel", "_selected_action": [running.pk]}, follow=True
    )
    assert response.status_code == 200
    running.refresh_from_db()
    assert running.status == BatchStatus.CANCELLED and running.n_cancelled == 4
    # A second cancel is refused with the service's message, not a crash.
    response = admin_client(staff).post(
        "/admin/batches/batch/", {"action": "cancel", "_selected_action": [running.pk]}, follow=True
    )
    assert "already cancelled" in response.content.decode()


def test_admin_retry_action_refuses_clean_batches(
    make_batch: Callable[..., Batch], staff: User, run_all: Callable[[], None]
) -> None:
    batch = make_batch()
    run_all()
    response = admin_client(staff).post(
        "/admin/batches/batch/", {"action": "retry_failed", "_selected_action": [batch.pk]}, follow=True
    )
    assert "no failed jobs" in response.content.decode()


def test_non_staff_cannot_reach_admin(owner: User) -> None:
    assert admin_client(owner).get("/admin/batches/batch/").status_code == 302


def test_admin_priority_edit_reaches_queued_jobs(make_batch: Callable[..., Batch], staff: User) -> None:
    batch = make_batch()
    response = admin_client(staff).post(f"/admin/batches/batch/{batch.pk}/change/", {"name": "renamed", "priority": 7})
    assert response.status_code == 302, response.content[:500]
    batch.refresh_from_db()
    assert (batch.name, batch.priority) == ("renamed", 7)
    assert set(batch.jobs.values_list("priority", flat=True)) == {7}
