"""Validate a whole ligand list: per-item checks plus duplicates in the batch."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from batches.registry import Limits
from batches.validation.files import RawLigand, read_record
from batches.validation.smiles import LigandOk, LigandRejected, clean_name, validate_smiles


@dataclass(frozen=True)
class LigandReport:
    accepted: list[LigandOk]
    rejected: list[LigandRejected]
    standardize: bool = True

    @property
    def submitted(self) -> int:
        return len(self.accepted) + len(self.rejected)

    def summary(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted,
            "accepted": len(self.accepted),
            "rejected": len(self.rejected),
            "standardization": self.standardization_summary(),
            "rejected_ligands": [r.as_dict() for r in sorted(self.rejected, key=lambda r: r.index)],
        }

    def standardization_summary(self) -> dict[str, Any]:
        """The policy and how many accepted ligands it changed or flagged."""
        records = [ok.standardization for ok in self.accepted]
        return {
            "standardize": self.standardize,
            "changed": sum(1 for r in records if r.get("changes")),
            "fragments_removed": sum(1 for r in records if r.get("removed_fragments")),
            "flagged": sum(1 for r in records if r.get("flags")),
        }


def raw_from_json(items: Any) -> list[RawLigand | LigandRejected]:
    """Ligands given as JSON: objects {name, smiles} or bare SMILES strings."""
    raws: list[RawLigand | LigandRejected] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            raws.append(RawLigand(name=None, smiles=item))
        elif isinstance(item, dict):
            raws.append(RawLigand(name=item.get("name"), smiles=item.get("smiles")))
        else:
            raws.append(
                LigandRejected(
                    index,
                    f"ligand_{index + 1}",
                    repr(item)[:100],
                    "invalid_item",
                    "each ligand must be an object {name, smiles} or a SMILES string",
                )
            )
    return raws


def validate_ligands(
    raws: list[RawLigand | LigandRejected],
    limits: Limits,
    *,
    standardize: bool = True,
    allow_duplicates: bool = False,
) -> LigandReport:
    checked = check_ligands(raws, limits, first_index=0, standardize=standardize)
    return dedupe(checked, standardize=standardize, allow_duplicates=allow_duplicates)


def check_ligands(
    raws: list[RawLigand | LigandRejected], limits: Limits, *, first_index: int, standardize: bool
) -> list[LigandOk | LigandRejected]:
    """Each ligand on its own (numbered from `first_index`): what a background worker
    does to one chunk of a submission. Duplicates are the whole batch's question (dedupe)."""
    return [
        raw if isinstance(raw, LigandRejected) else _validate_item(index, raw, limits, standardize)
        for index, raw in enumerate(raws, first_index)
    ]


def dedupe(checked: Iterable[LigandOk | LigandRejected], *, standardize: bool, allow_duplicates: bool) -> LigandReport:
    """The report of a whole batch's checked ligands, in input order: a molecule
    already seen is rejected as a duplicate of its first occurrence."""
    accepted: list[LigandOk] = []
    rejected: list[LigandRejected] = []
    first_seen: dict[str, LigandOk] = {}
    for result in checked:
        if isinstance(result, LigandRejected):
            rejected.append(result)
            continue
        key = identity(result, standardize=standardize)
        original = first_seen.get(key)
        # Allowed duplicates each become a job; the engine computes the molecule once.
        if original is not None and not allow_duplicates:
            same = f"same {'parent ' if standardize else ''}molecule as ligand {original.index + 1} ({original.name})"
            rejected.append(LigandRejected(result.index, result.name, result.smiles, "duplicate", same))
            continue
        first_seen.setdefault(key, result)
        accepted.append(result)
    return LigandReport(accepted=accepted, rejected=rejected, standardize=standardize)


def identity(ok: LigandOk, *, standardize: bool) -> str:
    """What makes two ligands one. Standardized: the InChIKey without its
    protonation flag, so a zwitterion and its neutral form, or two protomers
    or mobile-H tautomers of one compound, are one ligand. As given: the
    canonical SMILES, so only the same drawing of a molecule is a duplicate."""
    if standardize and ok.inchikey:
        return ok.inchikey[:25]
    return ok.canonical_smiles


def _validate_item(index: int, raw: RawLigand, limits: Limits, standardize: bool) -> LigandOk | LigandRejected:
    # One ligand per record: an SDF's record number is the ligand's position.
    raw = read_record(raw, index + 1)
    name, name_problem = clean_name(raw.name, index)
    shown = raw.smiles if isinstance(raw.smiles, str) else ""
    if raw.error:
        return LigandRejected(index, name, shown, "unreadable_record", raw.error)
    if name_problem:
        return LigandRejected(index, name, shown, "invalid_name", name_problem)
    return validate_smiles(index, name, raw.smiles, limits, standardize=standardize)
