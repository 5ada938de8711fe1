"""A fake `modal` package: the slice of the modal 1.x client the executor uses, with its
documented behaviours, backed by a pretend workspace (FakeCloud).

- `Client.from_credentials(id, secret)`; lookups refuse to run without an explicit client.
- `Cls.from_name(app, cls, client=)()` → instance whose `predict_chunk.spawn(payload)` returns
  a FunctionCall with an `fc-…` object_id; an app that is not deployed raises NotFoundError.
- `FunctionCall.from_id(id, client=).get(timeout=0)`: the builtin TimeoutError while no output
  exists, OutputExpiredError once it expired, FunctionTimeoutError when the function timed out,
  the remote exception re-raised on failure, RemoteError after a cancellation.
- `FunctionCall.cancel()`: NotFoundError for an unknown id, a no-op after the result.
The exception classes mirror modal/exception.py's hierarchy.
"""

import itertools
import types
from dataclasses import dataclass, field
from typing import Any


def _exceptions() -> types.ModuleType:
    module = types.ModuleType("modal.exception")

    class Error(Exception):
        pass

    class TimeoutError(Error):  # modal's own name, shadowing the builtin there too
        pass

    names: dict[str, type[BaseException]] = {"Error": Error, "TimeoutError": TimeoutError}
    for name in ("OutputExpiredError", "FunctionTimeoutError"):
        names[name] = type(name, (TimeoutError,), {})
    for name in (
        "ConnectionError",
        "ServiceError",
        "InternalError",
        "ResourceExhaustedError",
        "AuthError",
        "PermissionDeniedError",
        "NotFoundError",
        "RemoteError",
        "ExecutionError",
        "InternalFailure",
    ):
        names[name] = type(name, (Error,), {})
    names["InputCancellation"] = type("InputCancellation", (BaseException,), {})
    for name, cls in names.items():
        setattr(module, name, cls)
    return module


@dataclass
class FakeCall:
    payload: dict[str, Any]
    # Consumed one per `get`: an exception instance to raise, or ("result", value).
    script: list[Any] = field(default_factory=list)
    result: Any = None
    finished: bool = False
    cancelled: bool = False
    gets: int = 0


@dataclass
class FakeCloud:
    deployed: set[tuple[str, str]] = field(default_factory=lambda: {("omtx-boltz2", "Boltz2")})
    calls: dict[str, FakeCall] = field(default_factory=dict)
    credentials: list[tuple[str, str]] = field(default_factory=list)
    # Raised by the next from_credentials / spawn / cancel, one per call.
    client_errors: list[BaseException] = field(default_factory=list)
    spawn_errors: list[BaseException] = field(default_factory=list)
    cancel_errors: list[BaseException] = field(default_factory=list)
    closed: int = 0
    ids: "itertools.count[int]" = field(default_factory=itertools.count)

    def finish(self, call_id: str, value: Any) -> None:
        call = self.calls[call_id]
        call.result, call.finished = value, True


def build(cloud: FakeCloud) -> types.ModuleType:
    modal = types.ModuleType("modal")
    errors = _exceptions()
    modal.exception = errors  # type: ignore[attr-defined]

    def need_client(client: Any) -> None:
        if not isinstance(client, Client):
            raise AssertionError("lookup without an explicit client would read ~/.modal.toml or the environment")

    class Client:
        def __init__(self, credentials: tuple[str, str]) -> None:
            self.credentials = credentials

        @classmethod
        def from_credentials(cls, token_id: str, token_secret: str) -> "Client":
            if cloud.client_errors:
                raise cloud.client_errors.pop(0)
            cloud.credentials.append((token_id, token_secret))
            return cls((token_id, token_secret))

        def close(self) -> None:
            cloud.closed += 1

    class FunctionCall:
        def __init__(self, object_id: str) -> None:
            self.object_id = object_id

        @classmethod
        def from_id(cls, function_call_id: str, client: Any = None) -> "FunctionCall":
            need_client(client)
            return cls(function_call_id)

        def get(self, timeout: float | None = None) -> Any:
            if timeout != 0:
                raise AssertionError("the executor must poll, never block: get(timeout=0)")
            call = _known(self.object_id)
            call.gets += 1
            if call.cancelled:
                raise errors.RemoteError("Function call was cancelled")  # TERMINATED, no data
            if call.script:
                step = call.script.pop(0)
                if isinstance(step, BaseException):
                    raise step
                return step[1]
            if not call.finished:
                raise TimeoutError()  # the builtin, as modal/_functions.py poll_function raises
            return call.result

        def cancel(self, terminate_containers: bool = False) -> None:
            if cloud.cancel_errors:
                raise cloud.cancel_errors.pop(0)
            call = _known(self.object_id)
            if not call.finished:
                call.cancelled = True

    def _known(call_id: str) -> FakeCall:
        if call_id not in cloud.calls:
            raise errors.NotFoundError(f"Function call {call_id} not found")
        return cloud.calls[call_id]

    class Method:
        def __init__(self, app: str, name: str) -> None:
            self.app, self.name = app, name

        def spawn(self, payload: dict[str, Any]) -> FunctionCall:
            if cloud.spawn_errors:
                raise cloud.spawn_errors.pop(0)
            if (self.app, self.name) not in cloud.deployed:
                raise errors.NotFoundError(f"Lookup failed for Cls '{self.name}' from the '{self.app}' app")
            call_id = f"fc-{next(cloud.ids):04d}"
            cloud.calls[call_id] = FakeCall(payload=payload)
            return FunctionCall(call_id)

    class Instance:
        def __init__(self, app: str, name: str) -> None:
            self.predict_chunk = Method(app, name)

    class Cls:
        def __init__(self, app: str, name: str) -> None:
            self.app, self.name = app, name

        @classmethod
        def from_name(
            cls, app_name: str, name: str, *, environment_name: str | None = None, client: Any = None
        ) -> "Cls":
            need_client(client)
            return cls(app_name, name)

        def __call__(self) -> Instance:
            return Instance(self.app, self.name)

    modal.Client = Client  # type: ignore[attr-defined]
    modal.Cls = Cls  # type: ignore[attr-defined]
    modal.FunctionCall = FunctionCall  # type: ignore[attr-defined]
    return modal
