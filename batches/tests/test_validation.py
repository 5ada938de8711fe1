from pathlib import Path
from typing import Any

import pytest

from batches.catalog import BOLTZ2, LIGAND_PROFILE
from batches.registry import Limits
from batches.validation.files import read_ligand_file
from batches.validation.ligands import raw_from_json, validate_ligands
from batches.validation.protein import parse_protein
from batches.validation.smiles import LigandOk, LigandRejected, validate_smiles
from omtx_hub.errors import InvalidInput

LIMITS = Limits()


@pytest.mark.parametrize("limits", [LIGAND_PROFILE.limits, BOLTZ2.limits], ids=["ligand-profile", "boltz2"])
def test_every_bad_smiles_is_rejected_with_a_reason(bad_inputs: dict[str, Any], limits: Limits) -> None:
    for index, (smiles, why) in enumerate(bad_inputs["smiles"]):
        result = validate_smiles(index, f"bad_{index}", smiles, limits)
        assert isinstance(result, LigandRejected), f"accepted {smiles!r} ({why})"
        assert result.message and result.code
        assert result.name == f"bad_{index}"
        assert "\x00" not in result.smiles  # safe to store in PostgreSQL text


def test_rejection_messages_name_the_problem() -> None:
    def message(smiles: str) -> str:
        result = validate_smiles(0, "x", smiles, LIMITS)
        assert isinstance(result, LigandRejected)
        return result.message

    assert "unclosed ring" in message("C1CCC")
    assert "kekulize" in message("c1cccc1")
    assert "valence" in message("CC(C)(C)(C)C").lower()
    assert "parenthes" in message("CC(=O")
    assert "parenthes" in message("CC)O")
    assert "empty" in message("   ")
    assert "whitespace" in message("CCO CCN")
    assert "U+0000" in message("CCO\x00")
    assert "128" in message("C" * 130)


def test_length_is_capped_before_parsing() -> None:
    result = validate_smiles(0, "x", "C" * 5000, LIMITS)
    assert isinstance(result, LigandRejected)
    assert result.code == "too_long"


def test_valid_smiles_is_canonicalised_with_inchikey() -> None:
    result = validate_smiles(0, "L-alanine", " N[C@@H](C)C(=O)O ", LIMITS)
    assert isinstance(result, LigandOk)
    assert result.canonical_smiles == "C[C@H](N)C(=O)O"
    assert result.inchikey == "QNAYBMKLOCPYGJ-REOHCLBHSA-N"
    assert result.heavy_atoms == 6
    assert result.total_atoms == 13


def test_atom_limit_counts_hydrogens() -> None:
    limits = Limits(max_total_atoms=20, max_heavy_atoms=20)
    result = validate_smiles(0, "hexane", "CCCCCC", limits)  # 6 heavy + 14 H
    assert isinstance(result, LigandOk)
    result = validate_smiles(0, "heptane", "CCCCCCC", limits)  # 7 heavy + 16 H
    assert isinstance(result, LigandRejected)
    assert "hydrogens" in result.message


@pytest.mark.parametrize("index,expected", [(0, "ligand_1"), (41, "ligand_42")])
def test_missing_names_default_to_position(index: int, expected: str) -> None:
    raws = raw_from_json([{"smiles": "C" * (i + 1)} for i in range(index + 1)])
    report = validate_ligands(raws, LIMITS)
    assert report.accepted[index].name == expected
    assert all(ok.name != "None" for ok in report.accepted)


def test_none_name_never_becomes_the_string_none() -> None:
    report = validate_ligands(raw_from_json([{"name": None, "smiles": "CCO"}]), LIMITS)
    assert report.accepted[0].name == "ligand_1"


def test_duplicates_are_detected_on_canonical_smiles() -> None:
    raws = raw_from_json([{"name": "a", "smiles": "OCC"}, {"name": "b", "smiles": "CCO"}, "C(O)C"])
    report = validate_ligands(raws, LIMITS)
    assert [ok.name for ok in report.accepted] == ["a"]
    assert [r.code for r in report.rejected] == ["duplicate", "duplicate"]
    assert "ligand 1 (a)" in report.rejected[0].message


def test_non_object_items_are_rejected_alone() -> None:
    report = validate_ligands(raw_from_json(["CCO", 42, {"smiles": "c1ccccc1"}]), LIMITS)
    assert len(report.accepted) == 2
    assert report.rejected[0].index == 1
    assert report.rejected[0].code == "invalid_item"


def test_bad_names_are_rejected() -> None:
    report = validate_ligands(raw_from_json([{"name": "a\x00b", "smiles": "CCO"}]), LIMITS)
    assert report.rejected[0].code == "invalid_name"


def test_every_bad_protein_is_rejected_or_cleaned_deliberately(bad_inputs: dict[str, Any]) -> None:
    for sequence, why in bad_inputs["protein_sequences"]:
        if sequence.startswith(">") or " " in sequence:
            # Handled, not rejected: FASTA is parsed and whitespace always stripped.
            cleaned = parse_protein(sequence, LIMITS).sequence
            assert cleaned.isalpha() and cleaned.isupper(), why
            assert "CDK2" not in cleaned and "P24941" not in cleaned
            continue
        with pytest.raises(InvalidInput) as info:
            parse_protein(sequence, LIMITS)
        assert info.value.message, why
        assert info.value.code == "invalid_protein"


def test_fasta_header_is_parsed_never_kept_as_residues() -> None:
    protein = parse_protein(">sp|P24941|CDK2_HUMAN\nMENFQKVEKIGEGTYGVVYKARNK", LIMITS)
    assert protein.sequence == "MENFQKVEKIGEGTYGVVYKARNK"
    assert protein.header == "sp|P24941|CDK2_HUMAN"


def test_whitespace_is_stripped_consistently() -> None:
    assert parse_protein("mktayiakqr qisfvkshf\n", LIMITS).sequence == "MKTAYIAKQRQISFVKSHF"


@pytest.mark.parametrize(
    "sequence,fragment",
    [
        ("", "empty"),
        ("MKT", "minimum"),
        ("MKTAYIAKQRQISFVKSHFSRQ1234", "'1' at position 23"),
        ("ACGUACGUACGUACGUACGU", "nucleic acid"),
        (">a\nMKTAYIAKQR\n>b\nMKTAYIAKQR", "more than one record"),
        (12, "must be a string"),
    ],
)
def test_protein_messages(sequence: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_protein(sequence, LIMITS)
    assert fragment in info.value.message


def _read(shared_data: Path, name: str) -> list[Any]:
    path = shared_data / "ligands" / name
    return read_ligand_file(path.read_bytes(), name)


def test_smi_with_smiles_first(shared_data: Path) -> None:
    ligands = _read(shared_data, "chembl2321810.smi")
    assert len(ligands) == 1017
    assert ligands[0].name == "1520012"
    assert ligands[0].smiles.startswith("O=S(=O)(Nc1cccs1)")


def test_smi_with_name_first(shared_data: Path) -> None:
    ligands = _read(shared_data, "cdk2_zinc.smi")
    assert len(ligands) == 47
    assert ligands[0].name == "ZINC03814457"
    assert ligands[0].smiles == "CC(C)C(=O)COc1nc(N)nc2[nH]cnc12"


def test_tsv_with_header(shared_data: Path) -> None:
    ligands = _read(shared_data, "zinc100.tsv")
    assert len(ligands) == 100
    assert ligands[0].name == "ZINC21984717"
    assert ligands[0].smiles.startswith("Cc1c(C(=O)NCCO)")


def test_sdf(shared_data: Path) -> None:
    ligands = _read(shared_data, "cmet_ligands.sdf")
    assert len(ligands) == 24
    assert all(lig.smiles for lig in ligands)
    report = validate_ligands(list(ligands), LIMITS)
    assert len(report.accepted) + len(report.rejected) == 24


def test_csv_without_header_finds_the_smiles_column() -> None:
    ligands = read_ligand_file(b"aspirin,CC(=O)Oc1ccccc1C(=O)O\nethanol,CCO\n", "x.csv")
    assert [(lig.name, lig.smiles) for lig in ligands] == [
        ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
        ("ethanol", "CCO"),
    ]


def test_csv_with_header_and_other_columns() -> None:
    data = b"id,SMILES,activity\nA1,CCO,5.1\nA2,CCN,6.2\n"
    ligands = read_ligand_file(data, "x.csv")
    assert [(lig.name, lig.smiles) for lig in ligands] == [("A1", "CCO"), ("A2", "CCN")]


def test_unreadable_sdf_record_is_reported_not_dropped() -> None:
    block = "bad\n  RDKit\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n    0.0 0.0 0.0 Q   0  0\nM  END\n$$$$\n"
    good = (
        "ethanol\n  RDKit\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\n"
        + "".join(
            f"    {i}.0000    0.0000    0.0000 {el}   0  0  0  0  0  0  0  0  0  0  0  0\n"
            for i, el in enumerate("CCO")
        )
        + "  1  2  1  0\n  2  3  1  0\nM  END\n$$$$\n"
    )
    ligands = read_ligand_file((block + good).encode(), "x.sdf")
    assert len(ligands) == 2
    assert ligands[0].error and ligands[1].smiles == "CCO"
    report = validate_ligands(list(ligands), LIMITS)
    assert report.rejected[0].code == "unreadable_record"


@pytest.mark.parametrize(
    "data,name,code",
    [
        (b"CCO\n", "ligands.xlsx", "unknown_format"),
        (b"\xff\xfe\x00", "x.smi", "invalid_file"),
        (b"\n#c\n", "x.smi", "empty_file"),
    ],
)
def test_file_errors(data: bytes, name: str, code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        read_ligand_file(data, name)
    assert info.value.code == code
