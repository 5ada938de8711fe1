"""Liveness of the processes that serve no HTTP (dispatch, background, monitor).

Each loop calls `beat()` at the start of every pass: it touches OMTX_HEARTBEAT_FILE, so the
file's age is how long the current pass (and the pause before it) has lasted. The kubelet runs
`python -m omtx_hub.heartbeat --max-age N` (deploy/k8s) and restarts the container when the
file is older than N seconds or missing: a loop stuck in one pass (a call that never returns,
a pool that never shuts down) is restarted, where a crash would have been anyway.

The check imports no Django setup: it runs every probe period, and `manage.py` would cost
two seconds and 190 MB each time. It reads the path from the same environment variable the
settings do, so the probe cannot look at another file than the loop writes.
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

ENV_NAME = "OMTX_HEARTBEAT_FILE"


def beat() -> None:
    """Touch the heartbeat file; nothing when none is configured. A failed touch is logged,
    not raised: the loop's work goes on, and the probe restarts it if the file stays old."""
    path = settings.OMTX_HEARTBEAT_FILE
    if not path:
        return
    try:
        Path(path).touch()
    except OSError as exc:
        log.warning("heartbeat: cannot touch %s: %s", path, exc)


def problem(path: str, *, max_age: float, now: float) -> str | None:
    """Why the heartbeat at `path` is not fresh, or None when it is."""
    if not path:
        return f"{ENV_NAME} is not set"
    try:
        age = now - os.stat(path).st_mtime
    except OSError as exc:
        return f"no heartbeat: {exc}"
    if age > max_age:
        return f"{path} last beat {age:.0f} s ago (limit {max_age:g} s)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exit 1 when this container's loop has not beaten lately.")
    parser.add_argument("--max-age", type=float, required=True, help="seconds since the last beat")
    args = parser.parse_args(argv)
    found = problem(os.environ.get("OMTX_HEARTBEAT_FILE", ""), max_age=args.max_age, now=time.time())
    if found:
        print(f"heartbeat: {found}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
