"""Standardization: what is ranked is the molecule the scientist meant.

Salts and solvates are reduced to their parent; inputs that are not a ligand
are refused with a reason; look-alike characters never become another
molecule; the report accounts for every submitted item.
"""

from collections.abc import Callable
from typing import Any

import pytest
from rdkit import Chem
from rest_framework.test import APIClient

from batches.models import Batch, Job
from batches.registry import Limits
from batches.validation.ligands import raw_from_json, validate_ligands
from batches.validation.smiles import LigandOk, LigandRejected, validate_smiles
from conftest import CDK2

LIMITS = Limits()


def canonical(smiles: str) -> str:
    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles))


def accepted(smiles: str, *, standardize: bool = True) -> LigandOk:
    result = validate_smiles(0, "x", smiles, LIMITS, standardize=standardize)
    assert isinstance(result, LigandOk), result
    return result


def rejected(smiles: str, *, standardize: bool = True) -> LigandRejected:
    result = validate_smiles(0, "x", smiles, LIMITS, standardize=standardize)
    assert isinstance(result, LigandRejected), result
    return result


# (salt as vendors and ChEMBL ship it, expected parent, removed counter-ion)
SALTS = [
    ("nicotine HCl", "CN1CCC[C@H]1c1cccnc1.Cl", "CN1CCC[C@H]1c1cccnc1", "Cl"),
    ("amine hydrochloride, ionic", "C[NH3+].[Cl-]", "CN", "[Cl-]"),
    ("ibuprofen TFA", "OC(=O)C(F)(F)F.CC(C)Cc1ccc(cc1)C(C)C(=O)O", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "O=C(O)C(F)(F)F"),
    ("sodium aspirin", "CC(=O)Oc1ccccc1C(=O)[O-].[Na+]", "CC(=O)Oc1ccccc1C(=O)O", "[Na+]"),
    (
        "imatinib mesylate",
        "CS(=O)(=O)O.Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
        "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
        "CS(=O)(=O)O",
    ),
    # The counter-ion is larger than the drug: the salt list, not size, decides.
    ("amphetamine tosylate", "Cc1ccc(S(=O)(=O)[O-])cc1.C[C@H]([NH3+])Cc1ccccc1", "C[C@H](N)Cc1ccccc1", None),
    ("methylamine TFA", "CN.OC(=O)C(F)(F)F", "CN", "O=C(O)C(F)(F)F"),
    ("calcium acetate 1:2", "[Ca+2].CC(=O)[O-].CC(=O)[O-]", "CC(=O)O", "[Ca+2]"),
    ("hydrate", "O.O.CC(=O)Nc1ccc(O)cc1", "CC(=O)Nc1ccc(O)cc1", "O"),
]


@pytest.mark.parametrize(("label", "salt", "expected", "counter_ion"), SALTS, ids=[s[0] for s in SALTS])
def test_salts_are_reduced_to_their_parent(label: str, salt: str, expected: str, counter_ion: str | None) -> None:
    ok = accepted(salt)
    assert ok.canonical_smiles == canonical(expected)
    assert ok.smiles == salt  # the submitted form is kept
    assert ok.standardization["removed_fragments"]
    if counter_ion is not None:
        assert counter_ion in ok.standardization["removed_fragments"]
    assert ok.inchikey == Chem.MolToInchiKey(Chem.MolFromSmiles(expected))


def test_parent_does_not_depend_on_fragment_order() -> None:
    assert accepted("Cl.CCN").canonical_smiles == accepted("CCN.Cl").canonical_smiles == "CCN"


def test_neutralization_is_recorded() -> None:
    ok = accepted("CC(=O)Oc1ccccc1C(=O)[O-].[Na+]")
    assert any("neutralized" in change for change in ok.standardization["changes"])


@pytest.mark.parametrize(
    "zwitterion",
    ["C[N+](C)(C)CC(=O)[O-]", "[NH3+]CC(=O)[O-]", "C[N+](C)(C)CCCC(=O)[O-]", "[O-][n+]1ccccc1"],
)
def test_zwitterions_and_n_oxides_are_kept_as_given(zwitterion: str) -> None:
    ok = accepted(zwitterion)
    assert ok.canonical_smiles == canonical(zwitterion)
    assert ok.standardization == {}


def test_a_permanent_charge_is_kept_and_said() -> None:
    ok = accepted("C[N+](C)(C)Cc1ccccc1.[Br-]")
    assert ok.canonical_smiles == canonical("C[N+](C)(C)Cc1ccccc1")
    assert any("kept" in change for change in ok.standardization["changes"])


@pytest.mark.parametrize(
    ("inorganic", "code"),
    [
        ("[Na+].[Cl-]", "no_organic_fragment"),
        ("O", "no_organic_fragment"),
        ("N.N.Cl[Pt]Cl", "no_organic_fragment"),  # cisplatin: no carbon at all
        ("CC(=O)O[Zn]OC(C)=O", "metal_complex"),  # metal bonded to the ligand
        ("[Fe+2].c1cc[cH-]c1.c1cc[cH-]c1", "metal_complex"),  # ferrocene drawn as ions
        ("CC(=O)[O-].[Cu+2].CC(=O)[O-]", "metal_complex"),  # no salt has Cu as cation
    ],
)
def test_inputs_that_are_not_ligands_are_refused_with_a_reason(inorganic: str, code: str) -> None:
    result = rejected(inorganic)
    assert result.code == code
    assert result.message


def test_standardize_off_keeps_the_input_and_flags_it() -> None:
    ok = accepted("CN1CCC[C@H]1c1cccnc1.Cl", standardize=False)
    assert ok.canonical_smiles == canonical("CN1CCC[C@H]1c1cccnc1.Cl")
    assert ok.standardization == {"flags": ["multi_fragment"]}
    assert accepted("CC(=O)O[Zn]OC(C)=O", standardize=False).standardization["flags"] == ["metal"]
    # Nothing organic is never a ligand, whatever the policy.
    assert rejected("[Na+].[Cl-]", standardize=False).code == "no_organic_fragment"


def test_a_salt_and_its_free_base_are_one_molecule() -> None:
    report = validate_ligands(raw_from_json(["CCN", "CCN.Cl", "CC[NH3+].[Cl-]"]), LIMITS)
    assert [ok.index for ok in report.accepted] == [0]
    assert {r.code for r in report.rejected} == {"duplicate"}
    assert all("same parent molecule as ligand 1" in r.message for r in report.rejected)
    assert report.summary()["standardization"] == {
        "standardize": True,
        "changed": 0,
        "fragments_removed": 0,
        "flagged": 0,
    }


def test_atom_limits_count_the_parent_not_the_counter_ion() -> None:
    tight = Limits(max_heavy_atoms=10, max_total_atoms=40)
    # Nicotine has 12 heavy atoms; ethylamine 3, its tosylate 11 more.
    result = validate_smiles(0, "x", "CCN.Cc1ccc(S(=O)(=O)O)cc1", tight)
    assert isinstance(result, LigandOk)
    assert result.heavy_atoms == 3


LOOK_ALIKES = [
    "\u0421",  # CYRILLIC CAPITAL LETTER ES, looks like C
    "\u0441",  # cyrillic small es
    "\u039f",  # GREEK CAPITAL LETTER OMICRON, looks like O
    "\uff23",  # FULLWIDTH LATIN CAPITAL LETTER C
    "\u200b",  # ZERO WIDTH SPACE
    "\u00a0",  # NO-BREAK SPACE (isspace, but say which character)
    "\u00ad",  # SOFT HYPHEN
    "\ufeff",  # BYTE ORDER MARK
    "\u2212",  # MINUS SIGN, looks like -
    "\u2013",  # EN DASH
    "\u00b7",  # MIDDLE DOT, looks like .
    ">",
    "~",
    "!",
    "'",
    '"',
    ";",
    "&",
    "{",
    "|",
]


@pytest.mark.parametrize("char", LOOK_ALIKES, ids=[f"U+{ord(c):04X}" for c in LOOK_ALIKES])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_characters_outside_smiles_are_refused_with_their_position(char: str, where: str) -> None:
    base = "CC(=O)O"
    smiles = {"start": char + base, "middle": base[:2] + char + base[2:], "end": base + char}[where]
    position = {"start": 1, "middle": 3, "end": len(base) + 1}[where]
    result = rejected(smiles)
    assert result.code == "invalid_smiles"
    assert f"U+{ord(char):04X}" in result.message
    assert f"position {position}" in result.message


def test_the_reported_cyrillic_case() -> None:
    result = rejected("\u0421C(=O)O")
    assert "CYRILLIC CAPITAL LETTER ES" in result.message
    assert "position 1" in result.message


@pytest.mark.parametrize(
    "smiles", ["C[C@@H](N)C(=O)O", "C/C=C/C", "F/C=C\\F", "[13CH4]", "C1CC%10CCC%10C1", "c1cc[nH]c1", "CC#N", "C=O"]
)
def test_the_smiles_alphabet_is_accepted(smiles: str) -> None:
    assert accepted(smiles).canonical_smiles == canonical(smiles)


def _validate(client: APIClient, ligands: list[Any], **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v3/batches/validate",
        {"protein_sequence": CDK2, "ligands": ligands, **extra},
        format="json",
    )
    assert response.status_code in (200, 400), response.content
    body: dict[str, Any] = response.json()
    return body if response.status_code == 200 else body["error"]["details"]


@pytest.mark.django_db
@pytest.mark.parametrize("on_invalid", ["skip", "reject"])
def test_every_item_is_accounted_for(owner_client: APIClient, bad_inputs: dict[str, Any], on_invalid: str) -> None:
    items: list[Any] = [smiles for smiles, _ in bad_inputs["smiles"]]
    items += ["CCO", "\u0421C(=O)O", "[Na+].[Cl-]", "CCO.Cl", 42, None, {"smiles": "CCN"}, {"name": "n"}]
    report = _validate(owner_client, items, on_invalid=on_invalid)
    assert report["accepted"] + report["rejected"] == report["submitted"] == len(items)
    indexes = sorted(
        [r["index"] for r in report["rejected_ligands"]] + [a["index"] for a in report.get("accepted_ligands", [])]
    )
    if on_invalid == "skip":
        assert indexes == list(range(len(items)))


@pytest.mark.django_db
def test_each_bad_smiles_alone_is_accounted_for(owner_client: APIClient, bad_inputs: dict[str, Any]) -> None:
    for smiles, why in bad_inputs["smiles"]:
        report = _validate(owner_client, [smiles, "CCO"])
        assert report["accepted"] + report["rejected"] == report["submitted"] == 2, why
        assert [r["index"] for r in report["rejected_ligands"]] == [0], why


@pytest.mark.django_db
def test_a_salt_is_profiled_as_its_parent(
    make_batch: Callable[..., Batch], run_all: Callable[[], None], owner_client: APIClient
) -> None:
    batch = make_batch([{"name": "ibuprofen TFA", "smiles": "CC(C)Cc1ccc(cc1)C(C)C(=O)O.OC(=O)C(F)(F)F"}])
    run_all()
    job = Job.objects.get(batch=batch)
    assert job.status == "succeeded"
    assert job.mol_weight == pytest.approx(206.28, abs=0.01)  # ibuprofen, not ibuprofen + 114 Da of TFA
    detail = owner_client.get(f"/api/v3/batches/{batch.pk}/jobs/{job.pk}").json()
    assert detail["smiles"] == "CC(C)Cc1ccc(cc1)C(C)C(=O)O.OC(=O)C(F)(F)F"
    assert detail["canonical_smiles"] == canonical("CC(C)Cc1ccc(cc1)C(C)C(=O)O")
    assert detail["standardization"]["removed_fragments"] == ["O=C(O)C(F)(F)F"]
    csv_text = b"".join(owner_client.get(f"/api/v3/batches/{batch.pk}/export?format=csv").streaming_content).decode()
    header, row = csv_text.splitlines()[:2]
    assert "removed_fragments" in header.split(",")
    assert "O=C(O)C(F)(F)F" in row


@pytest.mark.django_db
def test_the_policy_is_a_submission_option_shown_in_the_report(owner_client: APIClient) -> None:
    body = {"protein_sequence": CDK2, "ligands": ["CCN.Cl", "CCO"], "standardize": False}
    report = owner_client.post("/api/v3/batches/validate", body, format="json").json()
    assert report["standardization"]["standardize"] is False
    assert report["standardization"]["flagged"] == 1
    created = owner_client.post("/api/v3/batches/", body, format="json").json()
    assert created["policy"]["standardize"] is False
    assert created["manifest"]["standardize"] is False
    assert created["validation"]["standardization"]["flagged"] == 1


# --- found by an adversarial review with real-world inputs -------------------------------

TESTOSTERONE = "C[C@]12CC[C@H]3[C@@H](CCC4=CC(=O)CC[C@@]43C)[C@@H]1CC[C@@H]2O"
HYDROXYZINE = "OCCOCCN1CCN(C(c2ccccc2)c2ccc(Cl)cc2)CC1"
PAMOIC_ACID = "O=C(O)c1cc2ccccc2c(Cc2c(O)c(C(=O)O)cc3ccccc23)c1O"
PYRANTEL = "CN1CCCN=C1/C=C/c1cccs1"


def test_written_out_hydrogens_are_one_molecule_and_count_as_atoms() -> None:
    explicit = Chem.MolToSmiles(Chem.AddHs(Chem.MolFromSmiles(TESTOSTERONE)))
    assert "[H]" in explicit
    assert accepted(explicit).canonical_smiles == accepted(TESTOSTERONE).canonical_smiles
    report = validate_ligands(raw_from_json([TESTOSTERONE, explicit]), LIMITS)
    assert [r.code for r in report.rejected] == ["duplicate"]
    assert accepted("[2H]C([2H])([2H])[2H]").total_atoms == 5  # deuterium atoms are atoms
    big = Chem.MolToSmiles(Chem.AddHs(Chem.MolFromSmiles("C" * 60)))  # 182 atoms written out
    assert rejected(big).code == "too_many_atoms"


@pytest.mark.parametrize(
    ("zwitterion", "neutral"),
    [
        ("[NH3+]CC1(CC(=O)[O-])CCCCC1", "NCC1(CC(=O)O)CCCCC1"),  # gabapentin
        ("[NH3+]CC(=O)[O-]", "NCC(=O)O"),  # glycine, as ZINC and PubChem write it
    ],
)
def test_a_zwitterion_and_its_neutral_form_are_one_ligand(zwitterion: str, neutral: str) -> None:
    report = validate_ligands(raw_from_json([zwitterion, neutral]), LIMITS)
    assert [r.code for r in report.rejected] == ["duplicate"]
    # Given as is, they are two drawings, and both run.
    assert not validate_ligands(raw_from_json([zwitterion, neutral]), LIMITS, standardize=False).rejected


@pytest.mark.parametrize(
    ("covalent", "expected"),
    [
        ("CC(=O)Oc1ccccc1C(=O)O[Na]", "CC(=O)Oc1ccccc1C(=O)O"),
        ("[K]OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl", "O=C(O)Cc1ccccc1Nc1c(Cl)cccc1Cl"),
        ("CC(=O)O[Mg]OC(C)=O", "CC(=O)O"),
    ],
)
def test_salts_drawn_covalently_are_salts(covalent: str, expected: str) -> None:
    ok = accepted(covalent)
    assert ok.canonical_smiles == canonical(expected)
    assert any("disconnected" in change for change in ok.standardization["changes"])


def test_counter_ions_larger_than_the_drug_are_still_counter_ions() -> None:
    ok = accepted(f"{HYDROXYZINE}.{PAMOIC_ACID}")
    assert ok.canonical_smiles == canonical(HYDROXYZINE)
    # Two different drugs sold as pamoates are two ligands, not duplicates of pamoic acid.
    report = validate_ligands(raw_from_json([f"{PYRANTEL}.{PAMOIC_ACID}", f"{HYDROXYZINE}.{PAMOIC_ACID}"]), LIMITS)
    assert not report.rejected


def test_counter_ions_match_whatever_their_stereo() -> None:
    gluconate = "OC[C@@H](O)[C@@H](O)[C@H](O)[C@@H](O)C(=O)[O-]"
    assert accepted(f"CCN.{gluconate}").canonical_smiles == "CCN"


def test_a_co_formulation_keeps_the_larger_drug_and_says_so() -> None:
    ok = accepted(f"{HYDROXYZINE}.{PYRANTEL}")
    assert ok.canonical_smiles == canonical(HYDROXYZINE)
    assert ok.standardization["flags"] == ["multiple_components"]
    assert ok.standardization["removed_fragments"] == [canonical(PYRANTEL)]


@pytest.mark.parametrize(
    "inorganic", ["[Na+].OC([O-])=O", "[K+].[C-]#N", "O=C=O", "[K+].[S-]C#N", "[Ca+2].[O-]C([O-])=O"]
)
@pytest.mark.parametrize("standardize", [True, False])
def test_carbon_is_not_enough_to_be_organic(inorganic: str, standardize: bool) -> None:
    assert rejected(inorganic, standardize=standardize).code == "no_organic_fragment"


@pytest.mark.parametrize(
    ("mixture", "expected"),
    [("c1ccncc1.O=S(=O)=O", "c1ccncc1"), ("CC(=O)[O-].[H+]", "CC(=O)O"), ("OC(=O)c1ccccc1O.N(=O)O", "OC(=O)c1ccccc1O")],
)
def test_an_organic_beats_an_unlisted_inorganic(mixture: str, expected: str) -> None:
    assert accepted(mixture).canonical_smiles == canonical(expected)


@pytest.mark.parametrize("fragment", ["*c1ccccc1", "[1*]c1ccccc1", "[CH2]c1ccccc1", "C[N]C"])
def test_attachment_points_and_radicals_are_not_molecules(fragment: str) -> None:
    assert rejected(fragment).code == "incomplete_molecule"


def test_atom_maps_are_annotations() -> None:
    mapped = accepted("[CH3:1][C:2](=O)[OH:3]")
    assert mapped.canonical_smiles == "CC(=O)O"
