"""Quotas per tier, checked at submission; the caller's quotas and usage; staff metrics."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from batches.models import Batch
from batches.states import BatchStatus
from ratelimit.models import Tier
from ratelimit.quotas import QuotaBusy, QuotaExceeded
from ratelimit.usage import month_start, usage_of

pytestmark = pytest.mark.django_db
LIGAND = {"name": "x", "smiles": "CCO"}


@pytest.fixture
def tiny(owner: User, make_tier: Callable[..., Tier], on_tier: Callable[..., None]) -> Tier:
    tier = make_tier(
        burst=100, max_ligands_per_batch=4, max_active_batches=2, max_queued_jobs=6, gpu_seconds_per_month=100
    )
    on_tier(owner, tier)
    return tier


def ligands(n: int) -> list[dict[str, str]]:
    return [{"name": f"l{i}", "smiles": "C" * (i + 1) + "O"} for i in range(n)]


def test_a_batch_over_the_ligand_quota_is_refused_with_403(tiny: Tier, make_batch: Callable[..., Batch]) -> None:
    make_batch(ligands(4))
    with pytest.raises(QuotaExceeded) as refused:
        make_batch(ligands(5))
    assert refused.value.status_code == 403
    assert refused.value.details == {
        "quota": "max_ligands_per_batch",
        "tier": "tiny",
        "limit": 4,
        "used": 0,
        "requested": 5,
    }


def test_active_batches_over_the_quota_answer_429_until_one_finishes(
    tiny: Tier, make_batch: Callable[..., Batch]
) -> None:
    first = make_batch(ligands(1))
    make_batch(ligands(1))
    with pytest.raises(QuotaBusy) as refused:
        make_batch(ligands(1))
    assert refused.value.status_code == 429
    assert refused.value.details["quota"] == "max_active_batches" and refused.value.details["used"] == 2
    Batch.objects.filter(pk=first.pk).update(status=BatchStatus.COMPLETED, n_queued=0)
    make_batch(ligands(1))


def test_queued_jobs_over_the_quota_are_refused(tiny: Tier, make_batch: Callable[..., Batch]) -> None:
    make_batch(ligands(4))
    with pytest.raises(QuotaBusy) as refused:
        make_batch(ligands(3))
    assert (refused.value.details["quota"], refused.value.details["used"]) == ("max_queued_jobs", 4)
    make_batch(ligands(2))  # exactly at the quota is allowed


def test_a_validating_batch_counts_its_ligands_as_queued(
    tiny: Tier, owner: User, make_batch: Callable[..., Batch]
) -> None:
    batch = make_batch(ligands(3))
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.VALIDATING, n_queued=0, ligands_submitted=5)
    assert usage_of(user_id=owner.pk).queued_jobs == 5


def test_this_months_gpu_seconds_count_executed_jobs_of_gpu_models(
    tiny: Tier, owner: User, make_batch: Callable[..., Batch]
) -> None:
    batch = make_batch(ligands(3))
    Batch.objects.filter(pk=batch.pk).update(model="boltz2", status=BatchStatus.COMPLETED, n_queued=0)
    now = timezone.now()
    jobs = list(batch.jobs.order_by("index"))
    for job, seconds in zip(jobs, (60, 50, 30), strict=True):
        job.started_at, job.finished_at = now - timedelta(seconds=seconds), now
    jobs[2].reused_from = jobs[0].pk  # reused: no GPU time paid
    for job in jobs:
        job.save()
    assert usage_of(user_id=owner.pk).gpu_seconds_month == 110
    with pytest.raises(QuotaExceeded) as refused:
        make_batch(ligands(1))
    assert (refused.value.status_code, refused.value.details["quota"]) == (403, "gpu_seconds_per_month")
    # Last month's work does not count against this month.
    batch.jobs.update(finished_at=month_start() - timedelta(seconds=1), started_at=month_start() - timedelta(hours=1))
    assert usage_of(user_id=owner.pk).gpu_seconds_month == 0


def test_the_api_answers_over_quota_in_the_envelope(tiny: Tier, owner_client: APIClient) -> None:
    body = {"name": "b", "model": "ligand-profile", "protein_sequence": "MKT", "ligands": ligands(5)}
    refused = owner_client.post("/api/v3/batches", body, format="json")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and error["details"]["quota"] == "max_ligands_per_batch"


def test_quotas_are_off_when_disabled(tiny: Tier, settings: Any, make_batch: Callable[..., Batch]) -> None:
    settings.RATE_LIMIT_QUOTAS_ENABLED = False
    make_batch(ligands(5))


def test_the_caller_reads_their_own_quotas_and_usage(
    tiny: Tier,
    owner_client: APIClient,
    outsider_client: APIClient,
    anon_client: APIClient,
    make_batch: Callable[..., Batch],
) -> None:
    make_batch(ligands(2))
    mine = owner_client.get("/api/v3/resources/quotas").json()
    assert mine == {
        "tier": "tiny",
        "quotas": {
            "max_ligands_per_batch": {"limit": 4, "used": 0},
            "max_active_batches": {"limit": 2, "used": 1},
            "max_queued_jobs": {"limit": 6, "used": 2},
            "gpu_seconds_per_month": {"limit": 100, "used": 0},
        },
    }
    theirs = outsider_client.get("/api/v3/resources/quotas").json()
    assert theirs["tier"] == "default" and theirs["quotas"]["max_active_batches"]["used"] == 0
    assert anon_client.get("/api/v3/resources/quotas").status_code == 401


def test_resource_metrics_are_for_staff(
    staff_client: APIClient, owner_client: APIClient, anon_client: APIClient, make_batch: Callable[..., Batch]
) -> None:
    make_batch(ligands(2))
    metrics = staff_client.get("/api/v3/resources/metrics").json()
    assert (metrics["active_batches"], metrics["queued_jobs"], metrics["gpu_seconds_month"]) == (1, 2, 0)
    assert metrics["users_by_tier"] == {"default": 0, "premium": 0, "enterprise": 0}
    assert owner_client.get("/api/v3/resources/metrics").status_code == 403
    assert anon_client.get("/api/v3/resources/metrics").status_code == 401


def test_an_idempotent_replay_costs_no_quota(tiny: Tier, owner: User) -> None:
    from batches.services.submission import Submission, batch_create
    from batches.validation.ligands import raw_from_json
    from conftest import CDK2

    def submit(key: str) -> Batch:
        submission = Submission(
            name="b", model="ligand-profile", protein_sequence=CDK2, ligands=raw_from_json(ligands(1))
        )
        return batch_create(owner=owner, submission=submission, idempotency_key=key, request_sha256=key)[0]

    first = submit("one")
    submit("two")
    assert submit("one").pk == first.pk  # at the active-batch quota, the replay still answers
    with pytest.raises(QuotaBusy):
        submit("three")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_submissions_cannot_pass_the_active_batch_quota(
    owner: User, make_tier: Callable[..., Tier], on_tier: Callable[..., None]
) -> None:
    """Six submissions at once against a quota of two active batches: two are stored."""
    from batches.services import submission
    from batches.tests.test_concurrency import race
    from batches.validation.ligands import raw_from_json
    from conftest import CDK2

    on_tier(owner, make_tier(burst=100, max_active_batches=2, max_queued_jobs=1000))

    def submit() -> Batch:
        sub = submission.Submission(
            name="race", model="ligand-profile", protein_sequence=CDK2, ligands=raw_from_json(ligands(3))
        )
        return submission.batch_create(owner=owner, submission=sub)[0]

    outcomes = race(*[submit for _ in range(6)])
    assert sum(isinstance(o, Batch) for o in outcomes) == 2
    assert sum(isinstance(o, QuotaBusy) for o in outcomes) == 4, outcomes
    assert Batch.objects.filter(owner=owner).count() == 2
