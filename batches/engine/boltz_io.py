"""Boltz-2 inputs: one YAML per ligand, the `boltz predict` argv, the MSA cache key.

Plain Python (PyYAML only; Boltz itself depends on it): the Modal container imports this
module without Django. Formats follow Boltz 2.2.1's documented YAML schema (docs/prediction.md in
jwohlwend/boltz) and its CLI (`boltz predict --help`); behaviours visible only in its source are
cited where they matter.
"""

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from batches.engine.types import JobInput

PROTEIN_CHAIN = "A"
LIGAND_CHAIN = "B"
# `msa: empty` runs the protein single-sequence: Boltz's documented way to skip the MSA.
EMPTY_MSA = "empty"
# Boltz's defaults for --msa_server_url and --msa_pairing_strategy; part of the cache key
# because a different server or pairing gives a different alignment.
MSA_SETTINGS: Mapping[str, str] = {
    "server": "https://api.colabfold.com",
    "pairing": "greedy",
    # Boltz writes the server's alignment as `<record>_<entity>.csv` (key,sequence rows)
    # after filtering and capping it (boltz/main.py compute_msa), so the format is part of the key.
    "format": "boltz-compute_msa-csv",
}
# Batch parameters passed to `boltz predict` as `--<name> <int>`, same names as the CLI's.
INT_FLAGS = (
    "recycling_steps",
    "sampling_steps",
    "diffusion_samples",
    "sampling_steps_affinity",
    "diffusion_samples_affinity",
    "seed",
)


def safe_name(job_id: str) -> str:
    """The YAML stem for one job. Boltz names every output after the input's stem
    (boltz/data/parse/yaml.py: `name = path.stem`), so the stem must be a valid file name,
    contain no dot (Path.stem cuts at the last one) and be unique in the chunk: the digest
    keeps two ids that clean to the same text apart."""
    cleaned = re.sub(r"[^a-z0-9_-]", "_", job_id.lower())[:40]
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:10]
    return f"job_{cleaned}_{digest}"


def msa_cache_key(sequence: str, settings: Mapping[str, Any] = MSA_SETTINGS) -> str:
    """Content address of a target's MSA: the same sequence with the same MSA settings
    always gives the same alignment, whoever asks."""
    blob = json.dumps({"sequence": sequence.strip().upper(), "settings": dict(settings)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def ligand_yaml(*, sequence: str, smiles: str, msa: str | None) -> str:
    """One complex: the target as chain A, the ligand as chain B, affinity for B.
    `msa=None` leaves the field out, which makes Boltz fetch one (with --use_msa_server)."""
    protein: dict[str, str] = {"id": PROTEIN_CHAIN, "sequence": sequence}
    if msa is not None:
        protein["msa"] = msa
    document = {
        "version": 1,
        "sequences": [{"protein": protein}, {"ligand": {"id": LIGAND_CHAIN, "smiles": smiles}}],
        "properties": [{"affinity": {"binder": LIGAND_CHAIN}}],
    }
    return yaml.safe_dump(document, sort_keys=False)


def write_inputs(input_dir: Path, *, sequence: str, jobs: Sequence[JobInput], msa: str | None) -> dict[str, JobInput]:
    """Write one YAML per job; return the jobs by YAML stem.

    The directory must hold nothing else: Boltz refuses an input directory containing any
    file that is not .yaml/.fasta (boltz/main.py check_inputs), so MSA files live elsewhere."""
    input_dir.mkdir(parents=True, exist_ok=True)
    by_name: dict[str, JobInput] = {}
    for job in jobs:
        name = safe_name(job.job_id)
        (input_dir / f"{name}.yaml").write_text(ligand_yaml(sequence=sequence, smiles=job.smiles, msa=msa))
        by_name[name] = job
    return by_name


def build_argv(
    boltz_cmd: Sequence[str],
    input_dir: Path,
    *,
    out_dir: Path,
    params: Mapping[str, Any],
    use_msa_server: bool,
    cache_dir: Path | None = None,
    override: bool = True,
) -> list[str]:
    """`boltz predict` over a directory of YAMLs with the batch's parameters.

    `use_msa_server` is the caller's decision, not `params["use_msa"]`: the server is asked
    only when no MSA file is given, once per target (see boltz_runner)."""
    argv = [*boltz_cmd, "predict", str(input_dir), "--out_dir", str(out_dir), "--output_format", "mmcif"]
    for flag in INT_FLAGS:
        argv += [f"--{flag}", str(int(params[flag]))]
    switches = {
        "--use_msa_server": use_msa_server,
        "--use_potentials": bool(params.get("use_potentials", False)),
        "--affinity_mw_correction": bool(params.get("affinity_mw_correction", False)),
        "--override": override,
    }
    argv += [flag for flag, on in switches.items() if on]
    if cache_dir is not None:
        argv += ["--cache", str(cache_dir)]
    return argv


def a3m_query(text: str) -> str:
    """The query (first) sequence of an A3M, as residues: gaps and lowercase insertions removed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith(">"):
        return ""
    residues: list[str] = []
    for line in lines[1:]:
        if line.startswith(">"):
            break
        residues.append(line)
    return re.sub(r"[-a-z.]", "", "".join(residues))


def a3m_problem(text: str, sequence: str) -> str:
    """Why a supplied A3M cannot be used for `sequence`, or "" when it can. Boltz aligns the MSA
    to the chain by position, so a query that is not the target gives silently wrong features."""
    query = a3m_query(text)
    if not query:
        return "the supplied MSA is not in A3M format (it must start with a '>' header line)"
    if query != sequence.strip().upper():
        return "the supplied MSA's first sequence is not the target sequence"
    return ""
