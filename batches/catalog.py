"""The models the hub serves. A plain dict: adding a model is a code change."""

from django.conf import settings

from batches.registry import Limits, ModelSpec, OutputField, Param
from omtx_hub.errors import InvalidInput

LIGAND_PROFILE = ModelSpec(
    name="ligand-profile",
    version="1.0.0",
    title="Ligand profile (RDKit, CPU)",
    description=(
        "Descriptors, drug-likeness, structural alerts and a force-field minimised 3D "
        "conformer computed with RDKit. Ignores the protein: it is a ligand triage model, "
        "not a binding prediction."
    ),
    executor="local",
    gpu=None,
    timeout_seconds=120,
    chunk_size=16,
    max_attempts=3,
    params={
        "conformer": Param(bool, True, description="Embed and minimise a 3D conformer (ETKDGv3)."),
        "force_field": Param(str, "MMFF", choices=("MMFF", "UFF")),
        "max_iterations": Param(int, 500, minimum=0, maximum=10_000),
        "random_seed": Param(int, 42, minimum=0, maximum=2**31 - 1),
    },
    outputs=(
        OutputField(
            "qed", "QED", "", "higher", column=True, description="Quantitative estimate of drug-likeness (0–1)."
        ),
        OutputField("mol_weight", "Molecular weight", "Da", column=True),
        OutputField("clogp", "cLogP", "log units", column=True, description="Wildman–Crippen logP."),
        OutputField("tpsa", "TPSA", "Å²"),
        OutputField("hbd", "H-bond donors", kind="int"),
        OutputField("hba", "H-bond acceptors", kind="int"),
        OutputField("rotatable_bonds", "Rotatable bonds", kind="int"),
        OutputField("heavy_atoms", "Heavy atoms", kind="int"),
        OutputField("lipinski_violations", "Lipinski violations", direction="lower", kind="int"),
        OutputField("veber_violations", "Veber violations", direction="lower", kind="int"),
        OutputField("pains_alerts", "PAINS alerts", direction="lower", kind="int"),
        OutputField("brenk_alerts", "Brenk alerts", direction="lower", kind="int"),
        OutputField("alerts", "Alert names", kind="str"),
        OutputField("inchikey", "InChIKey", kind="str"),
        OutputField("formula", "Formula", kind="str"),
        OutputField(
            "conformer_energy",
            "Conformer energy",
            "kcal/mol",
            # No direction: force-field energies of different molecules have
            # different reference states, so "lower" would rank nonsense.
            "none",
            description=(
                "Force-field energy of the minimised conformer. Not comparable across molecules "
                "(each has its own reference state): a check on the conformer, not a ranking metric."
            ),
        ),
    ),
    default_rank="qed",
    seconds_per_ligand=0.05,
    weights_revision="rdkit",
)

# A3M of a few thousand sequences for a 300-residue target; larger alignments add little and
# would ride along in every chunk sent to Modal and in the batch row.
MAX_MSA_CHARS = 1024 * 1024

BOLTZ2 = ModelSpec(
    name="boltz2",
    version="2.2.1",
    title="Boltz-2 structure and affinity (GPU)",
    description=(
        "Boltz-2 co-folding with the affinity head. affinity_pred_value is log10(IC50 in µM): "
        "lower is stronger. affinity_probability_binary is the probability of being a binder."
    ),
    executor=settings.OMTX_BOLTZ2_EXECUTOR,
    gpu="A100-40GB",  # deploy/boltz_modal_app.py GPU (tested)
    timeout_seconds=1800,
    chunk_size=8,
    max_attempts=3,
    params={
        "use_msa": Param(bool, True, description="Use the MSA server for the target (computed once per sequence)."),
        "use_potentials": Param(bool, False, description="Inference-time steering potentials."),
        "recycling_steps": Param(int, 3, minimum=1, maximum=20),
        "sampling_steps": Param(int, 200, minimum=10, maximum=1000),
        "diffusion_samples": Param(int, 1, minimum=1, maximum=25),
        "sampling_steps_affinity": Param(int, 200, minimum=10, maximum=1000),
        "diffusion_samples_affinity": Param(int, 5, minimum=1, maximum=25),
        "affinity_mw_correction": Param(bool, False),
        "seed": Param(int, 0, minimum=0, maximum=2**31 - 1),
        "msa": Param(
            str,
            "",
            description=(
                "Your own MSA for the target, as A3M text whose first sequence is the target. "
                "Used instead of the MSA server; at most 1 MiB (trim to a few thousand sequences)."
            ),
            max_length=MAX_MSA_CHARS,
        ),
    },
    outputs=(
        OutputField(
            "affinity_probability_binary",
            "Binder probability",
            "",
            "higher",
            column=True,
            description="Probability that the ligand is a binder (0–1). Rank by it for hit discovery.",
        ),
        OutputField(
            "affinity_pred_value",
            "Predicted affinity",
            "log10(IC50 / µM)",
            "lower",
            column=True,
            description="log10 of the predicted IC50 in µM: lower is more potent. Rank by it for potency.",
        ),
        OutputField("pic50", "pIC50", "−log10(IC50 / M)", "higher", description="6 − affinity_pred_value."),
        OutputField("delta_g", "ΔG (estimate)", "kcal/mol", "lower", description="−(6 − affinity_pred_value) × 1.364."),
        OutputField(
            "confidence_score",
            "Confidence",
            "",
            "higher",
            column=True,
            description="Boltz's ranking score: 0.8 × complex pLDDT + 0.2 × ipTM (pTM for one chain), 0–1.",
        ),
        OutputField("ptm", "pTM", "", "higher", description="Predicted TM-score of the complex (0–1)."),
        OutputField("iptm", "ipTM", "", "higher", description="Interface pTM between the chains (0–1)."),
        OutputField(
            "ligand_iptm", "Ligand ipTM", "", "higher", description="Interface pTM of the ligand to the protein (0–1)."
        ),
        OutputField(
            "protein_iptm", "Protein ipTM", "", "higher", description="Protein–protein ipTM (0 with one chain)."
        ),
        OutputField("complex_plddt", "Complex pLDDT", "", "higher", description="Mean predicted lDDT (0–1)."),
        OutputField(
            "complex_iplddt", "Interface pLDDT", "", "higher", description="pLDDT weighted to the interface (0–1)."
        ),
        OutputField("complex_pde", "Complex PDE", "Å", "lower", description="Mean predicted distance error."),
        OutputField(
            "complex_ipde", "Interface PDE", "Å", "lower", description="Predicted distance error at the interface."
        ),
        OutputField(
            "affinity_pred_value1",
            "Predicted affinity (model 1)",
            "log10(IC50 / µM)",
            "lower",
            description="First member of the affinity ensemble.",
        ),
        OutputField(
            "affinity_pred_value2",
            "Predicted affinity (model 2)",
            "log10(IC50 / µM)",
            "lower",
            description="Second member of the affinity ensemble.",
        ),
        OutputField(
            "affinity_probability_binary1",
            "Binder probability (model 1)",
            "",
            "higher",
            description="First member of the affinity ensemble (0–1).",
        ),
        OutputField(
            "affinity_probability_binary2",
            "Binder probability (model 2)",
            "",
            "higher",
            description="Second member of the affinity ensemble (0–1).",
        ),
    ),
    default_rank="affinity_probability_binary",
    # On-paper A100-40GB time per ligand in chunks of 8 (docs/execution.md, "Cost of a chunk").
    seconds_per_ligand=30.0,
    weights_revision="boltz2_conf.ckpt+boltz2_aff.ckpt",
)

MODELS: dict[str, ModelSpec] = {m.name: m for m in (LIGAND_PROFILE, BOLTZ2)}
DEFAULT_MODEL = LIGAND_PROFILE.name
# Every metric with a typed, indexed Job column, whichever model fills it.
TYPED_COLUMNS = frozenset(column for spec in MODELS.values() for column in spec.columns)
# The predecessor's clients send these names.
ALIASES = {"boltz-2": "boltz2", "boltz": "boltz2", "ligand_profile": "ligand-profile"}


def get_model(name: str) -> ModelSpec:
    spec = MODELS.get(ALIASES.get(name, name))
    if spec is None:
        raise InvalidInput(f"Unknown model {name!r}.", code="unknown_model", details={"models": sorted(MODELS)})
    return spec


__all__ = ["DEFAULT_MODEL", "MODELS", "TYPED_COLUMNS", "Limits", "get_model"]
