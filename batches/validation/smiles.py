"""Per-ligand validation with RDKit, before anything is stored."""

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from rdkit import Chem
from rdkit.Chem import rdMolDescriptors

from batches.registry import Limits
from batches.validation.rdkit_log import rdkit_messages
from batches.validation.standardize import METALS, Refusal, parent

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Anything outside the SMILES alphabet. RDKit skips some characters it does not
# know (a Cyrillic С before CC(=O)O gave formic acid), so they are refused here,
# before parsing, with their position.
_NOT_SMILES = re.compile(r"[^A-Za-z0-9@+\-\[\]()=#$:/\\.%*]")
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class LigandOk:
    index: int
    name: str
    smiles: str
    canonical_smiles: str
    inchikey: str
    heavy_atoms: int
    total_atoms: int
    # What standardization did (batches/validation/standardize.py); empty when nothing.
    standardization: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LigandRejected:
    index: int
    name: str
    smiles: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "smiles": self.smiles,
            "code": self.code,
            "message": self.message,
        }


def clean_name(raw: Any, index: int) -> tuple[str, str | None]:
    """The ligand's name (default `ligand_<n>`, 1-based) and a problem, if any."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return f"ligand_{index + 1}", None
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        return f"ligand_{index + 1}", "name must be a string"
    name = str(raw).strip()
    if _CONTROL.search(name):
        return f"ligand_{index + 1}", "name contains a control character"
    if len(name) > MAX_NAME_LENGTH:
        return name[:MAX_NAME_LENGTH], f"name is longer than {MAX_NAME_LENGTH} characters"
    return name, None


def _describe_parse_error(messages: list[str]) -> str:
    for message in messages:
        if message.startswith("SMILES Parse Error:"):
            detail = message.removeprefix("SMILES Parse Error:").strip()
            detail = re.split(r" (?:while parsing|for input):", detail)[0]
            return f"not a valid SMILES ({detail})"
    return "not a valid SMILES"


def _foreign_character(smiles: str, offset: int) -> str | None:
    found = _NOT_SMILES.search(smiles)
    if found is None:
        return None
    char = found.group()
    described = unicodedata.name(char, "control character" if unicodedata.category(char) == "Cc" else "unnamed")
    position = offset + found.start() + 1
    return f"contains {char!r} (U+{ord(char):04X} {described}) at position {position}, not a SMILES character"


def validate_smiles(
    index: int, name: str, raw: Any, limits: Limits, *, standardize: bool = True
) -> LigandOk | LigandRejected:
    def reject(code: str, message: str) -> LigandRejected:
        shown = raw if isinstance(raw, str) else repr(raw)
        return LigandRejected(index, name, _CONTROL.sub("\ufffd", shown)[:300], code, message)

    if not isinstance(raw, str):
        return reject("invalid_smiles", "SMILES must be a string")
    control = _CONTROL.search(raw)
    if control:
        return reject(
            "invalid_smiles",
            f"contains control character U+{ord(control.group()):04X} at position {control.start() + 1}",
        )
    # Only ASCII spaces are trimmed: any other blank is a character to name.
    smiles = raw.strip(" ")
    if not smiles:
        return reject("empty_smiles", "SMILES is empty")
    if " " in smiles:
        # RDKit would read the text after a space as a name and drop it.
        return reject("invalid_smiles", "contains whitespace: give one molecule per entry")
    foreign = _foreign_character(smiles, len(raw) - len(raw.lstrip(" ")))
    if foreign:
        return reject("invalid_smiles", foreign)
    if len(smiles) > limits.max_smiles_length:
        # Checked before parsing: some pathological strings keep RDKit busy for hours.
        return reject("too_long", f"SMILES is longer than {limits.max_smiles_length} characters")
    with rdkit_messages() as messages:
        read = _read(smiles, messages)
        if isinstance(read, tuple):
            return reject(*read)
        chosen = parent(read, standardize=standardize)
    if isinstance(chosen, Refusal):
        return reject(chosen.code, chosen.message)
    mol = chosen.mol
    heavy = mol.GetNumHeavyAtoms()
    # Every atom once: explicit ones (deuterium included) and implicit hydrogens.
    total = rdMolDescriptors.CalcNumAtoms(mol)
    problem = _size_problem(heavy, total, limits)
    if problem:
        return LigandRejected(index, name, smiles, *problem)
    return LigandOk(
        index=index,
        name=name,
        smiles=smiles,
        canonical_smiles=Chem.MolToSmiles(mol, isomericSmiles=True),
        inchikey=Chem.MolToInchiKey(mol) or "",
        heavy_atoms=heavy,
        total_atoms=total,
        standardization=chosen.record(),
    )


def _read(smiles: str, messages: list[str]) -> Chem.Mol | tuple[str, str]:
    """The sanitized molecule as the hub stores it, or (code, message)."""
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return "invalid_smiles", _describe_parse_error(messages)
    try:
        Chem.SanitizeMol(mol)
        # Written-out hydrogens ([H], as DrugBank and ChemDraw export) are implicit
        # ones: one molecule, one canonical form, one atom count.
        mol = Chem.RemoveHs(mol)
    except Exception as exc:  # RDKit raises several MolSanitizeException subclasses
        return "invalid_chemistry", f"chemically invalid: {exc}"
    if "[" not in smiles and "*" not in smiles:
        # Dummy atoms are written `*`; radicals and atom maps only inside brackets.
        return mol
    for atom in mol.GetAtoms():
        if atom.GetAtomicNum() == 0:
            return "incomplete_molecule", (
                f"atom {atom.GetIdx() + 1} is a dummy atom (*): an attachment point or R-group, not a whole molecule"
            )
        # Metal ions carry unpaired electrons (Cu2+); an organic radical is a typo.
        if atom.GetNumRadicalElectrons() and atom.GetSymbol() not in METALS:
            return "incomplete_molecule", (
                f"atom {atom.GetIdx() + 1} ({atom.GetSymbol()}) has an unpaired electron: a missing hydrogen? "
                "Write the atom without brackets, or with its hydrogens ([CH3])"
            )
        # Reaction tools' atom maps ([CH3:1]) are annotations, not chemistry.
        atom.SetAtomMapNum(0)
    return mol


def _size_problem(heavy: int, total: int, limits: Limits) -> tuple[str, str] | None:
    if heavy == 0:
        return "empty_molecule", "molecule has no heavy atoms"
    if heavy > limits.max_heavy_atoms:
        return "too_many_atoms", f"{heavy} heavy atoms; the model accepts at most {limits.max_heavy_atoms}"
    if total > limits.max_total_atoms:
        return "too_many_atoms", f"{total} atoms counting hydrogens; the model accepts at most {limits.max_total_atoms}"
    return None
