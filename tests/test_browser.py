"""The live pages in a real browser: headless Chromium (Debian's, driven by Selenium through
Debian's chromedriver, so nothing is downloaded) against the hub run as real processes:
daphne serving omtx_hub.asgi and `manage.py dispatch` with the local CPU executor, on a
database of the test's own (a SQLite file, or a PostgreSQL database created and dropped here
when DATABASE_URL is set; REDIS_URL is passed through).

A scientist logs in, submits a small batch through the submission page, lands on the batch
page and watches the progress bar reach 100 % and the results table fill, with no reload.
Screenshots of the batch page and the monitoring dashboard go to OMTX_TEST_ARTIFACTS
(default var/test-artifacts/browser/). In CI (CI=true) a missing Chromium fails the test.
"""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("OMTX_TEST_ARTIFACTS", REPO / "var" / "test-artifacts" / "browser"))
SHARED_DATA = Path(os.environ.get("OMTX_SHARED_DATA", REPO.parent / "shared" / "data"))
LIGANDS = 8
SCIENTIST = ("scientist", "pw-scientist-123")
OPERATOR = ("operator", "pw-operator-123")
WAIT_SECONDS = 45


def _missing(what: str) -> None:
    """In CI a missing browser is a failure; on a laptop without one, a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} must be available in CI")
    pytest.skip(f"{what} not available")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: "subprocess.Popen[bytes]", log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the server did not listen on {port}:\n{log.read_text()[-3000:]}")


@dataclass
class Database:
    """The environment a hub of the test's own runs on, and how to drop it."""

    env: dict[str, str]
    drop: Callable[[], None]


def _database(var_dir: Path) -> Database:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return Database({"OMTX_VAR_DIR": str(var_dir)}, lambda: None)
    import psycopg

    name = f"omtx_browser_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return Database({"OMTX_VAR_DIR": str(var_dir), "DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}"))}, drop)


@dataclass
class Hub:
    url: str
    logs: list[Path]

    def tails(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in self.logs if log.exists())


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("browser-hub")
    database = _database(root / "var")
    env = {
        **os.environ,
        **database.env,
        "DEBUG": "true",  # the pages' static files come from the staticfiles app
        "ENVIRONMENT": "development",
        "PROMETHEUS_MULTIPROC_DIR": str(root / "prometheus"),
        "RATE_LIMIT_SCALE": "1000",
        "RATE_LIMIT_QUOTAS_ENABLED": "false",
        "OMTX_EXECUTOR_WORKERS": "1",
        # Below the test's batch: its dry run and its submission take the large-input path
        # (202, validated by the background worker), and its export is built as a file.
        "OMTX_INLINE_VALIDATION_LIGANDS": str(LIGANDS - 3),
        "OMTX_VALIDATION_WORKERS": "0",
        "OMTX_EXPORT_INLINE_ROWS": str(LIGANDS - 3),
        "PYTHONUNBUFFERED": "1",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=120)
        users = (
            "from django.contrib.auth.models import User;"
            f"User.objects.create_user({SCIENTIST[0]!r}, password={SCIENTIST[1]!r});"
            f"User.objects.create_superuser({OPERATOR[0]!r}, password={OPERATOR[1]!r})"
        )
        subprocess.run([*manage, "shell", "-c", users], cwd=REPO, env=env, check=True, timeout=60)
        port = _free_port()
        logs = [root / "daphne.log", root / "dispatch.log", root / "background.log"]
        commands = [
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "omtx_hub.asgi:application"],
            [*manage, "dispatch", "--interval", "0.2"],
            [*manage, "background", "--interval", "0.2"],
        ]
        for command, log in zip(commands, logs, strict=True):
            with log.open("wb") as out:
                processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT))
        _wait_for_port(port, processes[0], logs[0])
        yield Hub(f"http://127.0.0.1:{port}", logs)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        database.drop()


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    return tmp_path / "downloads"


@pytest.fixture
def browser(downloads: Path) -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        _missing(f"{CHROMIUM} and {CHROMEDRIVER}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,1000"):
        options.add_argument(argument)
    # Service given explicitly: selenium-manager never runs, so nothing is downloaded.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _log_in(driver: Any, hub: Hub, username: str, password: str, then: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{hub.url}/account/login/?next={then}")
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit].primary").click()
    _until(driver, lambda d: urlsplit(d.current_url).path == then, f"logged in at {then}")


def _until(driver: Any, condition: Callable[[Any], Any], what: str, hub: Hub | None = None) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.2).until(condition)
    except TimeoutException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "failure.png"))
        console = [entry["message"] for entry in driver.get_log("browser")]
        pytest.fail(f"timed out waiting for {what}; console: {console}\n{hub.tails() if hub else ''}")


def _ligand_lines(count: int) -> str:
    """`SMILES name` lines, as a scientist pastes them (the file is `name<TAB>SMILES`)."""
    rows = (SHARED_DATA / "ligands" / "cdk2_zinc.smi").read_text().splitlines()[:count]
    return "\n".join(f"{smiles} {name}" for name, smiles in (row.split() for row in rows))


def _screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.set_window_size(1366, max(1000, driver.execute_script("return document.body.scrollHeight") + 40))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def test_submit_and_watch_a_batch_fill_in_live(browser: Any, hub: Hub, downloads: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    _log_in(driver, hub, *SCIENTIST, then="/batches/")
    driver.get(f"{hub.url}/batches/new/")
    driver.find_element(By.ID, "name").send_keys("browser test")
    driver.find_element(By.ID, "demo-target").click()
    driver.find_element(By.ID, "smiles").send_keys(_ligand_lines(LIGANDS))
    driver.find_element(By.ID, "validate-button").click()
    _until(driver, lambda d: d.find_element(By.ID, "report-accepted").text == str(LIGANDS), "the report", hub)
    assert driver.find_element(By.ID, "report-rejected").text == "0"
    # Above the inline limit, the page polled the dry run the validation answered 202 with.
    assert "GET /api/v3/batches/validations/" in hub.logs[0].read_text()
    _screenshot(driver, "submission-page.png")
    driver.find_element(By.ID, "confirm-button").click()
    _until(driver, lambda d: re.search(r"/batches/[0-9a-f-]{36}/$", d.current_url), "the batch page", hub)

    # Set once the batch page has loaded: a reload would lose both.
    driver.execute_script("window.omtxTestMarker = 'no reload'")
    origin = driver.execute_script("return performance.timeOrigin")

    def filled(d: Any) -> bool:
        done = d.find_element(By.ID, "progress-bar").get_attribute("value") in ("100", "100.0")
        rows = d.find_elements(By.CSS_SELECTOR, "#results-body tr[data-status=succeeded]")
        return done and len(rows) == LIGANDS

    _until(driver, filled, "100 % and every result", hub)
    assert driver.execute_script("return window.omtxTestMarker") == "no reload"
    assert driver.execute_script("return performance.timeOrigin") == origin
    assert driver.find_element(By.ID, "live-state").get_attribute("data-state") == "live"
    assert driver.find_element(By.ID, "batch-status").text == "completed"
    # Read in one script: the page redraws the table whole, which would stale held elements.
    ranks = driver.execute_script(
        "return [...document.querySelectorAll('#results-body tr td:first-child')].map((td) => td.textContent)"
    )
    assert ranks == [str(n) for n in range(1, LIGANDS + 1)]
    assert len(driver.find_elements(By.CSS_SELECTOR, "#histogram rect.bar")) > 0
    _screenshot(driver, "batch-page.png")

    # The export button: built as a file in the background (the batch is above the inline
    # export threshold here), then downloaded.
    driver.find_element(By.CSS_SELECTOR, "a[data-export=csv]").click()
    _until(driver, lambda d: list(downloads.glob("batch-*.csv")), "the CSV download", hub)
    assert len(next(downloads.glob("batch-*.csv")).read_text().splitlines()) == LIGANDS + 1


def test_dashboard_for_staff(browser: Any, hub: Hub) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    _log_in(driver, hub, *OPERATOR, then="/monitoring/")
    _until(driver, lambda d: d.find_element(By.ID, "live-state").get_attribute("data-state") == "live", "live", hub)
    # Two pushes at least, so the charts draw a line over time.
    _until(driver, lambda d: "2 points" in d.find_element(By.ID, "chart-rate-caption").text, "two pushes", hub)
    assert driver.find_elements(By.CSS_SELECTOR, "#system dd")
    _screenshot(driver, "dashboard.png")


def test_a_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        _missing("chromium")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        _missing("chromium")
