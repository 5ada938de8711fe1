"""Boltz inputs: YAML per ligand, argv, MSA cache key, supplied A3M checks."""

import re
from pathlib import Path

import pytest
import yaml

from batches.catalog import BOLTZ2, MAX_MSA_CHARS
from batches.engine.boltz_io import (
    EMPTY_MSA,
    INT_FLAGS,
    MSA_SETTINGS,
    a3m_problem,
    a3m_query,
    build_argv,
    ligand_yaml,
    msa_cache_key,
    safe_name,
    write_inputs,
)
from batches.engine.types import JobInput
from batches.tests.boltz_helpers import TARGET, params
from omtx_hub.errors import InvalidInput


def test_safe_names_are_unique_dot_free_file_stems() -> None:
    ids = ["3f0c8a8e-1d2b-4c1e-9a51-6f7d0f2f3c11", "a.b", "a_b", "A_B", "../../etc/passwd", "x" * 300, ""]
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert re.fullmatch(r"job_[a-z0-9_-]+", name), name
        assert Path(f"{name}.yaml").stem == name
        assert len(name) <= 60
    assert safe_name(ids[0]) == safe_name(ids[0])


def test_ligand_yaml_is_the_documented_schema() -> None:
    doc = yaml.safe_load(ligand_yaml(sequence=TARGET, smiles="CC(=O)Oc1ccccc1C(=O)O", msa="/cache/abc.csv"))
    assert doc == {
        "version": 1,
        "sequences": [
            {"protein": {"id": "A", "sequence": TARGET, "msa": "/cache/abc.csv"}},
            {"ligand": {"id": "B", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}},
        ],
        "properties": [{"affinity": {"binder": "B"}}],
    }


def test_yaml_without_msa_leaves_the_field_out_and_empty_is_literal() -> None:
    fetch = yaml.safe_load(ligand_yaml(sequence=TARGET, smiles="CCO", msa=None))
    assert "msa" not in fetch["sequences"][0]["protein"]
    single = yaml.safe_load(ligand_yaml(sequence=TARGET, smiles="CCO", msa=EMPTY_MSA))
    assert single["sequences"][0]["protein"]["msa"] == "empty"


def test_smiles_that_look_like_yaml_survive() -> None:
    # '#', ':' and a leading '[' or '*' mean something to YAML; the SMILES must come back unchanged.
    for smiles in ["[NH4+]", "*C(=O)O", "C#N", "O=C(O)c1ccccc1:C", "Cl/C=C/Cl", "'quoted'", "yes", "1e3"]:
        doc = yaml.safe_load(ligand_yaml(sequence=TARGET, smiles=smiles, msa=None))
        assert doc["sequences"][1]["ligand"]["smiles"] == smiles


def test_write_inputs_writes_one_yaml_per_job_named_after_it(tmp_path: Path) -> None:
    jobs = [JobInput("j-1", "one", "CCO"), JobInput("j-2", "two", "CCN")]
    by_name = write_inputs(tmp_path / "in", sequence=TARGET, jobs=jobs, msa=EMPTY_MSA)
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == sorted(f"{n}.yaml" for n in by_name)
    for name, job in by_name.items():
        assert name == safe_name(job.job_id)
        doc = yaml.safe_load((tmp_path / "in" / f"{name}.yaml").read_text())
        assert doc["sequences"][1]["ligand"]["smiles"] == job.smiles


def test_argv_carries_every_batch_parameter() -> None:
    given = params(
        recycling_steps=5,
        sampling_steps=150,
        diffusion_samples=3,
        sampling_steps_affinity=120,
        diffusion_samples_affinity=4,
        seed=7,
        use_potentials=True,
        affinity_mw_correction=True,
    )
    argv = build_argv(["boltz"], Path("/w/in"), out_dir=Path("/w/out"), params=given, use_msa_server=False)
    assert argv[:3] == ["boltz", "predict", "/w/in"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert pairs["--out_dir"] == "/w/out"
    assert argv[argv.index("--output_format") + 1] == "mmcif"
    expected = {"recycling_steps": 5, "sampling_steps": 150, "diffusion_samples": 3}
    expected |= {"sampling_steps_affinity": 120, "diffusion_samples_affinity": 4, "seed": 7}
    for flag, value in expected.items():
        assert argv[argv.index(f"--{flag}") + 1] == str(value)
    for switch in ("--use_potentials", "--affinity_mw_correction", "--override"):
        assert switch in argv
    assert "--use_msa_server" not in argv


def test_every_int_flag_is_a_boltz2_parameter() -> None:
    assert set(INT_FLAGS) <= set(BOLTZ2.params)


def test_argv_switches_follow_the_caller() -> None:
    off = params(use_potentials=False, affinity_mw_correction=False)
    argv = build_argv(
        ["python", "fake.py"],
        Path("in"),
        out_dir=Path("out"),
        params=off,
        use_msa_server=True,
        cache_dir=Path("/weights"),
        override=False,
    )
    assert argv[:3] == ["python", "fake.py", "predict"]
    assert "--use_msa_server" in argv
    assert argv[argv.index("--cache") + 1] == "/weights"
    for switch in ("--use_potentials", "--affinity_mw_correction", "--override"):
        assert switch not in argv


def test_msa_cache_key_is_per_sequence_and_settings() -> None:
    key = msa_cache_key(TARGET)
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert msa_cache_key(f"  {TARGET.lower()}\n") == key
    assert msa_cache_key(TARGET[:-1]) != key
    assert msa_cache_key(TARGET, {**MSA_SETTINGS, "pairing": "complete"}) != key


def test_a3m_query_strips_gaps_and_insertions() -> None:
    a3m = f">101\n{TARGET[:20]}\n{TARGET[20:]}\n>hit\n--{TARGET[2:10].lower()}xx\n"
    assert a3m_query(a3m) == TARGET
    assert a3m_query(">q\nAC-DEfgH\n") == "ACDEH"


@pytest.mark.parametrize(
    "text,problem",
    [
        (f">query\n{TARGET}\n>hit\n{TARGET}\n", ""),
        (f"{TARGET}\n", "not in A3M format"),
        ("", "not in A3M format"),
        (f">query\n{TARGET[:-3]}\n", "not the target sequence"),
    ],
)
def test_a_supplied_a3m_must_start_with_the_target(text: str, problem: str) -> None:
    found = a3m_problem(text, TARGET)
    assert (problem in found) if problem else found == ""


def test_the_msa_parameter_is_capped_without_echoing_it() -> None:
    assert BOLTZ2.clean_params({"msa": "x" * MAX_MSA_CHARS})["msa"]
    with pytest.raises(InvalidInput) as caught:
        BOLTZ2.clean_params({"msa": "x" * (MAX_MSA_CHARS + 1)})
    assert "longer than" in caught.value.message
    assert caught.value.details == {"msa": f"{MAX_MSA_CHARS + 1} characters"}
