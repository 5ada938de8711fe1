"""The Modal executor: each chunk is one call of the deployed Boltz-2 app (deploy/boltz_modal_app.py).

submit → `modal.Cls.from_name(app, cls)().predict_chunk.spawn(payload)`, the call id being the
FunctionCall's object_id; poll → `modal.FunctionCall.from_id(id).get(timeout=0)`; cancel →
`FunctionCall.cancel()` (modal 1.x, https://modal.com/docs/guide/job-queue). Calls live in Modal,
not in this process, so the executor is durable: any dispatcher can poll any call id.

`modal` is imported only when an executor is built, so the hub starts without it.
"""

import importlib.util
import logging
import os
import sys
from types import ModuleType
from typing import Any

from django.conf import settings

from batches.engine import wire
from batches.engine.types import ChunkRequest, ExecutorUnavailable, PollResult

logger = logging.getLogger(__name__)

MODEL = "boltz2"
METHOD = "predict_chunk"


def modal_problem(model: str) -> str:
    """Why this deployment cannot send `model` to Modal, or "" when it can."""
    if model != MODEL:
        return f"the Modal app runs {MODEL} only"
    if not (settings.MODAL_TOKEN_ID and settings.MODAL_TOKEN_SECRET):
        return "MODAL_TOKEN_ID / MODAL_TOKEN_SECRET are not set"
    # find_spec, not import: the API process should not load the Modal client to answer a request.
    if "modal" not in sys.modules and importlib.util.find_spec("modal") is None:
        return "the modal package is not installed"
    return ""


def import_modal() -> ModuleType:
    """Import the Modal client, configured by the hub's settings only.

    modal reads ~/.modal.toml when first imported, unless MODAL_CONFIG_PATH points elsewhere
    (modal/config.py, "Meta-configuration"). Pointing it at an empty file keeps a developer's
    or operator's personal profile out of the hub; credentials are passed explicitly anyway."""
    if "modal" not in sys.modules:
        os.environ.setdefault("MODAL_CONFIG_PATH", os.devnull)
    try:
        import modal
        import modal.exception
    except ImportError as exc:
        raise ExecutorUnavailable("the modal package is not installed (see requirements/base.txt)") from exc
    return modal


class ModalExecutor:
    name = "modal"
    durable = True

    def __init__(self, *, token_id: str, token_secret: str, app_name: str, class_name: str) -> None:
        if not (token_id and token_secret):
            raise ExecutorUnavailable("the Modal executor needs MODAL_TOKEN_ID and MODAL_TOKEN_SECRET")
        self.app_name = app_name
        self.class_name = class_name
        self._credentials = (token_id, token_secret)
        self._modal = import_modal()
        self._client: Any = None
        self._method: Any = None

    @classmethod
    def from_settings(cls) -> "ModalExecutor":
        return cls(
            token_id=settings.MODAL_TOKEN_ID,
            token_secret=settings.MODAL_TOKEN_SECRET,
            app_name=settings.OMTX_MODAL_APP,
            class_name=settings.OMTX_MODAL_CLASS,
        )

    def client(self) -> Any:
        """One authenticated client, made on first use: `Client.from_credentials` is Modal's
        documented constructor for explicit tokens, and every lookup below receives it, so
        nothing falls back to `Client.from_env()` and its config file or environment."""
        if self._client is None:
            self._client = self._modal.Client.from_credentials(*self._credentials)
        return self._client

    def _predict_chunk(self) -> Any:
        if self._method is None:
            boltz = self._modal.Cls.from_name(self.app_name, self.class_name, client=self.client())
            self._method = getattr(boltz(), METHOD)
        return self._method

    def submit(self, request: ChunkRequest, *, timeout_seconds: int) -> str:
        if request.model != MODEL:
            raise ExecutorUnavailable(f"the Modal app runs {MODEL}, not {request.model}")
        payload = wire.request_to_payload(request, timeout_seconds=timeout_seconds)
        try:
            call = self._predict_chunk().spawn(payload)
        except (self._modal.exception.Error, OSError) as exc:
            # Not deployed, refused credentials, unreachable: the dispatcher fails the jobs
            # as executor_error and retries them with backoff.
            raise ExecutorUnavailable(f"Modal did not take the chunk: {describe(exc)}") from exc
        return str(call.object_id)

    def poll(self, call_id: str) -> PollResult:
        errors = self._modal.exception
        try:
            value = self._modal.FunctionCall.from_id(call_id, client=self.client()).get(timeout=0)
        except errors.OutputExpiredError:
            return _failed("executor_error", f"the result of Modal call {call_id} expired before it was collected")
        except errors.FunctionTimeoutError as exc:
            return _failed("timeout", f"the Modal function hit its timeout: {describe(exc)}")
        except TimeoutError:
            # modal raises the builtin TimeoutError when get(timeout=0) finds no output yet
            # (modal/_functions.py poll_function; modal-labs/modal-client#783, #1905).
            return PollResult("pending")
        except transient_errors(errors) as exc:
            # Our link to Modal failed, not the call: it runs on regardless. Failing its jobs
            # would run them twice and lose a result that may still arrive, so ask again later.
            logger.warning("Modal poll of %s failed, will retry: %s", call_id, describe(exc))
            return PollResult("pending", message=f"Modal unreachable, asking again later: {describe(exc)}")
        except errors.NotFoundError as exc:
            return _failed("executor_error", f"Modal knows no call {call_id}: {describe(exc)}")
        except errors.InputCancellation:
            return _failed("executor_error", f"Modal call {call_id} was cancelled")
        except Exception as exc:
            # Modal re-raises the remote function's exception here, whatever its type.
            return _failed("executor_error", f"the Boltz-2 function failed: {describe(exc)}")
        return _outcomes(call_id, value)

    def cancel(self, call_id: str) -> None:
        """Best effort: the jobs are already cancelled in the database, and a result that
        arrives anyway is refused by its conditional update. Failing here must not stop
        the dispatcher."""
        errors = self._modal.exception
        try:
            self._modal.FunctionCall.from_id(call_id, client=self.client()).cancel()
        except errors.NotFoundError:
            logger.info("Modal call %s is unknown: nothing to cancel", call_id)
        except (errors.Error, OSError) as exc:
            logger.warning("could not cancel Modal call %s: %s", call_id, describe(exc))

    def shutdown(self) -> None:
        client, self._client, self._method = self._client, None, None
        if client is not None:
            try:
                client.close()
            except (self._modal.exception.Error, OSError) as exc:
                logger.warning("closing the Modal client failed: %s", describe(exc))


def transient_errors(errors: ModuleType) -> tuple[type[BaseException], ...]:
    """Client-side failures of one request (modal/_grpc_client.py maps gRPC statuses to these;
    OSError for a socket failing outside Modal's own retries). A refused token is here too: it
    says nothing about the call, only about our access."""
    return (
        OSError,
        errors.ConnectionError,
        errors.ServiceError,
        errors.InternalError,
        errors.ResourceExhaustedError,
        errors.AuthError,
        errors.PermissionDeniedError,
        # Modal's own TimeoutError base (e.g. a client-side retry deadline); its subclasses
        # OutputExpiredError and FunctionTimeoutError are handled before this tuple is reached.
        errors.TimeoutError,
    )


def _outcomes(call_id: str, value: Any) -> PollResult:
    try:
        outcomes = wire.outcomes_from_payload(value)
    except ValueError as exc:
        return _failed("executor_error", f"Modal call {call_id} returned a malformed result: {exc}")
    return PollResult("done", outcomes=outcomes)


def _failed(reason: str, message: str) -> PollResult:
    return PollResult("error", failure_reason=reason, message=message[:1000])


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
