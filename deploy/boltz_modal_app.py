"""The Boltz-2 Modal app. Deploy: `modal deploy deploy/boltz_modal_app.py` (docs/execution.md).

Deployed as a file, not as a module of the `batches` package: Modal mounts the entrypoint's
whole top-level package (modal/_utils/function_utils.py get_entrypoint_mount), which would ship
the Django code. Only the plain modules the container runs are added, file by file.

The hub looks the class up by name (settings OMTX_MODAL_APP / OMTX_MODAL_CLASS) and spawns
`predict_chunk`; retries are the hub's (per job, with backoff), so Modal retries none.
"""

import os
import traceback
from pathlib import Path
from typing import Any

import modal

APP_NAME = "omtx-boltz2"
CLASS_NAME = "Boltz2"
# Must equal batches/catalog.py BOLTZ2.version: the version recorded in every result (tested).
BOLTZ_VERSION = "2.2.1"
# The 40 GB card, named: plain "A100" lets Modal place the function on either size.
GPU = "A100-40GB"
# Modal kills a call at FUNCTION_TIMEOUT_SECONDS; the runner stops boltz CHUNK_MARGIN_SECONDS
# earlier, so ligands that finished are returned instead of lost with the call.
FUNCTION_TIMEOUT_SECONDS = 2100
CHUNK_MARGIN_SECONDS = 120
MAX_CONTAINERS = int(os.environ.get("OMTX_BOLTZ2_MAX_CONTAINERS", "10"))
# Keep a container (its copied weights, its page cache) for the next chunk for 5 minutes.
SCALEDOWN_SECONDS = 300

# Mount points; modal's signature wants str or PurePosixPath keys.
WEIGHTS_MOUNT = "/weights"
MSA_MOUNT = "/msa-cache"
LOCAL_CACHE = Path("/root/boltz-cache")
WORK_ROOT = Path("/tmp/omtx-chunks")

REPO = Path(__file__).resolve().parents[1]
SHIPPED = (
    "batches/__init__.py",
    "batches/engine/__init__.py",
    "batches/engine/types.py",
    "batches/engine/wire.py",
    "batches/engine/boltz_io.py",
    "batches/engine/boltz_outputs.py",
    "batches/engine/boltz_runner.py",
)


def _image() -> modal.Image:
    # boltz[cuda] brings the cuEquivariance kernels Boltz-2 uses by default (no --no_kernels).
    image = modal.Image.debian_slim(python_version="3.11").pip_install(f"boltz[cuda]=={BOLTZ_VERSION}")
    for relative in SHIPPED:
        image = image.add_local_file(REPO / relative, f"/root/{relative}")
    return image


app = modal.App(APP_NAME, image=_image())
weights = modal.Volume.from_name("omtx-boltz2-weights", create_if_missing=True)
msa_cache = modal.Volume.from_name("omtx-boltz2-msa", create_if_missing=True)


@app.function(volumes={WEIGHTS_MOUNT: weights}, timeout=3600)
def download_weights() -> list[str]:
    """Once per workspace: `modal run deploy/boltz_modal_app.py::download_weights`.
    Fetches what `boltz predict` would fetch on first use, into the volume."""
    # Installed in the image only. boltz 2.2.1 boltz/main.py: checkpoints and the CCD into `cache`.
    from boltz.main import download_boltz2  # type: ignore[import-not-found]

    download_boltz2(Path(WEIGHTS_MOUNT))
    weights.commit()
    return sorted(path.name for path in Path(WEIGHTS_MOUNT).iterdir())


@app.cls(
    gpu=GPU,
    volumes={WEIGHTS_MOUNT: weights, MSA_MOUNT: msa_cache},
    timeout=FUNCTION_TIMEOUT_SECONDS,
    startup_timeout=600,
    max_containers=MAX_CONTAINERS,
    scaledown_window=SCALEDOWN_SECONDS,
    retries=0,
)
class Boltz2:
    @modal.enter()
    def stage(self) -> None:
        """Once per container: the weights move from the volume to local disk, so every chunk
        this container runs reads them locally."""
        from batches.engine.boltz_runner import stage_weights

        stage_weights(Path(WEIGHTS_MOUNT), LOCAL_CACHE)

    @modal.method()
    def predict_chunk(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """One chunk in, one outcome per ligand out (batches/engine/wire.py).

        Any failure leaves as a plain RuntimeError: the hub treats Modal's own exception types
        as trouble on its link to Modal (and asks again), so a remote one must not look like them."""
        try:
            return self._predict(payload)
        except Exception as exc:
            traceback.print_exc()
            raise RuntimeError(f"boltz container failed: {type(exc).__name__}: {exc}") from None

    def _predict(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        from batches.engine.boltz_runner import predict_payload

        msa_cache.reload()  # see alignments other containers cached since this one started
        outcomes = predict_payload(
            payload,
            boltz_cmd=["boltz"],
            work_root=WORK_ROOT,
            msa_cache_dir=Path(MSA_MOUNT),
            weights_dir=LOCAL_CACHE,
            max_seconds=FUNCTION_TIMEOUT_SECONDS - CHUNK_MARGIN_SECONDS,
        )
        try:
            msa_cache.commit()
        except Exception:
            # A lost cache entry costs one MSA fetch later; the chunk's results are worth more.
            traceback.print_exc()
        return outcomes
