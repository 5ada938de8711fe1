"""Submitting 10,000 and 100,000 ligands under the production processes, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/submit.py [--sizes N,M]

Creates (and drops afterwards) a scratch database `omtx_bench_submit`, starts the web server
as deploy/Procfile does (gunicorn, its config, 3 workers, 30 s timeout) and the background
worker (`manage.py background`, one validation process per core), then for each size POSTs
that many distinct drug-like ligands as JSON and measures: the answer's time and status
(target 202 in ≤ 1.5 s for 10k, ≤ 3 s for 100k), the time until the batch is `queued` (target
≤ 15 s for 10k, ≤ 60 s for 100k on 2 cores), and each web worker's peak and resident memory
(target ≤ 300 MB peak, back near its baseline afterwards). The machine is shared: compare
numbers within one run.
"""

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scratch import scratch_database  # noqa: E402

SCRATCH = "omtx_bench_submit"
PORT = 8765
TARGETS = {10_000: (1.5, 15.0), 100_000: (3.0, 60.0)}
MEMORY_TARGET_MB = 300
CDK2 = (
    "MENFQKVEKIGEGTYGVVYKARNKLTGEVVALKKIRLDTETEGVPSTAIREISLLKELNHPNIVKLLDVIHTENKLYLVFEFLHQDLKKFMDASALTGIPLPLIKSYLF"
    "QLLQGLAFCHSHRVLHRDLKPQNLLINTEGAIKLADFGLARAFGVPVRTYTHEVVTLWYRAPEILLGCKYYSTAVDIWSLGCIFAEMVTRRALFPGDSEIDQLFRIFRTLG"
    "TPDEVVWPGVTSMPDYKPSFPKWARQDFSKVVPPLDEDGRSLLSQMLHYDPNKRISAKAALAHPFFQDVTKPVPHLRL"
)
# Chains bonded through a sulfonyl to each ChEMBL ligand's first atom: 15 heads × 16 lengths ×
# the file's distinct ligands are 100,000 distinct valid molecules of the real ones' kind. The
# heads are different molecules (a leading `C(C)` would just be a longer chain); the sulfonyl
# keeps the products distinct (without it, a chain one carbon longer on a ligand one carbon
# shorter is the same molecule); ligands the file names twice, as tautomers, go first.
HEADS = ("", "O", "N", "F", "Cl", "S", "CC(C)", "C(F)(F)", "C=C", "C#C", "NC(=O)", "OC(=O)", "C(=O)", "OC(C)", "NC(C)")
LINK = "S(=O)(=O)"
PREFIXES = [head + "C" * n + LINK for head in HEADS for n in range(1, 17)]


def ligands(n: int) -> list[dict[str, str]]:
    from rdkit import Chem

    from batches.validation.rdkit_log import rdkit_messages

    lines = (REPO.parent / "shared" / "data" / "ligands" / "chembl2321810.smi").read_text().splitlines()
    bases: dict[str, str] = {}
    # RDKit's complaints about the file's header line are captured, not printed (and RDKit's
    # log is left as it was: test_scale.py calls this in the test process).
    with rdkit_messages():
        for line in lines:
            mol = (
                Chem.MolFromSmiles("C" + LINK + line.split()[0]) if line.strip() and not line.startswith("#") else None
            )
            if mol is not None:
                bases.setdefault(Chem.MolToInchiKey(mol)[:14], line.split()[0])
    pairs = ((p, b) for b in bases.values() for p in PREFIXES)
    return [{"name": f"l{i}", "smiles": p + b} for i, (p, b) in zip(range(n), pairs, strict=False)]


def environment(url: str) -> dict[str, str]:
    return {
        **os.environ,
        # The Procfile's `gunicorn` and `python` are this interpreter's.
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "omtx_hub.settings",
        "ENVIRONMENT": "production",
        # Served over plain HTTP on localhost, with no TLS proxy in front (docs/security.md).
        "SECURE_SSL_REDIRECT": "false",
        # One client polls (or submits) far past a scientist's limits: the limiter stays on, its
        # limits ×1000, and quotas off, so the endpoint is measured, not a wall of 429s.
        "RATE_LIMIT_SCALE": "1000",
        "RATE_LIMIT_QUOTAS_ENABLED": "false",
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }


def setup(url: str) -> str:
    """Migrate the scratch database and return an API token for a fresh user."""
    env = environment(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    code = (
        "from django.contrib.auth.models import User;"
        "from accounts.services import token_create;"
        "u=User.objects.create_user('bench', password='x' * 20);"
        "print(token_create(user=u, name='bench')[1])"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def procfile(name: str, url: str, **env: str) -> subprocess.Popen[bytes]:
    """One process of deploy/Procfile, as a platform would start it."""
    lines = (REPO / "deploy" / "Procfile").read_text().splitlines()
    command = next(line for line in lines if line.startswith(f"{name}:")).split(":", 1)[1].strip()
    environ = {**environment(url), "PORT": str(PORT), **env}
    return subprocess.Popen(["sh", "-c", command], cwd=REPO, env=environ, start_new_session=True)


def workers(server: subprocess.Popen[bytes]) -> list[int]:
    """The gunicorn workers: gunicorn processes of the server's session whose parent is the master."""
    session = subprocess.run(["pgrep", "-s", str(server.pid)], capture_output=True, text=True).stdout.split()

    def gunicorn(pid: int) -> bool:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "gunicorn"

    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    found = [int(pid) for pid in session]
    return sorted(pid for pid in found if gunicorn(pid) and gunicorn(parent(pid)))


def stop(*processes: subprocess.Popen[bytes]) -> None:
    """SIGTERM to each process group, as a supervisor stops them; then wait."""
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def request(method: str, path: str, token: str, body: object | None = None) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def wait_for_server(token: str) -> None:
    for _ in range(100):
        try:
            request("GET", "/api/v3/models", token)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the web server did not start")


def measure(size: int, token: str, server: subprocess.Popen[bytes]) -> None:
    body = {
        "name": f"bench {size}",
        "protein_sequence": CDK2,
        "ligands": ligands(size),
        "options": {"conformer": False},
    }
    pids = workers(server)
    before = sum(memory_mb(pid)[0] for pid in pids)
    started = time.perf_counter()
    status, answer = request("POST", "/api/v3/batches/", token, body)
    answered = time.perf_counter() - started
    # Read at once: the worker that took a large body is replaced after it (gunicorn_conf).
    peak = max((memory_mb(pid)[1] for pid in pids if Path(f"/proc/{pid}").exists()), default=0.0)
    batch = str(answer.get("id"))
    state = answer.get("status")
    while state == "validating":
        time.sleep(0.25)
        state = request("GET", f"/api/v3/batches/{batch}/status", token)[1]["status"]
    queued = time.perf_counter() - started
    _, detail = request("GET", f"/api/v3/batches/{batch}", token)
    after = sum(memory_mb(pid)[0] for pid in workers(server))
    answer_target, queued_target = TARGETS.get(size, (3.0, 60.0))
    validation = detail.get("validation", {})
    assert isinstance(validation, dict)
    print(
        f"\n{size:,} ligands: HTTP {status} in {answered:.2f} s (target ≤ {answer_target} s) "
        f"{'PASS' if status == 202 and answered <= answer_target else 'FAIL'}"
    )
    print(
        f"  {state} after {queued:.1f} s (target ≤ {queued_target} s) {'PASS' if queued <= queued_target else 'FAIL'}: "
        f"{validation.get('accepted')} accepted, {validation.get('rejected')} rejected"
    )
    print(
        f"  web workers: resident {before:.0f} → {after:.0f} MB in all; the busiest's peak {peak:.0f} MB "
        f"(target ≤ {MEMORY_TARGET_MB}) {'PASS' if peak <= MEMORY_TARGET_MB else 'FAIL'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    with scratch_database(SCRATCH) as url:
        token = setup(url)
        server = procfile("web", url)
        worker = procfile("background", url)
        try:
            wait_for_server(token)
            # Warm: each worker has imported RDKit and answered a submission before the baseline.
            for _ in range(6):
                request("POST", "/api/v3/batches/", token, {"protein_sequence": CDK2, "ligands": ligands(600)[::100]})
            for size in map(int, args.sizes.split(",")):
                measure(size, token, server)
        finally:
            stop(server, worker)


if __name__ == "__main__":
    main()
