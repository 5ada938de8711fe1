from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.storage import default_storage
from django.test import Client

from batches.models import Batch
from batches.services import lifecycle
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


def test_admin_deletes_no_batch_or_job_behind_the_service(
    make_batch: Callable[..., Batch], staff: User, run_all: Callable[[], None]
) -> None:
    """Django's own delete (the delete view, delete_selected) would skip batch_delete: the
    artifact files, the cache hook, and for a job the batch's counters."""
    batch = make_batch()
    run_all()
    client = admin_client(staff)
    job = batch.jobs.all()[0]
    assert client.get(f"/admin/batches/batch/{batch.pk}/delete/").status_code == 403
    assert client.post(f"/admin/batches/job/{job.pk}/delete/", {"post": "yes"}).status_code == 403
    page = client.get("/admin/batches/batch/").content.decode()
    assert 'value="delete_selected"' not in page and 'value="delete_batches"' in page
    client.post("/admin/batches/batch/", {"action": "delete_selected", "_selected_action": [batch.pk], "post": "yes"})
    client.post("/admin/batches/job/", {"action": "delete_selected", "_selected_action": [job.pk], "post": "yes"})
    assert Batch.objects.filter(pk=batch.pk).exists() and batch.jobs.filter(pk=job.pk).exists()


def test_admin_delete_action_calls_the_service(
    make_batch: Callable[..., Batch], staff: User, run_all: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    done = make_batch(name="done")
    run_all()
    running = make_batch(name="running")
    artifacts = [name for name in done.jobs.values_list("artifact", flat=True) if name]
    assert artifacts and all(default_storage.exists(name) for name in artifacts)
    changed: list[list[Any]] = []
    monkeypatch.setattr(lifecycle, "batches_changed_on_commit", lambda **ids: changed.append(ids["batch_ids"]))
    response = admin_client(staff).post(
        "/admin/batches/batch/", {"action": "delete_batches", "_selected_action": [done.pk, running.pk]}, follow=True
    )
    page = response.content.decode()
    assert "1 batch(es) deleted" in page and "Running: The batch is still running; cancel it first." in page
    assert not Batch.objects.filter(pk=done.pk).exists() and Batch.objects.filter(pk=running.pk).exists()
    assert not any(default_storage.exists(name) for name in artifacts)
    assert changed == [[done.pk]]  # the lists and caches hear of it


def test_staff_who_may_only_view_batches_run_no_admin_action(make_batch: Callable[..., Batch], owner: User) -> None:
    viewer = User.objects.create_user("auditor", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="batches", codename="view_batch"))
    batch = make_batch()
    client = admin_client(viewer)
    assert client.get("/admin/batches/batch/").status_code == 200
    for action in ("cancel", "retry_failed", "delete_batches"):
        client.post("/admin/batches/batch/", {"action": action, "_selected_action": [batch.pk]})
    batch.refresh_from_db()
    assert batch.status != BatchStatus.CANCELLED and Batch.objects.filter(pk=batch.pk).exists()
