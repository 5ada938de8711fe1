"""Artifacts through Django STORAGES (issue 11): structures and export files on the local
filesystem (streamed by the hub) and on Google Cloud Storage (django-storages and the real
google-cloud-storage client against an in-process fake of the GCS API; downloads answer
302 to a signed URL). Signing uses a service-account key generated here: no network."""

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.files.storage import default_storage
from google.oauth2 import service_account
from rest_framework.test import APIClient

from batches.models import Batch, ExportFile, ExportStatus, Job
from batches.tests import fake_gcs
from batches.tests.test_export_files import build_all

BATCHES = "/api/v3/batches/"
BUCKET = "omtx-artifacts-test"
REPO = Path(__file__).resolve().parents[2]


def _credentials() -> service_account.Credentials:
    """A service account with a fresh RSA key, holding a token already (nothing to refresh
    over the network): enough to sign URLs and to call the fake."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    info = {
        "type": "service_account",
        "project_id": "omtx-test",
        "private_key_id": "test-key",
        "private_key": pem.decode(),
        "client_email": "hub@omtx-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    # Scoped already: the client re-scopes (a new object, without the token) only credentials
    # that require scopes.
    scopes = ["https://www.googleapis.com/auth/devstorage.full_control"]
    credentials = service_account.Credentials.from_service_account_info(info, scopes=scopes)
    credentials.token = "test-token"
    credentials.expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    return credentials


@pytest.fixture
def gcs(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[fake_gcs.Buckets]:
    with fake_gcs.serving() as (url, buckets):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        options = {
            "bucket_name": BUCKET,
            "project_id": "omtx-test",
            "credentials": _credentials(),
            "expiration": timedelta(seconds=settings.OMTX_SIGNED_URL_SECONDS),
            "file_overwrite": False,
        }
        backend = {"BACKEND": "storages.backends.gcloud.GoogleCloudStorage", "OPTIONS": options}
        settings.STORAGES = {**settings.STORAGES, "default": backend}
        yield buckets


@pytest.fixture
def finished(make_batch: Callable[..., Batch], run_all: Callable[[], None]) -> Batch:
    batch = make_batch()
    run_all()
    batch.refresh_from_db()
    assert batch.n_succeeded == batch.n_total == 4
    return batch


def _structure_url(job: Job) -> str:
    return f"{BATCHES}{job.batch_id}/jobs/{job.pk}/structure"


def _first_job(batch: Batch) -> Job:
    job = Job.objects.filter(batch=batch).order_by("index").first()
    assert job is not None and job.artifact
    return job


# --- local filesystem -----------------------------------------------------------------


def test_local_structures_are_stored_under_media_root_and_streamed(
    finished: Batch, owner_client: APIClient, outsider_client: APIClient, anon_client: APIClient, settings: Any
) -> None:
    job = _first_job(finished)
    path = Path(settings.MEDIA_ROOT) / job.artifact.name
    assert path.is_file() and job.artifact.name.startswith(f"artifacts/{finished.pk}/")
    response = owner_client.get(_structure_url(job))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == path.read_bytes()
    assert response["Content-Disposition"] == f'attachment; filename="{job.name}.sdf"'
    assert outsider_client.get(_structure_url(job)).status_code == 404
    assert anon_client.get(_structure_url(job)).status_code in (401, 403)


# --- Google Cloud Storage ---------------------------------------------------------------


def test_structures_go_to_the_bucket_and_download_by_signed_url(
    gcs: fake_gcs.Buckets,
    finished: Batch,
    owner_client: APIClient,
    outsider_client: APIClient,
    anon_client: APIClient,
    settings: Any,
) -> None:
    names = gcs.names(BUCKET)
    assert len(names) == 4 and all(name.startswith(f"artifacts/{finished.pk}/") for name in names)
    assert not (Path(settings.MEDIA_ROOT) / "artifacts").exists()
    job = _first_job(finished)
    response = owner_client.get(_structure_url(job))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert location.path == f"/{BUCKET}/{job.artifact.name}"
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Expires"] == str(settings.OMTX_SIGNED_URL_SECONDS)
    assert query["X-Goog-Credential"].startswith("hub@omtx-test.iam.gserviceaccount.com/")
    assert len(query["X-Goog-Signature"]) == 512  # hex of a 2048-bit RSA signature
    assert query["response-content-disposition"] == f'attachment; filename="{job.name}.sdf"'
    assert query["response-content-type"] == "chemical/x-mdl-sdfile"
    with default_storage.open(job.artifact.name, "rb") as stored:
        content = stored.read()
    assert content == gcs.objects[(BUCKET, job.artifact.name)][0] and content.rstrip().endswith(b"$$$$")
    # Outsiders and anonymous readers get no URL at all.
    assert outsider_client.get(_structure_url(job)).status_code == 404
    assert anon_client.get(_structure_url(job)).status_code in (401, 403)


def test_a_missing_object_is_a_404_not_a_redirect(
    gcs: fake_gcs.Buckets, finished: Batch, owner_client: APIClient
) -> None:
    job = _first_job(finished)
    default_storage.delete(job.artifact.name)
    response = owner_client.get(_structure_url(job))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_structure"


def test_reused_predictions_copy_their_file_within_the_bucket(
    gcs: fake_gcs.Buckets, make_batch: Callable[..., Batch], run_all: Callable[[], None]
) -> None:
    first = make_batch()
    run_all()
    second = make_batch(name="again")
    run_all()
    second.refresh_from_db()
    assert second.n_reused == 4
    names = gcs.names(BUCKET)
    assert len([n for n in names if n.startswith(f"artifacts/{second.pk}/")]) == 4
    assert len([n for n in names if n.startswith(f"artifacts/{first.pk}/")]) == 4


def test_export_files_are_built_in_the_bucket_and_download_by_signed_url(
    gcs: fake_gcs.Buckets, finished: Batch, owner_client: APIClient, settings: Any
) -> None:
    settings.OMTX_EXPORT_INLINE_ROWS = 1
    assert owner_client.get(f"{BATCHES}{finished.pk}/export", {"format": "csv"}).status_code == 202
    build_all()
    export = ExportFile.objects.get(batch=finished, format="csv")
    assert export.status == ExportStatus.READY, export.error
    assert export.file in gcs.names(BUCKET)
    response = owner_client.get(f"{BATCHES}{finished.pk}/exports/{export.pk}/download")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["response-content-disposition"] == [f'attachment; filename="batch-{finished.pk}.csv"']
    with default_storage.open(export.file, "rb") as stored:
        assert stored.read().startswith(b"index,")


def test_deleting_a_batch_deletes_its_objects(gcs: fake_gcs.Buckets, finished: Batch, owner_client: APIClient) -> None:
    assert owner_client.delete(f"{BATCHES}{finished.pk}/").status_code == 204
    assert gcs.names(BUCKET) == []


# --- settings -------------------------------------------------------------------------


def _storages_with(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.STORAGES, default=str))"
    )
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("GS_")}
    environment = {**inherited, "DJANGO_SETTINGS_MODULE": "omtx_hub.settings", **env}
    done = subprocess.run(  # nosec B603 (this interpreter, fixed arguments)
        [sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True, check=True
    )
    stored: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return stored


def test_the_filesystem_by_default_and_the_bucket_when_named() -> None:
    assert _storages_with({})["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    configured = _storages_with({"GS_BUCKET_NAME": "omtx-prod", "OMTX_SIGNED_URL_SECONDS": "300"})["default"]
    assert configured["BACKEND"] == "storages.backends.gcloud.GoogleCloudStorage"
    assert configured["OPTIONS"]["bucket_name"] == "omtx-prod"
    assert configured["OPTIONS"]["expiration"] == "0:05:00"
    assert configured["OPTIONS"]["file_overwrite"] is False
