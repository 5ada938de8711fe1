"""Asynchronous submission: 202, background validation in chunks, finalize (services/intake.py)."""

import io
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from batches.background import intake as background
from batches.models import Batch, IntakeChunk, Job
from batches.services import intake, submission
from batches.services.lifecycle import batch_cancel
from batches.states import BatchStatus
from batches.tests.test_concurrency import race, unexpected
from batches.validation.ligands import raw_from_json
from conftest import CDK2

BATCHES = "/api/v3/batches/"

# Salts, a duplicate across chunks (aspirin twice, the second as its sodium salt), bad items
# of every kind, a name problem: what a real file mixes.
MIXED: list[Any] = [
    {"name": "aspirin", "smiles": "CC(=O)Oc1ccccc1C(=O)O"},
    "CCO",
    {"name": "bad", "smiles": "C1CC"},
    {"name": "amphetamine tosylate", "smiles": "CC(N)Cc1ccccc1.Cc1ccc(S(=O)(=O)O)cc1"},
    42,
    {"name": "sodium aspirin", "smiles": "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]"},
    {"name": "", "smiles": "c1ccccc1O"},
    {"name": "salt only", "smiles": "[Na+].[Cl-]"},
    {"name": "caffeine", "smiles": "Cn1cnc2c1c(=O)n(C)c(=O)n2C"},
    {"smiles": None},
    {"name": "ethanol again", "smiles": "OCC"},
]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Three ligands per chunk, background past two: every list here spans chunks."""
    monkeypatch.setattr(submission, "INTAKE_CHUNK", 3)
    settings.OMTX_INLINE_VALIDATION_LIGANDS = 2


def _post(client: APIClient, ligands: list[Any], **fields: Any) -> Any:
    return client.post(BATCHES, {"protein_sequence": CDK2, "ligands": ligands, **fields}, format="json")


def _jobs(batch_id: str) -> list[tuple[Any, ...]]:
    return list(
        Job.objects.filter(batch_id=batch_id)
        .order_by("index")
        .values_list("index", "name", "input_smiles", "canonical_smiles", "inchikey", "standardization", "reuse_key")
    )


def _report(body: dict[str, Any]) -> dict[str, Any]:
    return {key: body["validation"][key] for key in ("submitted", "accepted", "rejected", "rejected_ligands")}


@pytest.mark.parametrize("standardize", [True, False])
def test_background_validation_gives_what_inline_validation_gives(
    owner_client: APIClient,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    validate_in_background: Callable[[], int],
    standardize: bool,
) -> None:
    inline = _post(owner_client, MIXED, standardize=standardize)
    assert inline.status_code == 201, inline.content[:300]
    monkeypatch.setattr(submission, "INTAKE_CHUNK", 3)
    settings.OMTX_INLINE_VALIDATION_LIGANDS = 2
    accepted = _post(owner_client, MIXED, standardize=standardize)
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "validating" and accepted.json()["progress"]["total"] == 0
    assert IntakeChunk.objects.filter(batch_id=accepted.json()["id"]).count() == 4  # 11 ligands, 3 a chunk
    assert validate_in_background() >= 1
    done = owner_client.get(accepted["Location"]).json()
    assert done["status"] == "queued"
    assert _report(done) == _report(inline.json())
    assert done["validation"]["standardization"] == inline.json()["validation"]["standardization"]
    assert _jobs(done["id"]) == _jobs(inline.json()["id"])
    assert done["progress"]["queued"] == done["progress"]["total"] == len(_jobs(done["id"]))
    assert not IntakeChunk.objects.filter(batch_id=done["id"]).exists()  # chunks go once used


def test_allowed_duplicates_are_kept_in_the_background_too(
    owner: User, settings: Any, monkeypatch: pytest.MonkeyPatch, validate_in_background: Callable[[], int]
) -> None:
    def create() -> Batch:
        sub = submission.Submission(
            name="dups", model="ligand-profile", protein_sequence=CDK2, ligands=raw_from_json(MIXED)
        )
        sub.allow_duplicates = True
        return submission.batch_create(owner=owner, submission=sub)[0]

    inline = create()
    monkeypatch.setattr(submission, "INTAKE_CHUNK", 3)
    settings.OMTX_INLINE_VALIDATION_LIGANDS = 2
    background_batch = create()
    validate_in_background()
    background_batch.refresh_from_db()
    assert background_batch.n_total == inline.n_total == 7  # the duplicates each a job
    assert _jobs(str(background_batch.pk)) == _jobs(str(inline.pk))


def test_a_real_file_validates_the_same_in_a_process_pool(
    owner_client: APIClient, settings: Any, shared_data: Path, validate_in_background: Callable[[], int]
) -> None:
    """chembl2321810.smi (1,017 ligands) through two spawned processes."""
    path = shared_data / "ligands" / "chembl2321810.smi"
    form = {"protein_sequence": CDK2, "options": '{"conformer": false}'}
    settings.OMTX_INLINE_VALIDATION_LIGANDS = 2_000
    with path.open("rb") as handle:
        inline = owner_client.post(BATCHES, {**form, "ligands_file": handle}, format="multipart").json()
    settings.OMTX_INLINE_VALIDATION_LIGANDS = 500
    settings.OMTX_VALIDATION_WORKERS = 2
    background.shutdown()
    try:
        with path.open("rb") as handle:
            response = owner_client.post(BATCHES, {**form, "ligands_file": handle}, format="multipart")
        assert response.status_code == 202
        validate_in_background()
        assert isinstance(background.pool(), ProcessPoolExecutor)
    finally:
        background.shutdown()
    done = owner_client.get(response["Location"]).json()
    assert done["status"] == "queued"
    assert _report(done) == _report(inline) and done["validation"]["accepted"] > 1000
    assert _jobs(done["id"]) == _jobs(inline["id"])


def test_an_sdf_is_parsed_in_the_background(
    owner_client: APIClient, small_chunks: None, shared_data: Path, validate_in_background: Callable[[], int]
) -> None:
    path = shared_data / "ligands" / "cmet_ligands.sdf"
    with path.open("rb") as handle:
        response = owner_client.post(BATCHES, {"protein_sequence": CDK2, "ligands_file": handle}, format="multipart")
    assert response.status_code == 202
    assert IntakeChunk.objects.filter(batch_id=response.json()["id"]).count() == 8  # 24 records
    validate_in_background()
    done = owner_client.get(response["Location"]).json()
    assert done["status"] == "queued" and done["validation"]["submitted"] == 24
    assert done["validation"]["accepted"] == done["progress"]["total"] > 0


def test_the_status_shows_validation_progress(owner_client: APIClient, small_chunks: None) -> None:
    body = _post(owner_client, MIXED).json()
    status_url = body["links"]["status"]
    assert owner_client.get(status_url).json()["intake"] == {"submitted": 11, "validated": 0}
    chunk = intake.intake_claim(limit=1)[0]
    background._store(chunk, background.pool().submit(background.check_chunk, chunk.items, 0, chunk.limits, True))
    assert owner_client.get(status_url).json()["intake"] == {"submitted": 11, "validated": 3}
    assert owner_client.get(status_url).json()["is_terminal"] is False


@pytest.mark.parametrize(
    "ligands,on_invalid,code",
    [
        (MIXED, "reject", "invalid_ligands"),
        (["C1CC", "[Na+].[Cl-]", "not a molecule", 7], "skip", "no_valid_ligands"),
    ],
)
def test_a_batch_refused_in_the_background_is_rejected_with_its_report(
    owner_client: APIClient,
    small_chunks: None,
    validate_in_background: Callable[[], int],
    ligands: list[Any],
    on_invalid: str,
    code: str,
) -> None:
    response = _post(owner_client, ligands, on_invalid=on_invalid)
    assert response.status_code == 202
    validate_in_background()
    done = owner_client.get(response["Location"]).json()
    assert done["status"] == "rejected" and done["is_terminal"] is True
    assert done["validation"]["error"]["code"] == code
    assert done["validation"]["submitted"] == len(ligands)
    assert len(done["validation"]["rejected_ligands"]) == done["validation"]["rejected"] > 0
    assert done["finished_at"] is not None
    assert not Job.objects.filter(batch_id=done["id"]).exists()
    assert owner_client.delete(response["Location"]).status_code == 204


def test_a_killed_worker_s_chunk_is_validated_again_and_its_late_store_is_refused(
    owner_client: APIClient, small_chunks: None, validate_in_background: Callable[[], int]
) -> None:
    batch_id = _post(owner_client, MIXED).json()["id"]
    dead = intake.intake_claim(limit=10)  # a worker claims everything, then is killed
    assert len(dead) == 4
    assert validate_in_background() == 0  # leased: nobody else takes them yet
    IntakeChunk.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = intake.intake_claim(limit=1)[0]  # the next worker takes the first chunk over
    assert taken.pk == dead[0].pk
    assert not intake.intake_store(chunk=dead[0], results=[])  # the dead worker's store: refused
    IntakeChunk.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert validate_in_background() >= 1
    batch = Batch.objects.get(pk=batch_id)
    assert batch.status == BatchStatus.QUEUED
    # The dead worker's results arrive late: its claim token matches no pending chunk.
    assert not intake.intake_store(chunk=dead[0], results=[])
    assert Job.objects.filter(batch_id=batch_id).count() == batch.n_total > 0


@pytest.mark.parametrize(
    "failure", [BrokenProcessPool("killed"), TimeoutError(), ValueError("an input nobody foresaw")]
)
def test_a_chunk_whose_check_fails_is_released_then_only_its_ligand_is_refused(
    owner_client: APIClient, small_chunks: None, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """A molecule that kills its pool process (or hangs it, or trips a bug) fails its chunk
    every time: the chunk comes back at once, and after two such claims it goes one ligand
    per task and only that ligand is refused."""
    batch_id = _post(owner_client, MIXED[:3]).json()["id"]
    real = background.check_chunk

    def failing(items: list[Any], first_index: int, *args: Any) -> list[list[Any]]:
        if any(item[2] == "CCO" for item in items):
            raise failure
        return real(items, first_index, *args)

    monkeypatch.setattr(background, "check_chunk", failing)
    for _ in range(background.ONE_BY_ONE_AFTER):
        assert background.step()
        assert Batch.objects.get(pk=batch_id).status == BatchStatus.VALIDATING
        assert IntakeChunk.objects.get(batch_id=batch_id).lease_expires_at is None  # released at once
    assert background.step()
    batch = Batch.objects.get(pk=batch_id)
    assert batch.status == BatchStatus.QUEUED
    refused = [(r["index"], r["code"]) for r in batch.validation_report["rejected_ligands"]]
    assert refused == [(1, "validation_crashed"), (2, "invalid_smiles")]
    assert list(Job.objects.filter(batch_id=batch_id).values_list("index", flat=True)) == [0]


def test_a_validating_batch_can_be_cancelled_and_then_deleted(
    owner_client: APIClient, small_chunks: None, validate_in_background: Callable[[], int]
) -> None:
    links = _post(owner_client, MIXED).json()["links"]
    url = links["detail"]
    assert owner_client.delete(url).status_code == 409  # still in progress: cancel first
    body = owner_client.post(links["cancel"]).json()
    assert body["status"] == "cancelled" and body["is_terminal"] is True
    assert validate_in_background() == 0
    assert not Job.objects.exists() and not IntakeChunk.objects.exists()
    assert owner_client.delete(url).status_code == 204


def test_a_validating_batch_is_its_owner_s_only(
    owner_client: APIClient, outsider_client: APIClient, small_chunks: None
) -> None:
    links = _post(owner_client, MIXED).json()["links"]
    for method, name in [
        ("get", "detail"),
        ("get", "status"),
        ("post", "cancel"),
        ("post", "retry"),
        ("delete", "detail"),
    ]:
        assert getattr(outsider_client, method)(links[name]).status_code == 404


def test_an_idempotent_replay_returns_the_validating_batch(owner_client: APIClient, small_chunks: None) -> None:
    first = owner_client.post(
        BATCHES, {"protein_sequence": CDK2, "ligands": MIXED}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    again = owner_client.post(
        BATCHES, {"protein_sequence": CDK2, "ligands": MIXED}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"] and Batch.objects.count() == 1


def test_whole_batch_problems_are_answered_before_the_202(owner_client: APIClient, small_chunks: None) -> None:
    assert _post(owner_client, MIXED, protein_sequence="NOT A PROTEIN 123").status_code == 400
    assert _post(owner_client, MIXED, options={"force_field": "nope"}).status_code == 400
    assert _post(owner_client, MIXED, max_attempts=99).status_code == 400
    assert not Batch.objects.exists()


def test_the_predecessor_s_submit_keeps_its_200(owner_client: APIClient, small_chunks: None) -> None:
    body = {
        "job_name": "legacy",
        "protein_name": "CDK2",
        "protein_sequence": CDK2,
        "ligands": [{"name": f"l{i}", "smiles": "C" * (i + 1)} for i in range(5)],
        "model_name": "ligand-profile",
    }
    response = owner_client.post(BATCHES + "submit", body, format="json")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["status"] == "validating" and response.json()["success"] is True


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_take_each_chunk_once(owner: User) -> None:
    batch = _validating_batch(owner, 60)
    claimed = race(*[lambda: intake.intake_claim(limit=7) for _ in range(6)])
    assert not unexpected(claimed)
    ids = [chunk.pk for chunks in claimed for chunk in chunks]
    assert len(ids) == len(set(ids)) == 20  # 60 ligands, 3 a chunk
    assert set(ids) == set(IntakeChunk.objects.filter(batch=batch).values_list("pk", flat=True))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_finalizers_create_the_jobs_once(owner: User) -> None:
    batch = _validating_batch(owner, 30)
    _validate_without_finalizing()
    outcomes = race(*[lambda: intake.intake_finalize(batch_id=batch.pk) for _ in range(4)])
    assert not unexpected(outcomes)
    assert outcomes.count(True) == 1
    assert Job.objects.filter(batch=batch).count() == 30
    assert Batch.objects.get(pk=batch.pk).n_total == 30


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cancel_racing_finalize_leaves_a_cancelled_batch_without_jobs_or_with_all(owner: User) -> None:
    batch = _validating_batch(owner, 30)
    _validate_without_finalizing()
    outcomes = race(lambda: intake.intake_finalize(batch_id=batch.pk), lambda: batch_cancel(batch=batch))
    assert not unexpected(outcomes)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    jobs = Job.objects.filter(batch=batch)
    # Finalize first: 30 jobs, all cancelled by the cancel. Cancel first: no jobs at all.
    assert jobs.count() in (0, 30) and not jobs.exclude(status="cancelled").exists()
    assert batch.n_cancelled == jobs.count()


def _validate_without_finalizing() -> None:
    """Every pending chunk validated and stored, as a worker does before its finalize."""
    for chunk in intake.intake_claim(limit=100):
        results = background.check_chunk(chunk.items, chunk.first_index, chunk.limits, True)
        intake.intake_store(chunk=chunk, results=results)


def _validating_batch(owner: User, n: int) -> Batch:
    ligands = [{"name": f"l{i}", "smiles": "C" * (i % 12 + 1) + "O" * (i // 12)} for i in range(n)]
    sub = submission.Submission(
        name="race", model="ligand-profile", protein_sequence=CDK2, ligands=raw_from_json(ligands)
    )
    with override_settings(OMTX_INLINE_VALIDATION_LIGANDS=2), mock.patch.object(submission, "INTAKE_CHUNK", 3):
        batch, _ = submission.batch_create(owner=owner, submission=sub)
    assert batch.status == BatchStatus.VALIDATING
    return batch


def test_a_batch_whose_worker_died_before_finalize_is_finalized_by_the_next(
    owner_client: APIClient, small_chunks: None, validate_in_background: Callable[[], int]
) -> None:
    batch_id = _post(owner_client, MIXED).json()["id"]
    _validate_without_finalizing()  # validated and stored; then the worker died
    assert Batch.objects.get(pk=batch_id).status == BatchStatus.VALIDATING
    assert background.step()  # nothing left to claim: the next worker's pass finalizes it
    assert Batch.objects.get(pk=batch_id).status == BatchStatus.QUEUED


def test_a_new_priority_leaves_a_validating_batch_validating(
    owner_client: APIClient, small_chunks: None, validate_in_background: Callable[[], int]
) -> None:
    from batches.services.lifecycle import batch_set_priority

    batch = Batch.objects.get(pk=_post(owner_client, MIXED).json()["id"])
    batch_set_priority(batch=batch, priority=5)
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.VALIDATING
    validate_in_background()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.QUEUED and batch.n_total > 0
    assert set(Job.objects.filter(batch=batch).values_list("priority", flat=True)) == {5}


def _mol(name: str) -> str:
    return f"{name}\n  RDKit          2D\n\n  2  1  0  0  0  0  0  0  0  0999 V2000\n" + (
        "    0.0000    0.0000    0.0000 C   0  0\n    1.2000    0.0000    0.0000 O   0  0\n  1  2  1  0\nM  END\n"
    )


@pytest.mark.parametrize(
    "content,names",
    [
        (_mol("a") + "$$$$ \n" + _mol("b") + "$$$$\n", ["a", "b"]),  # a separator with a trailing space
        (_mol("a") + "$$$$\r\n" + _mol("b") + "$$$$\r\n", ["a", "b"]),
        (_mol("a") + "$$$$\n" + _mol("b"), ["a", "b"]),  # the last without its separator
    ],
)
def test_sdf_records_split_as_rdkit_splits_them(content: str, names: list[str]) -> None:
    from rdkit import Chem

    from batches.validation.files import read_ligand_file

    data = content.encode()
    ours = [ligand.name for ligand in read_ligand_file(data, "x.sdf")]
    rdkit = [m.GetProp("_Name") for m in Chem.ForwardSDMolSupplier(io.BytesIO(data)) if m is not None]
    assert ours == rdkit == names


def test_an_sdf_title_that_is_not_utf8_leaves_the_ligand_unnamed() -> None:
    from batches.validation.files import read_ligand_file

    data = (_mol("caf\xe9") + "$$$$\n").encode("latin-1")
    [ligand] = read_ligand_file(data, "x.sdf")
    assert ligand.smiles == "CO" and ligand.name is None and ligand.error is None


@pytest.mark.postgres
def test_the_sweep_for_owed_finalizes_reads_only_the_validating_batches(owner: User) -> None:
    """intake_unfinalized runs on every idle pass: with many finished batches its plan must
    use the partial index, not read the batch table."""
    import json

    from django.db import connection

    from batches.models import Target

    target = Target.objects.create(sequence_sha256="x" * 64, sequence=CDK2, length=len(CDK2))
    fields = {"owner": owner, "model": "ligand-profile", "model_version": "1", "target": target}
    Batch.objects.bulk_create(Batch(name=f"b{i}", status=BatchStatus.COMPLETED, **fields) for i in range(3000))
    Batch.objects.create(name="still validating", status=BatchStatus.VALIDATING, **fields)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE batches_batch")
        sql, params = intake.unfinalized_query().query.sql_with_params()
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    text = plan if isinstance(plan, str) else json.dumps(plan)
    assert "batch_validating" in text


def test_a_small_submission_is_validated_in_turn_not_after_a_large_one(owner: User, outsider: User) -> None:
    large = _validating_batch(owner, 30)  # 10 chunks
    small = _validating_batch(outsider, 6)  # 2 chunks, submitted later
    first = intake.intake_claim(limit=2)
    assert {chunk.batch_id for chunk in first} == {large.pk, small.pk}
    second = intake.intake_claim(limit=2)
    assert {chunk.batch_id for chunk in second} == {large.pk, small.pk}
