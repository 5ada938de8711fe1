"""The chunk runner end to end, against the fake `boltz` command (fake_boltz.py)."""

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from batches.engine import boltz_runner, wire
from batches.engine.boltz_io import msa_cache_key, safe_name
from batches.engine.boltz_runner import predict_payload, run_boltz_chunk
from batches.engine.types import ChunkRequest, JobOutcome
from batches.tests.boltz_helpers import OTHER_TARGET, TARGET, FakeBoltz, chunk


@pytest.fixture
def boltz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBoltz:
    monkeypatch.setattr(boltz_runner, "MIN_RUN_SECONDS", 0.5)
    monkeypatch.setattr(boltz_runner, "KILL_GRACE_SECONDS", 2.0)
    return FakeBoltz(tmp_path, monkeypatch)


def run(boltz: FakeBoltz, request: ChunkRequest, *, timeout: float = 60, work: str = "work") -> list[JobOutcome]:
    return run_boltz_chunk(
        request,
        boltz_cmd=boltz.cmd,
        work_dir=boltz.root / work,
        msa_cache_dir=boltz.root / "msa-cache",
        timeout_seconds=timeout,
    )


def by_smiles(request: ChunkRequest, outcomes: list[JobOutcome]) -> dict[str, JobOutcome]:
    assert [o.job_id for o in outcomes] == [j.job_id for j in request.jobs]
    return {job.smiles: outcome for job, outcome in zip(request.jobs, outcomes, strict=True)}


def yaml_msa(work: Path, label: str, job_id: str) -> Any:
    doc = yaml.safe_load((work / f"in_{label}" / f"{safe_name(job_id)}.yaml").read_text())
    return doc["sequences"][0]["protein"].get("msa", "<absent>")


def test_a_chunk_runs_boltz_once_and_every_ligand_succeeds(boltz: FakeBoltz) -> None:
    request = chunk("CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", use_msa=False)
    outcomes = run(boltz, request)
    assert [o.ok for o in outcomes] == [True, True, True], [o.message for o in outcomes]
    assert len(boltz.runs()) == 1
    argv = boltz.runs()[0]
    assert argv[:2] == ["predict", str(boltz.root / "work" / "in_main")]
    assert "--use_msa_server" not in argv and "--override" in argv
    for job, outcome in zip(request.jobs, outcomes, strict=True):
        assert outcome.artifact_name == f"{job.job_id}.cif"
        assert f"fake model for {job.smiles}" in outcome.artifact_content.decode()
        assert outcome.metrics["affinity_pred_value"] == -1.25
        assert outcome.metrics["affinity_probability_binary"] == 0.81
        assert outcome.metrics["pic50"] == 7.25
        assert outcome.metrics["ligand_iptm"] == 0.82
        assert outcome.metrics["affinity_pred_value2"] == -1.4
        assert yaml_msa(boltz.root / "work", "main", job.job_id) == "empty"


def test_values_are_per_ligand(boltz: FakeBoltz) -> None:
    boltz.set(values={"CCN": {"affinity": {"affinity_pred_value": 1.5}, "confidence": {"iptm": 0.4}}})
    outcomes = by_smiles(request := chunk("CCO", "CCN", use_msa=False), run(boltz, request))
    assert outcomes["CCN"].metrics["affinity_pred_value"] == 1.5
    assert outcomes["CCN"].metrics["pic50"] == 4.5
    assert outcomes["CCN"].metrics["iptm"] == 0.4
    assert outcomes["CCO"].metrics["affinity_pred_value"] == -1.25


def test_the_msa_is_fetched_once_per_target_and_reused(boltz: FakeBoltz) -> None:
    request = chunk("CCO", "CCN", "CCC")
    assert all(o.ok for o in run(boltz, request, work="w1"))
    first, main = boltz.runs()
    assert "--use_msa_server" in first and first[1].endswith("in_msa0")
    assert "--use_msa_server" not in main
    cached = boltz.root / "msa-cache" / f"{msa_cache_key(TARGET)}.csv"
    assert cached.read_text().startswith("key,sequence")
    assert yaml_msa(boltz.root / "w1", "msa0", request.jobs[0].job_id) == "<absent>"
    assert yaml_msa(boltz.root / "w1", "main", request.jobs[1].job_id) == str(cached)

    again = chunk("CCCC", "CCCCC")
    assert all(o.ok for o in run(boltz, again, work="w2"))
    assert len(boltz.runs()) == 3 and "--use_msa_server" not in boltz.runs()[2]
    assert yaml_msa(boltz.root / "w2", "main", again.jobs[0].job_id) == str(cached)

    other = chunk("CCO", sequence=OTHER_TARGET)
    assert all(o.ok for o in run(boltz, other, work="w3"))
    assert "--use_msa_server" in boltz.runs()[3]
    assert (boltz.root / "msa-cache" / f"{msa_cache_key(OTHER_TARGET)}.csv").is_file()


def test_a_supplied_a3m_wins(boltz: FakeBoltz) -> None:
    a3m = f">query\n{TARGET}\n>hit\n{TARGET[:-2]}--\n"
    request = chunk("CCO", "CCN", msa=a3m, use_msa=True)
    assert all(o.ok for o in run(boltz, request))
    (argv,) = boltz.runs()
    assert "--use_msa_server" not in argv
    supplied = yaml_msa(boltz.root / "work", "main", request.jobs[0].job_id)
    assert supplied.endswith(".a3m") and Path(supplied).read_text() == a3m
    assert not (boltz.root / "msa-cache").exists()


def test_a_supplied_a3m_for_another_protein_fails_every_ligand_before_boltz_runs(boltz: FakeBoltz) -> None:
    request = chunk("CCO", "CCN", msa=f">q\n{OTHER_TARGET}\n")
    outcomes = run(boltz, request)
    assert {o.failure_reason for o in outcomes} == {"invalid_input"}
    assert "not the target sequence" in outcomes[0].message
    assert boltz.runs() == []


def test_each_ligand_fails_alone_with_its_own_reason(boltz: FakeBoltz) -> None:
    modes = {
        "C1": "invalid",
        "C2": "tokenizer",
        "C3": "oom",
        "C4": "affinity_oom",
        "C5": "no_affinity",
        "C6": "no_cif",
        "C7": "no_confidence",
        "C8": "bad_json",
        "C9": "nan",
        "C10": "out_of_range",
    }
    boltz.set(ligands=modes)
    request = chunk("CCO", *modes, "CCN", use_msa=False)
    outcomes = by_smiles(request, run(boltz, request))
    assert outcomes["CCO"].ok and outcomes["CCN"].ok
    expected = {
        "C1": "invalid_input",
        "C2": "invalid_input",
        "C3": "out_of_memory",
        "C4": "out_of_memory",
        # The anonymous OOM skip line explains every ligand left without an affinity file.
        "C5": "out_of_memory",
        "C6": "out_of_memory",
        "C7": "out_of_memory",
        "C8": "output_missing",
        "C9": "output_missing",
        "C10": "output_missing",
    }
    assert {s: outcomes[s].failure_reason for s in modes} == expected
    assert "Failed to parse SMILES" in outcomes["C1"].message
    assert "Tokenizer failed" in outcomes["C2"].message
    assert "is nan" in outcomes["C9"].message
    assert "1.7" in outcomes["C10"].message


@pytest.mark.parametrize(
    "mode,reason,words",
    [
        ("no_affinity", "output_missing", "affinity_{name}.json"),
        ("no_cif", "output_missing", "{name}_model_0.cif"),
        ("no_confidence", "output_missing", "confidence_{name}_model_0.json"),
        ("bad_json", "output_missing", "not readable JSON"),
    ],
)
def test_missing_files_without_an_oom_are_output_missing(boltz: FakeBoltz, mode: str, reason: str, words: str) -> None:
    boltz.set(ligands={"CCN": mode})
    request = chunk("CCO", "CCN", use_msa=False)
    outcomes = by_smiles(request, run(boltz, request))
    assert outcomes["CCO"].ok
    assert outcomes["CCN"].failure_reason == reason
    assert words.format(name=safe_name(request.jobs[1].job_id)) in outcomes["CCN"].message


def test_a_ligand_without_structure_does_not_cost_the_others_their_affinity(boltz: FakeBoltz) -> None:
    # Boltz 2.2.1 crashes its affinity stage on a record with no structure; the runner reruns once.
    boltz.set(ligands={"CCN": "oom"})
    request = chunk("CCO", "CCN", "CCC", use_msa=False)
    outcomes = by_smiles(request, run(boltz, request))
    assert outcomes["CCO"].ok and outcomes["CCC"].ok
    assert outcomes["CCN"].failure_reason == "out_of_memory"
    main, recovery = boltz.runs()
    assert "--override" in main and "--override" not in recovery
    recovered = boltz.root / "work" / "in_main"
    assert not (recovered / f"{safe_name(request.jobs[1].job_id)}.yaml").exists()


def test_a_crashed_run_fails_what_it_did_not_write(boltz: FakeBoltz) -> None:
    boltz.set(run="crash")
    outcomes = run(boltz, chunk("CCO", "CCN", use_msa=False))
    assert {o.failure_reason for o in outcomes} == {"output_missing"}
    assert "exited with code 1" in outcomes[0].message
    assert "simulated crash" in outcomes[0].message
    assert len(boltz.runs()) == 1  # no ligand lacked a structure: nothing to recover


def test_a_run_that_dies_of_oom_is_out_of_memory(boltz: FakeBoltz) -> None:
    boltz.set(run="crash_oom")
    outcomes = run(boltz, chunk("CCO", "CCN", use_msa=False))
    assert {o.failure_reason for o in outcomes} == {"out_of_memory"}


def test_a_hung_boltz_is_killed_with_its_children_at_the_deadline(boltz: FakeBoltz) -> None:
    boltz.set(run="hang")
    started = time.monotonic()
    outcomes = run(boltz, chunk("CCO", "CCN", use_msa=False), timeout=2)
    assert time.monotonic() - started < 15
    assert {o.failure_reason for o in outcomes} == {"timeout"}
    child = int(boltz.pid_file.read_text())
    assert not _alive(child), "the hung child of boltz survived"


def test_a_hang_in_the_structure_stage_times_out_every_ligand(boltz: FakeBoltz) -> None:
    # Boltz predicts affinities only after every structure: no ligand is complete yet.
    boltz.set(ligands={"CCN": "hang"})
    request = chunk("CCO", "CCN", "CCC", use_msa=False)
    outcomes = by_smiles(request, run(boltz, request, timeout=3))
    assert {o.failure_reason for o in outcomes.values()} == {"timeout"}
    assert list((boltz.root / "work" / "out").rglob("*_model_0.cif")), "nothing was written before the hang"
    assert not _alive(int(boltz.pid_file.read_text()))


def test_ligands_finished_before_the_deadline_keep_their_results(boltz: FakeBoltz) -> None:
    boltz.set(ligands={"CCN": "affinity_hang"})
    request = chunk("CCO", "CCN", "CCC", use_msa=False)
    outcomes = by_smiles(request, run(boltz, request, timeout=3))
    assert outcomes["CCO"].ok
    assert outcomes["CCN"].failure_reason == "timeout"
    assert outcomes["CCC"].failure_reason == "timeout"
    assert f"affinity_{safe_name(request.jobs[2].job_id)}.json" in outcomes["CCC"].message


def test_no_budget_left_means_no_run(boltz: FakeBoltz) -> None:
    outcomes = run(boltz, chunk("CCO", use_msa=False), timeout=0.1)
    assert [o.failure_reason for o in outcomes] == ["timeout"]
    assert boltz.runs() == []


def test_an_msa_server_failure_fails_the_chunk_retryably(boltz: FakeBoltz) -> None:
    boltz.set(msa="fail")
    outcomes = run(boltz, chunk("CCO", "CCN"))
    assert {o.failure_reason for o in outcomes} == {"executor_error"}
    assert "MSA server" in outcomes[0].message
    assert len(boltz.runs()) == 1
    assert not (boltz.root / "msa-cache").exists() or not any((boltz.root / "msa-cache").iterdir())


def test_a_first_ligand_refused_before_the_msa_step_hands_the_fetch_to_the_next(boltz: FakeBoltz) -> None:
    boltz.set(ligands={"C1": "invalid"})
    request = chunk("C1", "CCO", "CCN")
    outcomes = by_smiles(request, run(boltz, request))
    assert outcomes["C1"].failure_reason == "invalid_input"
    assert outcomes["CCO"].ok and outcomes["CCN"].ok
    runs = boltz.runs()
    assert ["--use_msa_server" in argv for argv in runs] == [True, True, False]


def test_the_payload_round_trip_is_what_the_modal_function_returns(boltz: FakeBoltz) -> None:
    boltz.set(ligands={"CCN": "invalid"})
    request = chunk("CCO", "CCN", use_msa=False)
    returned = predict_payload(
        wire.request_to_payload(request, timeout_seconds=60),
        boltz_cmd=boltz.cmd,
        work_root=boltz.root / "chunks",
        msa_cache_dir=boltz.root / "msa-cache",
        weights_dir=boltz.root / "weights",
        max_seconds=30,
    )
    outcomes = wire.outcomes_from_payload(returned)
    assert [o.ok for o in outcomes] == [True, False]
    assert outcomes[0].artifact_content.startswith(b"data_job_")
    assert outcomes[1].failure_reason == "invalid_input"
    assert "--cache" in boltz.runs()[0] and str(boltz.root / "weights") in boltz.runs()[0]
    assert list((boltz.root / "chunks").iterdir()) == []  # the work directory is cleaned up


def test_the_payload_must_be_for_boltz2(boltz: FakeBoltz) -> None:
    request = chunk("CCO")
    payload = wire.request_to_payload(ChunkRequest("ligand-profile", TARGET, {}, request.jobs), timeout_seconds=5)
    with pytest.raises(ValueError, match="runs boltz2"):
        predict_payload(
            payload,
            boltz_cmd=boltz.cmd,
            work_root=boltz.root,
            msa_cache_dir=boltz.root,
            weights_dir=None,
            max_seconds=5,
        )


def _alive(pid: int, *, within: float = 5.0) -> bool:
    """Whether `pid` still runs `within` seconds from now: a killed process takes a moment to exit."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _running(pid):
            return False
        time.sleep(0.05)
    return True


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # A zombie (state Z) is dead for our purposes; it waits only for its reaper.
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
