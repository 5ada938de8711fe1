"""Standardization: from what was submitted to the molecule that is predicted.

Vendors and ChEMBL ship ligands as salts, hydrates and solvates. Profiling or
docking the mixture ranks the counter-ion with the drug (TFA adds 114 Da), so
each ligand is reduced to its *parent*, in this order (docs/chemistry.md):

1. alkali and alkaline-earth metals drawn bonded to a heteroatom (C(=O)O[Na])
   are split off as ions: a salt drawn covalently;
2. fragments that are known counter-ions or solvents (compared neutral, without
   stereo) are removed, unless nothing would remain;
3. of what remains, the largest organic fragment is kept (most heavy atoms,
   then highest mass, then canonical SMILES, so the choice never depends on
   input order); other fragments are removed and recorded, a second drug-sized
   component flagged; a removed fragment holding a metal other than a salt's
   cation (Fe, Pt, Cu…) means a complex drawn as ions, and the input is
   refused rather than reduced to one of its ligands (ferrocene is not
   cyclopentadiene);
4. a parent with a net charge, the half of a salt whose counter-ion left, is
   neutralized where a proton can be added or removed (rdMolStandardize
   Uncharger); a parent with net charge 0 keeps its charges (zwitterions,
   N-oxides), and a permanent charge (quaternary ammonium) stays.

Functional groups are not re-drawn (rdMolStandardize.Normalize): RDKit's
sanitization already draws nitro groups and N-oxides one way, and the
normalizer's other rules (sulfoxides as S+–O−) would change how common drugs
are drawn at a third of validation's cost, for no change in ranking.

Refused whatever the policy: an input with no organic fragment (no carbon, or
only inorganic carbon: carbonate, cyanide, CO2).
Refused when standardizing: a metal bonded to the parent (coordination
complexes, organometallics), which neither RDKit's descriptors nor Boltz-2
model; with standardize=false such ligands are kept as given and flagged.
"""

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from rdkit import Chem
from rdkit.Chem import rdMolDescriptors
from rdkit.Chem.MolStandardize import rdMolStandardize

# Counter-ions and solvents as sold (ChEMBL's salt and solvent lists, the
# common pharmaceutical salt formers), written neutral: fragments are compared
# by the canonical SMILES of their neutral form, so Cl, [Cl-] and HCl match.
COUNTER_IONS = (
    # inorganic acids, halides, water, ammonia and other small inorganics
    "F", "Cl", "Br", "I", "O", "N", "OO", "O=S(=O)(O)O", "O=[N+]([O-])O", "O=P(O)(O)O", "O=Cl(=O)(=O)O",
    "F[B-](F)(F)F", "F[P-](F)(F)(F)(F)F", "O=C(O)O", "OS(=O)O", "C#N", "S",
    # carboxylic acids
    "O=C(O)C(F)(F)F", "CC(=O)O", "O=CO", "O=C(O)C(=O)O", "O=C(O)/C=C/C(=O)O", "O=C(O)/C=C\\C(=O)O",
    "O=C(O)C=CC(=O)O", "O=C(O)CCC(=O)O", "O=C(O)C(O)C(O)C(=O)O", "O=C(O)[C@H](O)[C@@H](O)C(=O)O",
    "O=C(O)[C@@H](O)[C@H](O)C(=O)O", "O=C(O)CC(O)(CC(=O)O)C(=O)O", "O=C(O)CC(O)C(=O)O", "CC(O)C(=O)O",
    "O=C(O)c1ccccc1", "O=C(O)c1ccccc1O", "O=C(O)CCCCC(=O)O", "CCCCCCCCCCCCCCCCCC(=O)O", "O=C(O)CC(=O)O",
    "OCC(O)C(O)C(O)C(O)C(=O)O", "O=C(O)CNC(=O)c1ccccc1", "O=C(O)C(O)c1ccccc1", "O=C(O)C(O)C(O)C(O)C(O)C(=O)O",
    "O=C(O)c1ccc2ccccc2c1O", "OCC1OC(OC(C(O)CO)C(O)C(O)C(=O)O)C(O)C(O)C1O", "OCC(O)C(O)C(O)C(O)C(O)C(=O)O",
    "CCCCCCCCC=CCCCCCCCC(=O)O", "CCCCCCCCCCCCCCCC(=O)O", "O=C(O)c1cc2ccccc2c(Cc2c(O)c(C(=O)O)cc3ccccc23)c1O",
    # sulfonic acids
    "CS(=O)(=O)O", "CCS(=O)(=O)O", "O=S(=O)(O)c1ccccc1", "Cc1ccc(S(=O)(=O)O)cc1", "O=S(=O)(O)CCO",
    "O=S(=O)(O)c1ccc2ccccc2c1", "CC1(C)C2CCC1(CS(=O)(=O)O)C(=O)C2", "O=S(=O)(O)CCS(=O)(=O)O",
    "O=S(=O)(O)c1cccc2c(S(=O)(=O)O)cccc12", "CCCCCCCCCCCCOS(=O)(=O)O", "COS(=O)(=O)O",
    # metal and ammonium counter-cations
    "[Li]", "[Na]", "[K]", "[Rb]", "[Cs]", "[Mg]", "[Ca]", "[Sr]", "[Ba]", "[Zn]", "[Al]",
    "[NH4+]", "C[N+](C)(C)CCO", "NC(CO)(CO)CO", "CNC[C@H](O)[C@@H](O)[C@H](O)[C@H](O)CO", "CCNCC",
    "C1CCC(NC2CCCCC2)CC1", "c1ccc(CNCCNCc2ccccc2)cc1", "NCCO", "OCCNCCO", "CN(C)C", "CCN(CC)CC",
    "OCCN(CCO)CCO", "CC(C)(C)N", "NCCCCC(N)C(=O)O", "N=C(N)NCCCCC(N)C(=O)O", "NC(CC(=O)O)C(=O)O",
    "NC(CCC(=O)O)C(=O)O",
    # solvents of crystallization
    "CO", "CCO", "CC(C)O", "CC(C)=O", "CC#N", "CS(C)=O", "CN(C)C=O", "ClCCl", "ClC(Cl)Cl", "CCOC(C)=O",
    "CCOCC", "C1CCOC1", "C1COCCO1", "c1ccccc1", "Cc1ccccc1", "c1ccncc1", "OCCO", "CCCCO",
)  # fmt: skip

# Carbon-containing but inorganic: carbonates, cyanide, CO2, CO, thiocyanate,
# cyanate, CS2, carbonyl sulfide (compared neutral, like the counter-ions).
INORGANIC_CARBON = ("O=C(O)O", "C#N", "O=C=O", "[C-]#[O+]", "N#CS", "N#CO", "S=C=S", "O=C=S")

# Metals (alkali, alkaline-earth, transition, post-transition, lanthanides,
# actinides). Metalloids (B, Si, Ge, As, Sb, Se, Te) are not: boronic acids
# and silanes are drugs.
METALS = frozenset(
    [
        "Li", "Be", "Na", "Mg", "Al", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga",
        "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Cs", "Ba", "La",
        "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",
        "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np",
        "Pu", "Am",
    ]
)  # fmt: skip

# Metals that come as the cation of a salt (sodium carboxylate, calcium
# phosphate, zinc acetate); any other metal is part of a complex.
SALT_CATIONS = frozenset(["Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Sr", "Ba", "Zn", "Al"])
# An alkali or alkaline-earth metal drawn bonded to a heteroatom (aspirin as
# C(=O)O[Na], as vendors' and old MDL files write salts) is a salt, not a complex.
SALT_BOND = "[Li,Na,K,Rb,Cs,Mg,Ca,Sr,Ba]-[O,N,S,F,Cl,Br,I]"


@dataclass(frozen=True)
class Parent:
    mol: Chem.Mol
    removed_fragments: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """What Job.standardization stores: empty when nothing changed."""
        record: dict[str, Any] = {}
        if self.removed_fragments:
            record["removed_fragments"] = self.removed_fragments
        if self.changes:
            record["changes"] = self.changes
        if self.flags:
            record["flags"] = self.flags
        return record


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


def parent(mol: Chem.Mol, *, standardize: bool) -> Parent | Refusal:
    """The molecule to predict for a sanitized input, or why there is none."""
    changes = []
    if standardize:
        mol, broken = _disconnect_salt_metals(mol)
        if broken:
            changes.append(f"disconnected {broken} metal–heteroatom bond(s): a salt drawn covalently")
    # Atom indices per fragment are cheap; fragments as molecules cost more
    # than parsing, and most ligands are one fragment and skip that step.
    single = len(Chem.GetMolFrags(mol)) == 1
    fragments = [mol] if single else list(Chem.GetMolFrags(mol, asMols=True))
    if not any(_is_organic(fragment) for fragment in fragments):
        return Refusal(
            "no_organic_fragment",
            f"no organic fragment in {Chem.MolToSmiles(mol)}: a ligand needs a carbon-containing molecule",
        )
    if not standardize:
        return Parent(mol, flags=_flags(mol, len(fragments)))
    return _parent_of(*_choose(fragments), changes)


def _parent_of(chosen: Chem.Mol, removed: list[Chem.Mol], flags: list[str], changes: list[str]) -> Parent | Refusal:
    metals = _complex_metals(chosen, removed)
    if metals:
        return Refusal(
            "metal_complex",
            f"{', '.join(metals)} in the ligand: coordination complexes and organometallics are not "
            "modelled (submit the organic ligand, or standardize=false to keep it as given)",
        )
    removed_smiles = sorted(Chem.MolToSmiles(f) for f in removed)
    if removed:
        changes.append(f"removed {len(removed)} fragment(s): {'.'.join(removed_smiles)}")
    if flags:
        changes.append("kept the largest of several components; the others are in removed_fragments")
    charge = Chem.GetFormalCharge(chosen)
    if charge:
        chosen = _uncharger().uncharge(chosen)
        after = Chem.GetFormalCharge(chosen)
        changes.append(
            f"neutralized (net charge {charge:+d} → {after})"
            if after != charge
            else f"net charge {charge:+d} kept (a permanent charge)"
        )
    return Parent(chosen, removed_fragments=removed_smiles, changes=changes, flags=flags)


def _disconnect_salt_metals(mol: Chem.Mol) -> tuple[Chem.Mol, int]:
    """The molecule with its salt-cation bonds broken into ion pairs, and how many."""
    bonds = mol.GetSubstructMatches(_pattern(SALT_BOND))
    if not bonds:
        return mol, 0
    ions = Chem.RWMol(mol)
    for metal, partner in bonds:
        ions.RemoveBond(metal, partner)
        for index, change in ((metal, +1), (partner, -1)):
            atom = ions.GetAtomWithIdx(index)
            atom.SetFormalCharge(atom.GetFormalCharge() + change)
    split = ions.GetMol()
    Chem.SanitizeMol(split)
    return split, len(bonds)


# A second component this large is a drug (a co-formulation, a co-crystal),
# not a counter-ion: the parent is still the largest, and the input is flagged.
COMPONENT_HEAVY_ATOMS = 8


def _choose(fragments: list[Chem.Mol]) -> tuple[Chem.Mol, list[Chem.Mol], list[str]]:
    """The parent fragment, the removed ones, and flags."""
    if len(fragments) == 1:
        return fragments[0], [], []
    # A bare proton ([H+], PubChem's "hydron") is no candidate.
    molecular = [f for f in fragments if f.GetNumHeavyAtoms()]
    kept = [f for f in molecular if not _is_counter_ion(f)] or molecular
    # Listed organics (acetic acid) beat an unlisted inorganic (SO3, HN3).
    organic = [f for f in kept if _is_organic(f)] or [f for f in molecular if _is_organic(f)]
    chosen = organic[0] if len(organic) == 1 else max(organic, key=_size_key)
    components = {
        Chem.MolToSmiles(f)
        for f in kept
        if f is not chosen and f.GetNumHeavyAtoms() >= COMPONENT_HEAVY_ATOMS and _is_organic(f)
    } - {Chem.MolToSmiles(chosen)}
    return chosen, [f for f in fragments if f is not chosen], ["multiple_components"] if components else []


def _complex_metals(chosen: Chem.Mol, removed: list[Chem.Mol]) -> list[str]:
    """Metals bonded to the parent, or removed though no salt has them as cation."""
    bonded = _metals(chosen)
    loose = {metal for fragment in removed for metal in _metals(fragment)} - SALT_CATIONS
    return sorted(bonded | loose)


def _metals(mol: Chem.Mol) -> set[str]:
    if not _has_metal(mol):
        return set()
    return {atom.GetSymbol() for atom in mol.GetAtoms() if atom.GetSymbol() in METALS}


def _flags(mol: Chem.Mol, fragment_count: int) -> list[str]:
    flags = []
    if fragment_count > 1:
        flags.append("multi_fragment")
    if _has_metal(mol):
        flags.append("metal")
    if Chem.GetFormalCharge(mol):
        flags.append("charged")
    return flags


def _is_organic(fragment: Chem.Mol) -> bool:
    if not fragment.HasSubstructMatch(_pattern("[#6]")):
        return False
    names, largest = _inorganic_carbon()
    return fragment.GetNumHeavyAtoms() > largest or _neutral_smiles(fragment) not in names


def _has_metal(mol: Chem.Mol) -> bool:
    return mol.HasSubstructMatch(_pattern("[" + ",".join(sorted(METALS)) + "]"))


@cache
def _pattern(smarts: str) -> Chem.Mol:
    return Chem.MolFromSmarts(smarts)


def _size_key(fragment: Chem.Mol) -> tuple[int, float, str]:
    return fragment.GetNumHeavyAtoms(), rdMolDescriptors.CalcExactMolWt(fragment), Chem.MolToSmiles(fragment)


def _neutral_smiles(fragment: Chem.Mol) -> str:
    neutral = _uncharger().uncharge(fragment)
    for atom in neutral.GetAtoms():
        # Metal cations stay charged after uncharging; compare them as atoms.
        if atom.GetSymbol() in METALS:
            atom.SetFormalCharge(0)
            atom.SetNumExplicitHs(0)
            atom.SetNoImplicit(True)
    # Stereo and isotopes do not make another counter-ion (D-gluconate, D2O).
    return Chem.MolToSmiles(neutral, isomericSmiles=False)


@cache
def _inorganic_carbon() -> tuple[frozenset[str], int]:
    return _listed(INORGANIC_CARBON)


def _is_counter_ion(fragment: Chem.Mol) -> bool:
    # Size first: uncharging and writing out the drug itself is most of the cost.
    names, largest = _counter_ions()
    return fragment.GetNumHeavyAtoms() <= largest and _neutral_smiles(fragment) in names


@cache
def _counter_ions() -> tuple[frozenset[str], int]:
    return _listed(COUNTER_IONS)


def _listed(smiles: tuple[str, ...]) -> tuple[frozenset[str], int]:
    """A list's neutral SMILES, and its largest member's heavy atoms: larger
    fragments are not looked up (writing out a drug is the costly part)."""
    mols = [Chem.MolFromSmiles(item) for item in smiles]
    return frozenset(_neutral_smiles(mol) for mol in mols), max(mol.GetNumHeavyAtoms() for mol in mols)


@cache
def _uncharger() -> rdMolStandardize.Uncharger:
    return rdMolStandardize.Uncharger()
