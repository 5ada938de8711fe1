"""The Modal executor against a fake `modal` package (fake_modal.py) injected into sys.modules."""

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batches.engine import wire
from batches.engine.boltz_runner import predict_payload
from batches.engine.modal_executor import ModalExecutor, modal_problem
from batches.engine.types import ChunkRequest, ExecutorUnavailable, JobOutcome
from batches.tests.boltz_helpers import TARGET, FakeBoltz, chunk
from batches.tests.fake_modal import FakeCloud

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def executor(cloud: FakeCloud, configured: None) -> ModalExecutor:
    return ModalExecutor.from_settings()


def errors() -> Any:
    """The exception classes of the fake modal now in sys.modules."""
    return sys.modules["modal"].exception


def outcome_payloads(request: ChunkRequest, *, failed: int = -1) -> list[dict[str, Any]]:
    """What the Modal function returns for `request`: every job ok but the `failed`-th."""
    outcomes = [
        JobOutcome(
            j.job_id,
            ok=True,
            metrics={"affinity_pred_value": -1.0},
            artifact_name=f"{j.job_id}.cif",
            artifact_content=b"data_x\n",
        )
        if i != failed
        else JobOutcome(j.job_id, ok=False, failure_reason="out_of_memory", message="skipped")
        for i, j in enumerate(request.jobs)
    ]
    return [wire.outcome_to_payload(o) for o in outcomes]


def test_without_tokens_the_executor_cannot_be_built(cloud: FakeCloud, settings: Any) -> None:
    settings.MODAL_TOKEN_ID = ""
    settings.MODAL_TOKEN_SECRET = ""
    with pytest.raises(ExecutorUnavailable, match="MODAL_TOKEN_ID"):
        ModalExecutor.from_settings()
    with pytest.raises(ExecutorUnavailable, match="MODAL_TOKEN_SECRET"):
        ModalExecutor(token_id="ak", token_secret="", app_name="a", class_name="C")
    assert cloud.credentials == []


def test_modal_problem_names_what_is_missing(settings: Any) -> None:
    settings.MODAL_TOKEN_ID = ""
    settings.MODAL_TOKEN_SECRET = ""
    assert "MODAL_TOKEN_ID" in modal_problem("boltz2")
    settings.MODAL_TOKEN_ID = "ak"
    settings.MODAL_TOKEN_SECRET = "as"
    assert modal_problem("boltz2") == ""
    assert "boltz2 only" in modal_problem("ligand-profile")


def test_submit_spawns_the_json_payload_with_explicit_credentials(executor: ModalExecutor, cloud: FakeCloud) -> None:
    request = chunk("CCO", "CCN")
    call_id = executor.submit(request, timeout_seconds=1800)
    assert call_id == "fc-0000" and list(cloud.calls) == [call_id]
    assert cloud.calls[call_id].payload == wire.request_to_payload(request, timeout_seconds=1800)
    executor.submit(chunk("CCC"), timeout_seconds=1800)
    assert cloud.credentials == [("ak-test", "as-test")]  # one client, made from the settings


def test_submit_of_another_model_is_refused(executor: ModalExecutor) -> None:
    request = chunk("CCO")
    other = ChunkRequest("ligand-profile", TARGET, {}, request.jobs)
    with pytest.raises(ExecutorUnavailable, match="runs boltz2"):
        executor.submit(other, timeout_seconds=60)


def test_an_app_that_is_not_deployed_is_unavailable(cloud: FakeCloud, configured: None, settings: Any) -> None:
    settings.OMTX_MODAL_APP = "not-deployed"
    with pytest.raises(ExecutorUnavailable, match="Lookup failed"):
        ModalExecutor.from_settings().submit(chunk("CCO"), timeout_seconds=60)


@pytest.mark.parametrize("error", ["ConnectionError", "AuthError", "ServiceError"])
def test_a_refused_or_failed_spawn_is_unavailable(executor: ModalExecutor, cloud: FakeCloud, error: str) -> None:
    cloud.spawn_errors.append(getattr(errors(), error)("nope"))
    with pytest.raises(ExecutorUnavailable, match=f"{error}: nope"):
        executor.submit(chunk("CCO"), timeout_seconds=60)
    assert cloud.calls == {}


def test_an_unreachable_modal_at_first_submit_is_unavailable(executor: ModalExecutor, cloud: FakeCloud) -> None:
    cloud.client_errors.append(errors().ConnectionError("Could not connect to the Modal server."))
    with pytest.raises(ExecutorUnavailable, match="Could not connect"):
        executor.submit(chunk("CCO"), timeout_seconds=60)
    assert executor.submit(chunk("CCO"), timeout_seconds=60)  # the next attempt builds the client again


def test_a_call_without_output_is_pending(executor: ModalExecutor, cloud: FakeCloud) -> None:
    call_id = executor.submit(chunk("CCO"), timeout_seconds=60)
    result = executor.poll(call_id)
    assert (result.state, result.message, result.outcomes) == ("pending", "", ())
    assert cloud.calls[call_id].gets == 1


def test_transient_errors_are_pending_then_the_result_arrives(executor: ModalExecutor, cloud: FakeCloud) -> None:
    request = chunk("CCO", "CCN")
    call_id = executor.submit(request, timeout_seconds=60)
    ex = errors()
    cloud.calls[call_id].script = [
        ex.ConnectionError("connection reset"),
        ex.ServiceError("UNAVAILABLE"),
        ex.ResourceExhaustedError("rate limited"),
        ex.AuthError("token expired"),
        OSError("network unreachable"),
        ("result", outcome_payloads(request, failed=1)),
    ]
    for expected in ("connection reset", "UNAVAILABLE", "rate limited", "token expired", "network unreachable"):
        result = executor.poll(call_id)
        assert result.state == "pending" and expected in result.message
        assert result.failure_reason == ""
    done = executor.poll(call_id)
    assert done.state == "done"
    first, second = done.outcomes
    assert first.ok and first.artifact_content == b"data_x\n" and first.metrics == {"affinity_pred_value": -1.0}
    assert (second.ok, second.failure_reason, second.message) == (False, "out_of_memory", "skipped")


def test_a_function_timeout_fails_the_call_as_timeout(executor: ModalExecutor, cloud: FakeCloud) -> None:
    call_id = executor.submit(chunk("CCO"), timeout_seconds=60)
    cloud.calls[call_id].script = [errors().FunctionTimeoutError("Function timed out after 2100 s")]
    result = executor.poll(call_id)
    assert (result.state, result.failure_reason) == ("error", "timeout")
    assert "2100" in result.message


def test_an_expired_output_is_an_executor_error_that_says_so(executor: ModalExecutor, cloud: FakeCloud) -> None:
    call_id = executor.submit(chunk("CCO"), timeout_seconds=60)
    cloud.calls[call_id].script = [errors().OutputExpiredError()]
    result = executor.poll(call_id)
    assert (result.state, result.failure_reason) == ("error", "executor_error")
    assert "expired" in result.message


@pytest.mark.parametrize(
    "exception,words",
    [
        (RuntimeError("boltz container failed: ValueError: bad payload"), "bad payload"),
        ("RemoteError", "RemoteError"),
        ("InternalFailure", "InternalFailure"),
        ("ExecutionError", "ExecutionError"),
    ],
)
def test_a_failed_call_is_an_executor_error(
    executor: ModalExecutor, cloud: FakeCloud, exception: Any, words: str
) -> None:
    call_id = executor.submit(chunk("CCO"), timeout_seconds=60)
    error = getattr(errors(), exception)("remote trouble") if isinstance(exception, str) else exception
    cloud.calls[call_id].script = [error]
    result = executor.poll(call_id)
    assert (result.state, result.failure_reason) == ("error", "executor_error")
    assert words in result.message


@pytest.mark.parametrize("value", [None, {"outcomes": []}, [{"version": 99}], [{"version": 1, "job_id": "x"}]])
def test_a_malformed_result_never_reaches_the_jobs(executor: ModalExecutor, cloud: FakeCloud, value: Any) -> None:
    call_id = executor.submit(chunk("CCO"), timeout_seconds=60)
    cloud.finish(call_id, value)
    result = executor.poll(call_id)
    assert (result.state, result.failure_reason) == ("error", "executor_error")
    assert "malformed" in result.message


def test_an_unknown_call_id_is_an_executor_error(executor: ModalExecutor) -> None:
    result = executor.poll("fc-unknown")
    assert (result.state, result.failure_reason) == ("error", "executor_error")
    assert "knows no call fc-unknown" in result.message


def test_another_dispatcher_adopts_a_call_by_its_id(executor: ModalExecutor, cloud: FakeCloud) -> None:
    request = chunk("CCO")
    call_id = executor.submit(request, timeout_seconds=60)
    executor.shutdown()  # the first dispatcher is gone
    assert cloud.closed == 1
    cloud.finish(call_id, outcome_payloads(request))
    adopter = ModalExecutor.from_settings()
    assert adopter.durable
    assert adopter.poll(call_id).state == "done"


def test_cancel_of_a_call_never_spawned_is_harmless(executor: ModalExecutor, caplog: Any) -> None:
    with caplog.at_level(logging.INFO):
        executor.cancel("fc-never")
    assert "nothing to cancel" in caplog.text


def test_cancel_while_running_stops_the_call(executor: ModalExecutor, cloud: FakeCloud) -> None:
    call_id = executor.submit(chunk("CCO"), timeout_seconds=60)
    executor.cancel(call_id)
    assert cloud.calls[call_id].cancelled
    result = executor.poll(call_id)
    assert (result.state, result.failure_reason) == ("error", "executor_error")


def test_cancel_after_the_result_changes_nothing(executor: ModalExecutor, cloud: FakeCloud) -> None:
    request = chunk("CCO")
    call_id = executor.submit(request, timeout_seconds=60)
    cloud.finish(call_id, outcome_payloads(request))
    executor.cancel(call_id)
    assert not cloud.calls[call_id].cancelled
    assert executor.poll(call_id).state == "done"


def test_a_failed_cancel_is_logged_not_raised(executor: ModalExecutor, cloud: FakeCloud, caplog: Any) -> None:
    call_id = executor.submit(chunk("CCO"), timeout_seconds=60)
    cloud.cancel_errors.append(errors().ConnectionError("connection reset"))
    with caplog.at_level(logging.WARNING):
        executor.cancel(call_id)
    assert "could not cancel" in caplog.text and "connection reset" in caplog.text
    assert not cloud.calls[call_id].cancelled


def test_a_chunk_goes_through_modal_and_the_container_code(
    executor: ModalExecutor, cloud: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boltz = FakeBoltz(tmp_path, monkeypatch)
    boltz.set(ligands={"CCN": "oom"})
    request = chunk("CCO", "CCN", use_msa=False)
    call_id = executor.submit(request, timeout_seconds=60)
    returned = predict_payload(
        cloud.calls[call_id].payload,
        boltz_cmd=boltz.cmd,
        work_root=tmp_path / "chunks",
        msa_cache_dir=tmp_path / "msa",
        weights_dir=None,
        max_seconds=60,
    )
    cloud.finish(call_id, returned)
    result = executor.poll(call_id)
    assert result.state == "done"
    ok, oom = result.outcomes
    assert ok.ok and ok.artifact_name == f"{request.jobs[0].job_id}.cif"
    assert b"fake model for CCO" in ok.artifact_content
    assert ok.metrics["pic50"] == 7.25
    assert (oom.ok, oom.failure_reason) == (False, "out_of_memory")


def test_the_hub_never_reads_the_users_modal_config(tmp_path: Path) -> None:
    # A corrupt ~/.modal.toml makes `import modal` raise, unless MODAL_CONFIG_PATH points elsewhere.
    (tmp_path / ".modal.toml").write_text("this is [not toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env |= {"HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    code = "from batches.engine.modal_executor import import_modal; import_modal(); print('imported')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "imported", done.stderr[-2000:]
    control = [sys.executable, "-c", "import modal"]
    assert subprocess.run(control, env=env, capture_output=True, timeout=120).returncode != 0
