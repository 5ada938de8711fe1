"""Ligand files: CSV/TSV (header detection), SMILES files, SDF.

Each reader yields one RawLigand per input record, in order, so the
validation report can name every record, including the unreadable ones.
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from rdkit import Chem

from batches.validation.rdkit_log import rdkit_messages
from omtx_hub.errors import InvalidInput

SMILES_COLUMNS = ("smiles", "smi", "canonical_smiles", "isomeric_smiles", "ligand_smiles", "structure")
NAME_COLUMNS = (
    "name",
    "ligand_name",
    "id",
    "ligand",
    "compound",
    "compound_id",
    "title",
    "molecule",
    "chembl_id",
    "zinc_id",
)
FORMATS = {
    "csv": "csv",
    "tsv": "csv",
    "smi": "smi",
    "smiles": "smi",
    "txt": "smi",
    "sdf": "sdf",
    "sd": "sdf",
    "mol": "sdf",
}


@dataclass(frozen=True)
class RawLigand:
    name: str | None
    smiles: str | None
    # Set when the record itself could not be read (an SDF block RDKit refused).
    error: str | None = None


def detect_format(filename: str, explicit: str | None) -> str:
    suffix = filename.rsplit(".", 1)[-1] if "." in filename else ""
    key = (explicit or suffix).lower()
    if key not in FORMATS:
        raise InvalidInput(
            f"Cannot tell the format of {filename!r}; name it .csv, .tsv, .smi or .sdf, or pass format.",
            code="unknown_format",
            details={"formats": sorted(FORMATS)},
        )
    return FORMATS[key]


def decode(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{filename} is not UTF-8 text (byte {exc.start + 1}).", code="invalid_file") from exc


def read_ligand_file(data: bytes, filename: str, explicit_format: str | None = None) -> list[RawLigand]:
    fmt = detect_format(filename, explicit_format)
    if fmt == "sdf":
        return list(_read_sdf(data))
    text = decode(data, filename)
    rows = _read_csv(text) if fmt == "csv" else _read_smi(text)
    if not rows:
        raise InvalidInput(f"{filename} holds no ligands.", code="empty_file")
    return rows


def _parses(token: str) -> bool:
    with rdkit_messages():
        return Chem.MolFromSmiles(token, sanitize=False) is not None


def _smiles_column(rows: list[list[str]]) -> int:
    """Which column holds the SMILES, judged by what RDKit can parse in a sample."""
    sample = rows[:25]
    width = max((len(r) for r in sample), default=1)
    scores = [sum(1 for r in sample if i < len(r) and r[i] and _parses(r[i])) for i in range(width)]
    return max(range(width), key=lambda i: (scores[i], -i))


def _to_ligands(rows: list[list[str]], smiles_col: int, name_col: int | None) -> list[RawLigand]:
    ligands = []
    for row in rows:
        smiles = row[smiles_col] if smiles_col < len(row) else ""
        name = row[name_col] if name_col is not None and name_col < len(row) else None
        ligands.append(RawLigand(name=name, smiles=smiles))
    return ligands


def _read_csv(text: str) -> list[RawLigand]:
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row)]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    smiles_col = next((header.index(c) for c in SMILES_COLUMNS if c in header), None)
    if smiles_col is not None:
        name_col = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
        return _to_ligands(rows[1:], smiles_col, name_col)
    smiles_col = _smiles_column(rows)
    name_col = next((i for i in range(len(rows[0])) if i != smiles_col), None)
    return _to_ligands(rows, smiles_col, name_col)


def _read_smi(text: str) -> list[RawLigand]:
    rows = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        rows.append(stripped.split(None, 1))
    if rows and rows[0][0].lower() in SMILES_COLUMNS + NAME_COLUMNS:
        rows = rows[1:]
    if not rows:
        return []
    # SMILES files come as "SMILES name" and as "name<TAB>SMILES" (ZINC exports).
    smiles_col = _smiles_column(rows)
    name_col = 1 - smiles_col if smiles_col in (0, 1) else None
    return _to_ligands([[c.strip() for c in r] for r in rows], smiles_col, name_col)


def _read_sdf(data: bytes) -> Iterator[RawLigand]:
    supplier = Chem.ForwardSDMolSupplier(io.BytesIO(data), sanitize=True, removeHs=True)
    with rdkit_messages():
        records = list(supplier)
    for number, mol in enumerate(records, start=1):
        if mol is None:
            yield RawLigand(name=None, smiles=None, error=f"SDF record {number} could not be read by RDKit")
            continue
        name = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else None
        yield RawLigand(name=name or None, smiles=Chem.MolToSmiles(mol))
