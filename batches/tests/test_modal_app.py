"""The Modal app module: it builds under the pinned modal, agrees with the hub, ships what it runs."""

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from batches.catalog import BOLTZ2
from batches.engine import modal_executor
from batches.engine.boltz_runner import CCD_FILES, CHECKPOINTS, stage_weights

REPO = Path(__file__).resolve().parents[2]
APP_FILE = REPO / "deploy" / "boltz_modal_app.py"


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    # Importing builds the App, Image and Volume objects locally (no network): a wrong
    # decorator argument for this modal version fails here.
    spec = importlib.util.spec_from_file_location("boltz_modal_app", APP_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_app_matches_the_hub_settings_and_catalog(app_module: Any, settings: Any) -> None:
    assert BOLTZ2.version == app_module.BOLTZ_VERSION
    assert app_module.APP_NAME == settings.OMTX_MODAL_APP
    assert app_module.CLASS_NAME == settings.OMTX_MODAL_CLASS
    assert app_module.GPU == BOLTZ2.gpu == "A100-40GB"
    # The hub's per-attempt timeout must fit inside Modal's, margin included.
    assert BOLTZ2.timeout_seconds <= app_module.FUNCTION_TIMEOUT_SECONDS - app_module.CHUNK_MARGIN_SECONDS
    assert app_module.app.name == "omtx-boltz2"


def test_the_class_and_method_the_executor_looks_up_exist() -> None:
    tree = ast.parse(APP_FILE.read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    assert "Boltz2" in classes
    methods = {
        node.name: [ast.unparse(d) for d in node.decorator_list]
        for node in classes["Boltz2"].body
        if isinstance(node, ast.FunctionDef)
    }
    assert methods[modal_executor.METHOD] == ["modal.method()"]
    assert methods["stage"] == ["modal.enter()"]


def test_the_container_gets_every_hub_module_it_imports_and_no_django(app_module: Any) -> None:
    shipped = set(app_module.SHIPPED)
    for relative in shipped:
        path = REPO / relative
        assert path.is_file(), relative
        for module in _imports(path):
            assert not module.startswith(("django", "rest_framework", "omtx_hub")), (relative, module)
            if module.startswith("batches"):
                target = module.replace(".", "/")
                assert f"{target}.py" in shipped or f"{target}/__init__.py" in shipped, (relative, module)
    entry = {module for module in _imports(APP_FILE) if module.startswith("batches")}
    assert entry and all(f"{m.replace('.', '/')}.py" in shipped for m in entry)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names if node.module == "batches.engine"}
    return found


def test_the_hub_starts_without_importing_modal() -> None:
    # The whole URL tree (API, services, availability, the executor module) loads, and `modal`
    # is still not imported: the hub runs where the Modal client is absent or unconfigured.
    code = (
        "import sys, django; django.setup(); import omtx_hub.urls, batches.engine.modal_executor; "
        "from batches.engine.availability import check_executor; from batches.catalog import BOLTZ2; "
        "print(sorted(m for m in sys.modules if m == 'modal' or m.startswith('modal.')))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "omtx_hub.settings", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_stage_weights_copies_checkpoints_and_links_the_ccd(tmp_path: Path) -> None:
    volume, local = tmp_path / "volume", tmp_path / "local"
    (volume / "mols").mkdir(parents=True)
    for name in CHECKPOINTS:
        (volume / name).write_bytes(name.encode())
    (volume / "mols.tar").write_bytes(b"tar")
    stage_weights(volume, local)
    for name in CHECKPOINTS:
        assert (local / name).read_bytes() == name.encode() and not (local / name).is_symlink()
    for name in CCD_FILES:
        assert (local / name).is_symlink() and (local / name).resolve() == (volume / name)
    stage_weights(volume, local)  # a second container start on the same disk is fine


def test_stage_weights_refuses_an_empty_volume(tmp_path: Path) -> None:
    (tmp_path / "volume").mkdir()
    with pytest.raises(RuntimeError, match="download_weights") as caught:
        stage_weights(tmp_path / "volume", tmp_path / "local")
    for name in (*CHECKPOINTS, *CCD_FILES):
        assert name in str(caught.value)
