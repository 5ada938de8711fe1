"""One chunk of a submission, validated in a background worker's process pool.

A chunk travels as JSON both ways (stored on an IntakeChunk row, pickled to a pool process):
raw ligands in, checked ligands out. Imports nothing from Django, so a spawned pool process
imports it without settings.
"""

from typing import Any

from batches.registry import Limits
from batches.validation.files import RawLigand
from batches.validation.ligands import check_ligands
from batches.validation.smiles import LigandOk, LigandRejected

# Raw items: ["raw", name, smiles, molblock, error] or ["rejected", index, name, smiles, code, message].
# Checked items: ["ok", index, name, smiles, canonical, inchikey, heavy, total, standardization]
# or a rejected item as above.


def encode_raw(ligand: RawLigand | LigandRejected) -> list[Any]:
    if isinstance(ligand, LigandRejected):
        return _encode_rejected(ligand)
    return ["raw", ligand.name, ligand.smiles, ligand.molblock, ligand.error]


def decode_raw(item: list[Any]) -> RawLigand | LigandRejected:
    if item[0] == "rejected":
        return LigandRejected(*item[1:])
    _, name, smiles, molblock, error = item
    return RawLigand(name=name, smiles=smiles, error=error, molblock=molblock)


def encode_checked(ligand: LigandOk | LigandRejected) -> list[Any]:
    if isinstance(ligand, LigandRejected):
        return _encode_rejected(ligand)
    return [
        "ok",
        ligand.index,
        ligand.name,
        ligand.smiles,
        ligand.canonical_smiles,
        ligand.inchikey,
        ligand.heavy_atoms,
        ligand.total_atoms,
        ligand.standardization,
    ]


def decode_checked(item: list[Any]) -> LigandOk | LigandRejected:
    if item[0] == "rejected":
        return LigandRejected(*item[1:])
    return LigandOk(*item[1:])


def check_chunk(items: list[list[Any]], first_index: int, limits: Limits, standardize: bool) -> list[list[Any]]:
    """The pool's task: a chunk's raw items in, its checked items out."""
    raws = [decode_raw(item) for item in items]
    return [encode_checked(c) for c in check_ligands(raws, limits, first_index=first_index, standardize=standardize)]


def rejected_item(index: int, item: list[Any], message: str) -> list[Any]:
    """A raw item refused without being checked (validating it crashed its process)."""
    raw = decode_raw(item)
    if isinstance(raw, LigandRejected):
        return encode_raw(raw)
    name = raw.name if isinstance(raw.name, str) else f"ligand_{index + 1}"
    smiles = raw.smiles if isinstance(raw.smiles, str) else ""
    return _encode_rejected(LigandRejected(index, name, smiles, "validation_crashed", message))


def _encode_rejected(ligand: LigandRejected) -> list[Any]:
    return ["rejected", ligand.index, ligand.name, ligand.smiles, ligand.code, ligand.message]
