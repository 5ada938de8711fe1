"""The loops' liveness (review finding 8): dispatch, background and monitor touch the
heartbeat file every pass, and the probe's check fails on a file that is stale or missing.
tests/test_manifests.py runs the probe commands the manifests declare."""

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from batches.background import loop as background
from batches.engine import loop as engine
from batches.engine.dispatcher import Dispatcher
from batches.engine.local import LocalExecutor
from monitoring.management.commands.monitor import Command as MonitorCommand
from monitoring.tests.fakes import FakeSources, fake_sources_fixture  # noqa: F401
from omtx_hub import heartbeat

LONG_AGO = 1_000_000.0  # an mtime in January 1970


@pytest.fixture
def heartbeat_file(settings: Any, tmp_path: Path) -> Path:
    path = tmp_path / "heartbeat"
    settings.OMTX_HEARTBEAT_FILE = str(path)
    return path


def make_stale(path: Path) -> None:
    os.utime(path, (LONG_AGO, LONG_AGO))


def beaten_since(path: Path, started: float) -> bool:
    # A second of slack: some filesystems keep coarse mtimes.
    return path.exists() and path.stat().st_mtime >= started - 1


# --- the loops beat every pass ---
# Each test runs two passes and makes the file stale after the first: only a beat in the
# second pass (not one before the loop) leaves it fresh.


def test_the_dispatch_loop_beats_every_pass(db: None, heartbeat_file: Path) -> None:
    dispatcher = Dispatcher(executors={"local": LocalExecutor(0)})
    stop = threading.Event()
    passes: list[int] = []
    real_pass = dispatcher.run_once

    def run_once() -> int:
        moved = real_pass()
        passes.append(moved)
        if len(passes) == 1:
            make_stale(heartbeat_file)
        else:
            stop.set()
        return moved

    dispatcher.run_once = run_once  # type: ignore[method-assign]
    started = time.time()
    engine.serve(dispatcher, stop=stop, interval=0)
    assert len(passes) == 2
    assert beaten_since(heartbeat_file, started)


def test_the_background_loop_beats_every_pass(db: None, heartbeat_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    passes: list[bool] = []
    real_pass = background.run_once

    def run_once() -> bool:
        passes.append(real_pass())
        if len(passes) == 1:
            make_stale(heartbeat_file)
        else:
            stop.set()
        return False

    monkeypatch.setattr(background, "run_once", run_once)
    started = time.time()
    background.serve(stop=stop, interval=0)
    assert len(passes) == 2
    assert beaten_since(heartbeat_file, started)


def test_the_monitor_loop_beats_every_evaluation(
    db: None, heartbeat_file: Path, fake_sources: FakeSources, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = MonitorCommand()
    command.stop = threading.Event()
    evaluations: list[Any] = []

    def run_once(*, now: Any) -> Any:
        # A failing evaluation must end the loop too (interval 0 would spin), and fail below.
        evaluations.append(None)
        if len(evaluations) == 1:
            make_stale(heartbeat_file)
        else:
            command.stop.set()
        evaluations[-1] = MonitorCommand.run_once(command, now=now)
        return evaluations[-1]

    monkeypatch.setattr(command, "run_once", run_once)
    # On PostgreSQL it would close the test's own connection, in its transaction.
    monkeypatch.setattr("monitoring.management.commands.monitor.close_old_connections", lambda: None)
    started = time.time()
    command.serve(interval=0)
    assert len(evaluations) == 2 and None not in evaluations
    assert beaten_since(heartbeat_file, started)


# --- beat ---


def test_beat_writes_nothing_when_no_file_is_configured(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.OMTX_HEARTBEAT_FILE = ""
    touched: list[str] = []
    monkeypatch.setattr(heartbeat, "Path", touched.append)
    heartbeat.beat()
    assert touched == []


def test_a_beat_that_cannot_write_is_logged_not_raised(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings.OMTX_HEARTBEAT_FILE = str(tmp_path / "missing-directory" / "heartbeat")
    heartbeat.beat()
    assert "heartbeat: cannot touch" in caplog.text


# --- the probe's check ---


def test_the_check_passes_on_a_fresh_beat(heartbeat_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    heartbeat.beat()
    monkeypatch.setenv("OMTX_HEARTBEAT_FILE", str(heartbeat_file))
    assert heartbeat.main(["--max-age", "300"]) == 0


def test_the_check_fails_on_a_stale_beat(
    heartbeat_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    heartbeat.beat()
    now = heartbeat_file.stat().st_mtime
    os.utime(heartbeat_file, (now - 301, now - 301))
    monkeypatch.setenv("OMTX_HEARTBEAT_FILE", str(heartbeat_file))
    assert heartbeat.main(["--max-age", "300"]) == 1
    assert "last beat 3" in capsys.readouterr().err
    # The limit is the one given: the same file is fresh enough for a longer one.
    assert heartbeat.main(["--max-age", "600"]) == 0


def test_the_check_fails_on_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMTX_HEARTBEAT_FILE", str(tmp_path / "never-written"))
    assert heartbeat.main(["--max-age", "300"]) == 1


def test_the_check_fails_when_no_file_is_configured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A probe without the variable must not pass: it would watch nothing."""
    monkeypatch.delenv("OMTX_HEARTBEAT_FILE", raising=False)
    assert heartbeat.main(["--max-age", "300"]) == 1
    assert "OMTX_HEARTBEAT_FILE is not set" in capsys.readouterr().err


def test_the_age_is_measured_against_the_clock() -> None:
    assert heartbeat.problem("/dev/null", max_age=5, now=os.stat("/dev/null").st_mtime + 4) is None
    assert heartbeat.problem("/dev/null", max_age=5, now=os.stat("/dev/null").st_mtime + 6) is not None
