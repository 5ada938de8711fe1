from django.conf import settings

from batches.engine.local import LOCAL_RUNNERS
from batches.registry import ModelSpec
from omtx_hub.errors import Unavailable


def check_executor(spec: ModelSpec) -> None:
    """Refuse a batch no dispatcher could run, instead of leaving it queued forever."""
    if spec.executor == "local" and spec.name in LOCAL_RUNNERS:
        return
    if spec.executor == "modal":
        configured = bool(settings.MODAL_TOKEN_ID and settings.MODAL_TOKEN_SECRET)
        raise Unavailable(
            f"{spec.name} runs on Modal GPUs, and this deployment cannot dispatch to Modal yet"
            + ("" if configured else " (MODAL_TOKEN_ID / MODAL_TOKEN_SECRET are not set)")
            + ". Use model ligand-profile, or a hub with the Modal executor.",
            code="model_unavailable",
        )
    raise Unavailable(f"The {spec.executor} executor cannot run {spec.name}.", code="model_unavailable")
