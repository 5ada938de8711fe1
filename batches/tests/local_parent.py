"""A dispatcher stand-in for the die-with-parent test: starts a LocalExecutor
whose workers hang, then polls until it is killed.

    python -m batches.tests.local_parent PID_DIR
"""

import sys
import time

from batches.engine.local import LOCAL_RUNNERS, LocalExecutor
from batches.engine.types import ChunkRequest, JobInput
from batches.tests.local_runners import scripted

WORKERS = 2


def main(pid_dir: str) -> None:
    LOCAL_RUNNERS["scripted"] = scripted
    executor = LocalExecutor(WORKERS)
    call_ids = [
        executor.submit(
            ChunkRequest("scripted", "", {"pid_dir": pid_dir}, (JobInput(f"hang-{n}", "", "hang"),)),
            timeout_seconds=600,
        )
        for n in range(WORKERS)
    ]
    while True:
        for call_id in call_ids:
            executor.poll(call_id)
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1])
