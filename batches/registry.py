"""The model registry: code, not database (DESIGN §5).

Each model declares its version, input limits, parameter schema, executor,
GPU, timeout, chunk size and its outputs with units and ranking direction.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from omtx_hub.errors import InvalidInput

Direction = Literal["higher", "lower", "none"]


@dataclass(frozen=True)
class OutputField:
    name: str
    label: str
    unit: str = ""
    direction: Direction = "none"
    kind: Literal["float", "int", "str", "bool"] = "float"
    # Mirrored into a typed, indexed Job column of the same name for fast ranking.
    column: bool = False
    description: str = ""


@dataclass(frozen=True)
class Param:
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    description: str = ""
    # For str parameters: a cap on length, so a pasted file cannot bloat every batch row.
    max_length: int | None = None

    def clean(self, name: str, value: Any) -> Any:
        if self.kind is bool:
            if not isinstance(value, bool):
                raise InvalidInput(f"Parameter {name!r} must be true or false.", details={name: value})
            return value
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInput(f"Parameter {name!r} must be an integer.", details={name: value})
        if self.kind is str and not isinstance(value, str):
            raise InvalidInput(f"Parameter {name!r} must be a string.", details={name: value})
        if self.kind is str and self.max_length is not None and len(value) > self.max_length:
            # The value is not echoed back: it is the thing that is too large.
            raise InvalidInput(
                f"Parameter {name!r} is longer than {self.max_length} characters.",
                details={name: f"{len(value)} characters"},
            )
        if self.choices and value not in self.choices:
            raise InvalidInput(f"Parameter {name!r} must be one of {list(self.choices)}.", details={name: value})
        if self.minimum is not None and value < self.minimum:
            raise InvalidInput(f"Parameter {name!r} must be at least {self.minimum}.", details={name: value})
        if self.maximum is not None and value > self.maximum:
            raise InvalidInput(f"Parameter {name!r} must be at most {self.maximum}.", details={name: value})
        return value


@dataclass(frozen=True)
class Limits:
    max_smiles_length: int = 1000
    max_heavy_atoms: int = 128
    # Counting hydrogens: Boltz-2's affinity head takes at most 128 atoms.
    max_total_atoms: int = 128
    min_protein_length: int = 10
    max_protein_length: int = 4000
    max_ligands: int = 100_000


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    title: str
    description: str
    executor: str
    gpu: str | None
    timeout_seconds: int
    chunk_size: int
    max_attempts: int
    params: dict[str, Param]
    outputs: tuple[OutputField, ...]
    default_rank: str
    limits: Limits = field(default_factory=Limits)
    # Estimated seconds of worker time per ligand, for the dry-run estimate.
    seconds_per_ligand: float = 1.0
    weights_revision: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """Outputs mirrored into typed Job columns."""
        return tuple(out.name for out in self.outputs if out.column)

    def output(self, name: str) -> OutputField:
        for out in self.outputs:
            if out.name == name:
                return out
        raise InvalidInput(
            f"Unknown metric {name!r} for model {self.name}.",
            code="unknown_metric",
            details={"metrics": [o.name for o in self.outputs if o.kind != "str"]},
        )

    def clean_params(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise InvalidInput(
                f"Unknown parameters for {self.name}: {', '.join(unknown)}.",
                code="unknown_parameter",
                details={"unknown": unknown, "allowed": sorted(self.params)},
            )
        return {
            name: param.clean(name, given[name]) if name in given else param.default
            for name, param in self.params.items()
        }
