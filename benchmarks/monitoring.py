"""What the health selectors and readiness cost, against the database DATABASE_URL names.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_mon .venv/bin/python benchmarks/monitoring.py

Migrates that database, seeds `--batches` active batches of `--ligands` ligands each through
the hub's own submission service (one user), partly claims them so some jobs are in flight,
times each selector (median of `--repeat` calls), then deletes what it seeded. The request,
cache and limiter figures come from other layers and are not timed here.
"""

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omtx_hub.settings")

import django

django.setup()

import argparse  # noqa: E402

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from batches.engine.dispatcher import Dispatcher  # noqa: E402
from batches.engine.local import LocalExecutor  # noqa: E402
from batches.services.submission import Submission, batch_create  # noqa: E402
from batches.validation.ligands import raw_from_json  # noqa: E402
from monitoring import health, readiness  # noqa: E402

TARGET = "MENFQKVEKIGEGTYGVVYKARNKLTGEVVALKKIRLDTETEGVPSTAIREISLLKELNHPNIVKLLDVIHTENKLYLVFEFLHQDLKK"


def timed(fn: Callable[[], Any], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000


def seed(user: User, batches: int, ligands: int) -> None:
    carbon = [{"name": f"c{i}", "smiles": "C" * (i % 30 + 1) + "O" * (i // 30 + 1)} for i in range(ligands)]
    for n in range(batches):
        submission = Submission(
            name=f"bench {n}", model="ligand-profile", protein_sequence=TARGET, ligands=raw_from_json(carbon)
        )
        batch_create(owner=user, submission=submission)
    Dispatcher(executors={"local": LocalExecutor(workers=0)}).claim()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--ligands", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user = User.objects.create_user(f"bench-monitor-{os.getpid()}")
    try:
        seed(user, args.batches, args.ligands)
        now = timezone.now
        readiness._migrations_clean = False
        first = timed(readiness.check_migrations, 1)
        rows = {
            "readiness: migrations, first probe (plan computed)": first,
            "readiness: migrations, later probes (remembered)": timed(readiness.check_migrations, args.repeat),
            "readiness: database": timed(readiness.check_database, args.repeat),
            "readiness: executor": timed(readiness.check_executor, args.repeat),
            "health: system_health": timed(health.system_health, args.repeat),
            "health: batch_health": timed(lambda: health.batch_health(now=now()), args.repeat),
            "health: executor_health": timed(lambda: health.executor_health(now=now()), args.repeat),
        }
        state = health.executor_health(now=now())
        print(
            f"{args.batches} active batches × {args.ligands} ligands; in flight {state['in_flight']}, "
            f"queued {state['queue_depth']} ({django.db.connection.vendor})"
        )
        for name, ms in rows.items():
            print(f"{name:55} {ms:8.2f} ms")
    finally:
        user.delete()


if __name__ == "__main__":
    main()
