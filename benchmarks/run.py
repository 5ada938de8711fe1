"""Submission benchmarks: `make bench`. Prints ligands/s for validation and for
validate+store; compare numbers from one run, not across machines."""

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omtx_hub.settings")
os.environ.setdefault("OMTX_VAR_DIR", tempfile.mkdtemp(prefix="omtx-bench-"))

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

from batches.catalog import LIGAND_PROFILE  # noqa: E402
from batches.services.submission import Submission, batch_create  # noqa: E402
from batches.validation.files import RawLigand, read_ligand_file  # noqa: E402
from batches.validation.ligands import validate_ligands  # noqa: E402

SHARED = Path(os.environ.get("OMTX_SHARED_DATA", REPO.parent / "shared" / "data"))
CDK2_FASTA = (REPO / "batches" / "demo" / "cdk2_human.fasta").read_text()


def timed(label: str, count: int, fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    seconds = time.perf_counter() - start
    print(f"{label:<48} {count:>7} ligands  {seconds:7.3f} s  {count / seconds:9.0f} ligands/s")
    return seconds


def compare_standardization(label: str, ligands: list[RawLigand]) -> None:
    plain = timed(
        f"validate {label}, standardize=false",
        len(ligands),
        lambda: validate_ligands(ligands, LIGAND_PROFILE.limits, standardize=False),
    )
    standardized = timed(
        f"validate {label}, standardize=true",
        len(ligands),
        lambda: validate_ligands(ligands, LIGAND_PROFILE.limits, standardize=True),
    )
    print(f"standardization costs {standardized / plain - 1:+.0%} of validation time ({label}, same run)")


def main() -> None:
    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench")
    ligands = list(read_ligand_file((SHARED / "ligands" / "chembl2321810.smi").read_bytes(), "chembl.smi"))
    ten_k = ligands * 10
    compare_standardization("ChEMBL as given", ten_k)
    # The same molecules as vendors ship them: each a salt, a third each HCl, TFA, sodium.
    counter_ions = (".Cl", ".OC(=O)C(F)(F)F", ".[Na+]")
    salts = [RawLigand(r.name, f"{r.smiles}{counter_ions[i % 3]}") for i, r in enumerate(ten_k)]
    compare_standardization("ChEMBL as salts", salts)
    submission = Submission(name="bench", model="ligand-profile", protein_sequence=CDK2_FASTA, ligands=ligands)
    timed(
        "validate + store batch and jobs (SQLite)",
        len(ligands),
        lambda: batch_create(owner=user, submission=submission),
    )


if __name__ == "__main__":
    main()
