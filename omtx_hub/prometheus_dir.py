"""Where this host's processes keep their Prometheus values (multiprocess mode), read without
Django's settings: gunicorn's master uses it before any worker loads them."""

import os
import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
FILE = re.compile(r"[a-z_]+_(\d+)\.db")


def multiproc_dir() -> Path:
    """PROMETHEUS_MULTIPROC_DIR, else `prometheus/` in the hub's VAR_DIR (as settings.py has it)."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("OMTX_VAR_DIR", str(BASE_DIR / "var"))) / "prometheus"


def clear_dead(directory: Path) -> list[Path]:
    """Remove the value files of processes no longer running; returns them. Those of live
    processes (a dispatcher started before this server) stay: they are still counting."""
    removed = []
    for path in directory.glob("*.db"):
        match = FILE.fullmatch(path.name)
        if match is None or _alive(int(match.group(1))):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
