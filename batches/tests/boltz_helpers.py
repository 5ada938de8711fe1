"""Driving the fake `boltz` command (fake_boltz.py) from tests."""

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from batches.catalog import BOLTZ2
from batches.engine.types import ChunkRequest, JobInput

FAKE_BOLTZ = Path(__file__).with_name("fake_boltz.py")
TARGET = "MSEQNNTEMTFQIQRIYTKDISFEAPNAPHVFQKDWLEELLKRADAGENVVFNGSQLGSRVRE"
OTHER_TARGET = "MKVLAAGIVGLLLAGCSSSKEETSTPAPATEQAPAVEQKAEPAAKDAVTAEKTTEPAK"


class FakeBoltz:
    """The command line of the fake, and its control file."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.control_path = root / "fake_boltz.json"
        self.argv_log = root / "argv.jsonl"
        self.pid_file = root / "hung_child.pid"
        self.control: dict[str, Any] = {"argv_log": str(self.argv_log), "pid_file": str(self.pid_file)}
        self._save()
        monkeypatch.setenv("FAKE_BOLTZ_CONTROL", str(self.control_path))
        self.cmd = [sys.executable, str(FAKE_BOLTZ)]

    def set(self, **fields: Any) -> None:
        self.control.update(fields)
        self._save()

    def runs(self) -> list[list[str]]:
        if not self.argv_log.exists():
            return []
        return [json.loads(line) for line in self.argv_log.read_text().splitlines()]

    def _save(self) -> None:
        self.control_path.write_text(json.dumps(self.control))


def params(**overrides: Any) -> dict[str, Any]:
    return BOLTZ2.clean_params(overrides)


def chunk(*smiles: str, sequence: str = TARGET, **overrides: Any) -> ChunkRequest:
    jobs = tuple(JobInput(f"0000-job-{i}", f"ligand {i}", s) for i, s in enumerate(smiles))
    return ChunkRequest(model="boltz2", target_sequence=sequence, params=params(**overrides), jobs=jobs)
