"""What gunicorn answers by itself, before Django: the API's envelope, not an HTML page
(omtx_hub/gunicorn_conf.py). The fuzzer's junk query strings passed gunicorn's request-line
limit, and a 400 in text/html broke the contract of every operation."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _send(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def served() -> Iterator[int]:
    """gunicorn with the hub's config, as the Procfile, the image and `make fuzz` start it."""
    port = _free_port()
    command = [sys.executable, "-m", "gunicorn", "--config", "python:omtx_hub.gunicorn_conf"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "omtx_hub.wsgi:application"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize(
    "raw,status",
    [
        (b"GET /api/v3/batches/?" + b"status=queued&" * 400 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /api/v3/batches/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"NOT A REQUEST LINE\r\n\r\n", 400),
    ],
)
def test_what_gunicorn_refuses_is_the_envelope(served: int, raw: bytes, status: int) -> None:
    head, _, body = _send(served, raw).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), lines[0]
    assert "Content-Type: application/json" in lines
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] in {"bad_request", "request_header_fields_too_large"}


def test_prometheus_files_of_dead_workers_are_handled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gunicorn's hooks: at start, files of processes gone are removed (a live one's stay);
    when a worker exits, its live gauges go (its counters stay in the sum)."""
    from omtx_hub import gunicorn_conf

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid, live_pid = int(dead.stdout), os.getpid()
    for name in (f"counter_{dead_pid}.db", f"counter_{live_pid}.db", f"gauge_livesum_{live_pid}.db"):
        (tmp_path / name).write_bytes(b"")
    gunicorn_conf.on_starting(None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{live_pid}.db", f"gauge_livesum_{live_pid}.db"]

    class Worker:
        pid = live_pid

    gunicorn_conf.child_exit(None, Worker())
    assert [p.name for p in tmp_path.iterdir()] == [f"counter_{live_pid}.db"]
