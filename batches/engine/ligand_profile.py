"""The `ligand-profile` model: RDKit descriptors, drug-likeness, alerts, 3D conformer.

Runs in worker processes; imports nothing from Django.
"""

from functools import cache
from typing import Any

from rdkit import Chem
from rdkit.Chem import QED, AllChem, Crippen, Descriptors, Lipinski, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

from batches.engine.types import JobInput, JobOutcome


@cache
def _catalog(which: str) -> FilterCatalog:
    params = FilterCatalogParams()
    catalog = {"pains": FilterCatalogParams.FilterCatalogs.PAINS, "brenk": FilterCatalogParams.FilterCatalogs.BRENK}
    params.AddCatalog(catalog[which])
    return FilterCatalog(params)


def _alerts(mol: Chem.Mol, which: str) -> list[str]:
    return [entry.GetDescription() for entry in _catalog(which).GetMatches(mol)]


def describe(mol: Chem.Mol) -> dict[str, Any]:
    mw = Descriptors.MolWt(mol)
    clogp = Crippen.MolLogP(mol)
    hbd = Lipinski.NumHDonors(mol)
    hba = Lipinski.NumHAcceptors(mol)
    tpsa = rdMolDescriptors.CalcTPSA(mol)
    rotatable = rdMolDescriptors.CalcNumRotatableBonds(mol)
    pains = _alerts(mol, "pains")
    brenk = _alerts(mol, "brenk")
    return {
        "canonical_smiles": Chem.MolToSmiles(mol),
        "inchikey": Chem.MolToInchiKey(mol),
        "formula": rdMolDescriptors.CalcMolFormula(mol),
        "mol_weight": round(mw, 3),
        "clogp": round(clogp, 3),
        "tpsa": round(tpsa, 2),
        "hbd": hbd,
        "hba": hba,
        "rotatable_bonds": rotatable,
        "heavy_atoms": mol.GetNumHeavyAtoms(),
        "qed": round(QED.qed(mol), 4),
        "lipinski_violations": sum([mw > 500, clogp > 5, hbd > 5, hba > 10]),
        "veber_violations": sum([rotatable > 10, tpsa > 140]),
        "pains_alerts": len(pains),
        "brenk_alerts": len(brenk),
        "alerts": "; ".join(pains + brenk),
    }


def conformer(mol: Chem.Mol, name: str, params: dict[str, Any]) -> tuple[str, float | None]:
    """ETKDGv3 embedding and force-field minimisation; returns (SDF text, energy)."""
    mol_h = Chem.AddHs(mol)
    embed = AllChem.ETKDGv3()
    embed.randomSeed = int(params.get("random_seed", 42))
    if AllChem.EmbedMolecule(mol_h, embed) != 0:
        embed.useRandomCoords = True
        if AllChem.EmbedMolecule(mol_h, embed) != 0:
            raise ValueError("RDKit could not embed a 3D conformer")
    energy = _minimise(mol_h, params.get("force_field", "MMFF"), int(params.get("max_iterations", 500)))
    mol_h.SetProp("_Name", name)
    if energy is not None:
        mol_h.SetProp("conformer_energy_kcal_mol", f"{energy:.4f}")
    return Chem.MolToMolBlock(mol_h) + "$$$$\n", energy


def _minimise(mol_h: Chem.Mol, force_field: str, iterations: int) -> float | None:
    if force_field == "MMFF" and AllChem.MMFFHasAllMoleculeParams(mol_h):
        props = AllChem.MMFFGetMoleculeProperties(mol_h)
        ff = AllChem.MMFFGetMoleculeForceField(mol_h, props)
    elif AllChem.UFFHasAllMoleculeParams(mol_h):
        ff = AllChem.UFFGetMoleculeForceField(mol_h)
    else:
        return None
    if iterations:
        ff.Minimize(maxIts=iterations)
    return round(float(ff.CalcEnergy()), 4)


def profile_one(job: JobInput, params: dict[str, Any]) -> JobOutcome:
    """Profile one ligand. The protein is not used: this model profiles ligands only, and says so."""
    mol = Chem.MolFromSmiles(job.smiles)
    if mol is None:
        return JobOutcome(job.job_id, ok=False, failure_reason="invalid_input", message="RDKit cannot parse the SMILES")
    metrics = describe(mol)
    if not params.get("conformer", True):
        return JobOutcome(job.job_id, ok=True, metrics=metrics)
    try:
        sdf, energy = conformer(mol, job.name, params)
    except ValueError as exc:
        return JobOutcome(job.job_id, ok=False, metrics=metrics, failure_reason="invalid_input", message=str(exc))
    metrics["conformer_energy"] = energy
    return JobOutcome(
        job.job_id, ok=True, metrics=metrics, artifact_name=f"{job.job_id}.sdf", artifact_content=sdf.encode()
    )
