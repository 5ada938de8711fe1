"""The batch pages with each persona: the owner, an outsider (404, as in the API), an
anonymous visitor (sent to log in) and staff who see every batch."""

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from batches.models import Batch
from batches.states import BatchStatus

pytestmark = pytest.mark.django_db


def signed_in(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def page_json(html: str, element_id: str) -> Any:
    """What a page hands its script through json_script."""
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert found, element_id
    return json.loads(found.group(1))


def test_home_sends_a_signed_in_user_to_their_batches(owner: User) -> None:
    assert signed_in(owner).get("/").url == "/batches/"
    anonymous = Client().get("/")
    assert anonymous.status_code == 200 and b"Log in" in anonymous.content


def test_login_page_goes_to_the_batches(owner: User) -> None:
    page = Client().get("/account/login/")
    assert page.status_code == 200
    assert b'name="next" value="/batches/"' in page.content
    answer = Client().post("/account/login/", {"username": "owner", "password": "pw-owner-123", "next": "/batches/"})
    assert answer.status_code == 302 and answer.url == "/batches/"


def test_list_shows_the_owners_batches_only(
    make_batch: Callable[..., Batch], owner: User, outsider: User, staff: User
) -> None:
    mine = make_batch(name="mine")
    theirs = make_batch(name="theirs", user=outsider)
    page = signed_in(owner).get("/batches/")
    assert page.status_code == 200
    assert f"/batches/{mine.pk}/".encode() in page.content
    assert f"/batches/{theirs.pk}/".encode() not in page.content
    everything = signed_in(staff).get("/batches/")
    assert f"/batches/{mine.pk}/".encode() in everything.content
    assert f"/batches/{theirs.pk}/".encode() in everything.content


def test_list_pages(make_batch: Callable[..., Batch], owner: User) -> None:
    from batches.pages.views import BATCHES_PER_PAGE

    for n in range(BATCHES_PER_PAGE + 1):
        make_batch(name=f"b{n}", ligands=["CCO"])
    first = signed_in(owner).get("/batches/")
    assert len(re.findall(r'href="/batches/[0-9a-f-]{36}/"', first.content.decode())) == BATCHES_PER_PAGE
    assert b"?page=2" in first.content
    second = signed_in(owner).get("/batches/?page=2")
    assert b">b0<" in second.content


@pytest.mark.parametrize("path", ["/batches/", "/batches/new/", "/batches/00000000-0000-0000-0000-000000000000/"])
def test_anonymous_is_sent_to_log_in(path: str) -> None:
    answer = Client().get(path)
    assert answer.status_code == 302
    assert answer.url.startswith("/account/login/?next=")


def test_batch_page_for_the_owner(make_batch: Callable[..., Batch], owner: User) -> None:
    batch = make_batch(ligands=[*["CCO", "c1ccccc1O"], {"name": "bad", "smiles": "not-a-smiles"}])
    page = signed_in(owner).get(f"/batches/{batch.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    status = page_json(html, "batch-status-data")
    assert status["batch_id"] == str(batch.pk) and status["progress"]["total"] == 2
    config = page_json(html, "batch-config-data")
    assert config["socket"] == f"/ws/v3/batches/{batch.pk}/"
    assert config["default_rank"] == "qed"
    metrics = page_json(html, "batch-metrics-data")
    qed = next(metric for metric in metrics if metric["name"] == "qed")
    assert qed["better"] == "higher"
    assert "higher is better" in html  # the sort choice says the direction
    assert "invalid_smiles" in html  # rejected at submission, with the reason
    assert f"/api/v3/batches/{batch.pk}/export?format=csv" in html
    assert 'data-csrf="' in html


def test_batch_page_is_404_for_an_outsider(make_batch: Callable[..., Batch], outsider: User) -> None:
    batch = make_batch()
    assert signed_in(outsider).get(f"/batches/{batch.pk}/").status_code == 404


def test_staff_see_any_batch_page(make_batch: Callable[..., Batch], staff: User) -> None:
    batch = make_batch()
    page = signed_in(staff).get(f"/batches/{batch.pk}/")
    assert page.status_code == 200
    assert b"Owner owner" in page.content


def test_staff_without_the_view_permission_get_404(make_batch: Callable[..., Batch]) -> None:
    batch = make_batch()
    clerk = User.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    assert signed_in(clerk).get(f"/batches/{batch.pk}/").status_code == 404


def test_missing_batch_is_404(owner: User) -> None:
    assert signed_in(owner).get("/batches/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_submission_page(owner: User) -> None:
    page = signed_in(owner).get("/batches/new/")
    assert page.status_code == 200
    html = page.content.decode()
    config = page_json(html, "submit-config-data")
    assert config["validate_url"] == "/api/v3/batches/validate"
    assert 'value="ligand-profile" selected' in html
    assert "MENFQKVEKIGEGTYGVVYKARNK" in html  # the demo target, one click away
    assert Client().get("/batches/new").status_code in (301, 302)


def test_pages_load_no_inline_script_or_style(make_batch: Callable[..., Batch], owner: User) -> None:
    """The CSP allows scripts and styles from the hub's origin only: an inline one
    would be refused by the browser, so no page may carry one."""
    batch = make_batch()
    client = signed_in(owner)
    for path in ("/batches/", "/batches/new/", f"/batches/{batch.pk}/", "/account/login/"):
        html = client.get(path).content.decode()
        scripts = re.findall(r"<script([^>]*)>", html)
        assert all("src=" in attrs or 'type="application/json"' in attrs for attrs in scripts), path
        assert " style=" not in html and "<style" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path


def test_cancelled_batch_shows_its_status(make_batch: Callable[..., Batch], owner: User) -> None:
    batch = make_batch()
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.CANCELLED)
    html = signed_in(owner).get(f"/batches/{batch.pk}/").content.decode()
    assert page_json(html, "batch-status-data")["is_terminal"] is True


def test_admin_change_page_shows_progress_and_links_to_the_batch_page(
    make_batch: Callable[..., Batch], staff: User, run_all: Callable[[], None]
) -> None:
    batch = make_batch()
    queued = signed_in(staff).get(f"/admin/batches/batch/{batch.pk}/change/").content.decode()
    assert 'id="batch-progress-bar" max="100" value="0.0"' in queued
    assert f'href="/batches/{batch.pk}/"' in queued
    assert f'data-status-url="/api/v3/batches/{batch.pk}/status"' in queued
    assert "admin-batch.js" in queued
    run_all()
    done = signed_in(staff).get(f"/admin/batches/batch/{batch.pk}/change/").content.decode()
    assert 'id="batch-progress-bar" max="100" value="100.0"' in done
    assert "4 succeeded" in done
