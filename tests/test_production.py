"""The production path as the image runs it, without Docker (issue 11).

One hub is built the way the Dockerfile builds it and started the way deploy/Procfile starts
it: `collectstatic` into a fresh STATIC_ROOT, gunicorn with the hub's config under
ENVIRONMENT=production on a fresh database (an SQLite file, or a fresh PostgreSQL database
when the suite runs on PostgreSQL). Before the release step its readiness is recorded; then
the release step runs and the tests ask the running server.
"""

import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
PROCFILE = REPO / "deploy" / "Procfile"
# Swagger UI's files, as drf-spectacular-sidecar ships them (omtx_hub/api_docs.py).
SWAGGER_ASSETS = (
    "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
    "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
    "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
)
# The shell's environment passes through only for what finds programs and libraries.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "REDIS_URL")
YEAR = 365 * 24 * 3600


def procfile() -> dict[str, str]:
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name] = command.strip()
    return entries


def procfile_command(name: str, port: int | None = None) -> list[str]:
    """A Procfile line as argv, its `${PORT:-N}` given `port`, its program from this venv."""
    command = procfile()[name]
    if port is not None:
        command = re.sub(r"\$\{PORT:-\d+\}", str(port), command)
    argv = shlex.split(command)
    program = Path(sys.executable).parent / argv[0]
    argv[0] = str(program) if program.exists() else sys.executable if argv[0] == "python" else argv[0]
    return argv


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Hub:
    port: int
    env: dict[str, str]
    static_root: Path
    log: Path
    before_release: dict[str, Response] = field(default_factory=dict)

    def get(self, path: str, **headers: str) -> Response:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # nosec B310: a local http URL
                return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "manage.py", *args], self.env)


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def production_env(tmp: Path, database_url: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(
        ENVIRONMENT="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP on localhost, no TLS proxy in front (docs/security.md).
        SECURE_SSL_REDIRECT="false",
        DATABASE_URL=database_url,
        OMTX_VAR_DIR=str(tmp / "var"),
        STATIC_ROOT=str(tmp / "static"),
        LOG_FORMAT="json",
        DJANGO_SETTINGS_MODULE="omtx_hub.settings",
        # The suite's relaxed limiter (conftest.py), for the few requests sent here.
        RATE_LIMIT_SCALE="1000",
    )
    return env


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database nothing has migrated: an SQLite file, or a new PostgreSQL database on the
    server the suite runs on."""
    suite_url = os.environ.get("DATABASE_URL", "")
    if not suite_url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'hub.sqlite3'}"
        return
    import psycopg

    name = f"omtx_release_{secrets.token_hex(4)}"
    server = urlsplit(suite_url)
    admin = urlunsplit(server._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(server._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for_http(hub: Hub, server: subprocess.Popen[bytes]) -> None:
    """gunicorn's master listens before a worker has imported the hub: wait for an answer."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the web process exited ({server.returncode}): {hub.log.read_text()[-3000:]}")
        try:
            hub.get("/health")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    pytest.fail("the web process did not answer within 90 s")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("production")
    env = production_env(tmp, database_url)
    collected = run([sys.executable, "manage.py", "collectstatic", "--noinput"], env)
    assert collected.returncode == 0, collected.stderr
    hub = Hub(free_port(), env, tmp / "static", tmp / "web.log")
    with hub.log.open("wb") as log:
        server = subprocess.Popen(
            procfile_command("web", hub.port), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_http(hub, server)
        hub.before_release = {path: hub.get(path) for path in ("/health", "/health/ready")}
        release = run(["sh", "-c", procfile()["release"].replace("python ", f"{sys.executable} ")], env)
        assert release.returncode == 0, release.stdout + release.stderr
        yield hub
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_before_the_release_step_the_process_is_alive_but_not_ready(hub: Hub) -> None:
    assert hub.before_release["/health"].status == 200
    ready = hub.before_release["/health/ready"]
    assert ready.status == 503
    body = ready.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["migrations"] == {"ok": False, "state": "pending"}
    # The anonymous probe sees the state word; the operator reads the names in the log.
    log = hub.log.read_text()
    assert re.search(r"migrations unapplied \(run `manage.py migrate`\): [^\n]*accounts\.0001_initial", log), log


def test_after_the_release_step_the_hub_is_ready(hub: Hub) -> None:
    ready = hub.get("/health/ready")
    assert ready.status == 200, ready.body
    assert ready.json()["checks"]["migrations"] == {"ok": True, "state": "ok"}


def test_the_api_answers_a_token_after_the_release_step(hub: Hub) -> None:
    made = hub.manage("create_token", "operator", "--create-user")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    root = hub.get("/api/v3/", Authorization=f"Bearer {token}", Accept="application/json")
    assert root.status == 200, root.body
    assert root.json()["version"] == "v3"
    batches = hub.get("/api/v3/batches/", Authorization=f"Bearer {token}", Accept="application/json")
    assert batches.status == 200, batches.body
    assert hub.get("/api/v3/batches/", Accept="application/json").status == 401


def test_the_admin_stylesheet_is_served_with_caching_headers(hub: Hub) -> None:
    plain = hub.get("/static/admin/css/base.css")
    assert plain.status == 200
    assert plain.headers["content-type"].startswith("text/css")
    assert "max-age=" in plain.headers["cache-control"]
    hashed = hub.get("/static/" + manifest(hub)["admin/css/base.css"])
    # The hashed copy has its url() references rewritten to hashed names too.
    assert hashed.status == 200 and hashed.body.startswith(b"/*")
    assert hashed.headers["cache-control"] == f"max-age={10 * YEAR}, public, immutable"


def test_static_files_are_served_compressed_to_clients_that_accept_it(hub: Hub) -> None:
    answer = hub.get("/static/" + manifest(hub)["admin/css/base.css"], **{"Accept-Encoding": "gzip"})
    assert answer.status == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in answer.headers["vary"].lower()


def test_the_swagger_ui_page_links_hashed_assets_that_are_served(hub: Hub) -> None:
    page = hub.get("/api/v3/docs/")
    assert page.status == 200
    html = page.body.decode()
    hashed = manifest(hub)
    for asset in SWAGGER_ASSETS:
        url = f"/static/{hashed[asset]}"
        assert url in html, f"{url} not linked from the docs page"
        answer = hub.get(url)
        assert answer.status == 200, url
        assert answer.headers["cache-control"].endswith("immutable"), url


def test_a_static_file_that_was_not_collected_is_404(hub: Hub) -> None:
    assert hub.get("/static/admin/css/no-such-file.css").status == 404


def test_the_image_healthcheck_passes_against_the_running_web_process(hub: Hub) -> None:
    # The production hub allows 127.0.0.1 here; the check sends the first allowed host.
    checked = run([sys.executable, "deploy/healthcheck.py"], {**hub.env, "PORT": str(hub.port)})
    assert checked.returncode == 0, checked.stderr
    refused = run([sys.executable, "deploy/healthcheck.py"], {**hub.env, "PORT": str(free_port())})
    assert refused.returncode == 1


def test_the_healthcheck_names_a_host_the_hub_accepts() -> None:
    sys.path.insert(0, str(REPO / "deploy"))
    try:
        from healthcheck import host_header
    finally:
        sys.path.remove(str(REPO / "deploy"))
    assert host_header("hub.example.org,10.0.0.1") == "hub.example.org"
    assert host_header(".example.org, *, api.example.org") == "api.example.org"
    assert host_header("*") == "localhost"


def test_production_logs_are_json_lines(hub: Hub) -> None:
    records = [json.loads(line) for line in hub.log.read_text().splitlines() if line.startswith("{")]
    assert any(record["logger"] == "monitoring.readiness" for record in records)
    # Cloud Logging files a line by `severity`; without it, stderr lines are all ERROR.
    assert all(record["severity"] == record["level"] for record in records)


def manifest(hub: Hub) -> dict[str, str]:
    paths: dict[str, str] = json.loads((hub.static_root / "staticfiles.json").read_text())["paths"]
    return paths


@pytest.mark.parametrize("process", ["web", "websockets", "dispatch"])
def test_without_a_secret_key_production_refuses_to_start(tmp_path: Path, process: str) -> None:
    env = production_env(tmp_path, f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    del env["SECRET_KEY"]
    started = subprocess.run(
        procfile_command(process, free_port()), cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert started.returncode != 0
    assert "SECRET_KEY is not set: ENVIRONMENT=production refuses to start" in started.stdout + started.stderr


def test_a_block_table_not_yet_migrated_leaves_requests_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Redis, a new hub's first request copies the blocks table to Redis; before the
    release step there is no table. The request is answered (liveness 200, readiness 503:
    the test above on PostgreSQL and Redis) and the copy is asked for again."""
    from django.db import ProgrammingError

    from ratelimit import blocks

    class Backend:
        due = True

        def blocked_until(self, ip: str) -> float | None:
            return None

        def take_restore_due(self) -> bool:
            due, self.due = self.due, False
            return due

        def restore_later(self) -> None:
            self.due = True

    def missing_table() -> int:
        raise ProgrammingError('relation "ratelimit_blockedip" does not exist')

    backend = Backend()
    monkeypatch.setattr(blocks, "get_backend", lambda: backend)
    monkeypatch.setattr(blocks, "_table_held", False)
    monkeypatch.setattr(blocks, "republish_blocks", missing_table)
    assert blocks.blocked_until("203.0.113.9") is None
    assert backend.due


def test_check_deploy_is_silent_under_the_kubernetes_production_configuration(tmp_path: Path) -> None:
    """The production overlay's ConfigMap, with the Secret's keys filled, passes the release
    step's `check --deploy` (omtx_hub/tests/test_security_settings.py checks the minimal set)."""
    from tests.test_manifests import of_kind, render, secret_template

    [config] = of_kind(render("production"), "ConfigMap").values()
    secrets_filled = dict.fromkeys(secret_template()["stringData"], "")
    secrets_filled |= {"SECRET_KEY": secrets.token_urlsafe(50), "METRICS_TOKEN": secrets.token_urlsafe(32)}
    secrets_filled |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'hub.sqlite3'}"}
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ and name != "REDIS_URL"}
    env |= config["data"] | secrets_filled | {"OMTX_POD_IP": "10.4.0.7", "OMTX_VAR_DIR": str(tmp_path / "var")}
    env |= {"STATIC_ROOT": str(tmp_path / "static"), "DJANGO_SETTINGS_MODULE": "omtx_hub.settings"}
    done = run([sys.executable, "manage.py", "check", "--deploy"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "System check identified no issues (0 silenced).", done.stdout + done.stderr


def test_log_file_gets_the_same_lines_as_the_console(tmp_path: Path) -> None:
    log = tmp_path / "hub.log"
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env |= {"LOG_FILE": str(log), "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "omtx_hub.settings"}
    code = "import django, logging; django.setup(); logging.getLogger('omtx.deploy').warning('to both')"
    done = run([sys.executable, "-c", code], env)
    assert done.returncode == 0, done.stderr
    [line] = [json.loads(text) for text in log.read_text().splitlines()]
    assert (line["logger"], line["message"]) == ("omtx.deploy", "to both")
    assert json.loads(done.stderr.strip().splitlines()[-1]) == line
