from batches.engine.local import LOCAL_RUNNERS
from batches.engine.modal_executor import modal_problem
from batches.registry import ModelSpec
from omtx_hub.errors import Unavailable


def check_executor(spec: ModelSpec) -> None:
    """Refuse a batch no dispatcher could run, instead of leaving it queued forever."""
    if spec.executor == "local" and spec.name in LOCAL_RUNNERS:
        return
    if spec.executor == "modal":
        problem = modal_problem(spec.name)
        if not problem:
            return
        raise Unavailable(
            f"{spec.name} runs on Modal GPUs, and this deployment cannot dispatch to Modal: {problem}. "
            "Use model ligand-profile, or a hub with the Modal executor configured.",
            code="model_unavailable",
            details={"reason": problem},
        )
    raise Unavailable(f"The {spec.executor} executor cannot run {spec.name}.", code="model_unavailable")
