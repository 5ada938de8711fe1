"""A fake `boltz` command: the documented Boltz 2.2.1 CLI surface and output layout, no GPU.

Run as `python fake_boltz.py predict <input dir> [options]`, exactly as the runner runs the
real one. It mirrors what the runner relies on: click-style refusal of unknown options, one
record per YAML named after its stem, the `boltz_results_<input>` layout, skip-and-continue
lines for inputs it cannot use, the MSA server only with --use_msa_server, existing
predictions kept without --override, and the affinity stage crashing on a record with no
structure (boltz/data/module/inferencev2.py load_input, jwohlwend/boltz#402).

Behaviour comes from the JSON file named by $FAKE_BOLTZ_CONTROL:
    {"ligands": {"<smiles>": "<mode>"}, "run": "ok|crash|crash_oom|hang", "msa": "ok|fail",
     "values": {"<smiles>": {"affinity": {...}, "confidence": {...}}},
     "argv_log": "<file: one JSON argv per run>", "pid_file": "<file: pid of a hung child>"}
Ligand modes: ok, invalid, tokenizer, oom, affinity_oom, no_affinity, no_cif,
no_confidence, bad_json, nan, out_of_range, hang (in the structure stage, after the ligands
before it), affinity_hang (in the affinity stage, after the affinities before it).
"""

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

INT_OPTIONS = {
    "--recycling_steps",
    "--sampling_steps",
    "--diffusion_samples",
    "--sampling_steps_affinity",
    "--diffusion_samples_affinity",
    "--seed",
    "--devices",
    "--num_workers",
    "--max_parallel_samples",
}
VALUE_OPTIONS = {"--out_dir", "--cache", "--output_format", "--accelerator", "--msa_server_url"}
FLAGS = {"--use_msa_server", "--use_potentials", "--affinity_mw_correction", "--override", "--no_kernels"}
AFFINITY = {
    "affinity_pred_value": -1.25,
    "affinity_probability_binary": 0.81,
    "affinity_pred_value1": -1.1,
    "affinity_probability_binary1": 0.79,
    "affinity_pred_value2": -1.4,
    "affinity_probability_binary2": 0.83,
}
CONFIDENCE = {
    "confidence_score": 0.87,
    "ptm": 0.9,
    "iptm": 0.85,
    "ligand_iptm": 0.82,
    "protein_iptm": 0.0,
    "complex_plddt": 0.88,
    "complex_iplddt": 0.86,
    "complex_pde": 0.51,
    "complex_ipde": 1.22,
    "chains_ptm": {"0": 0.9, "1": 0.8},
    "pair_chains_iptm": {"0": {"0": 0.9, "1": 0.82}, "1": {"0": 0.8, "1": 0.8}},
}


def main(argv: list[str]) -> int:
    control = _control()
    if control.get("argv_log"):
        with open(control["argv_log"], "a") as log:
            log.write(json.dumps(argv) + "\n")
    if not argv or argv[0] != "predict":
        print("Usage: boltz [OPTIONS] COMMAND [ARGS]...", file=sys.stderr)
        return 2
    try:
        data, options = _parse(argv[1:])
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if control.get("run") == "hang":
        _hang(control)
    try:
        predict(data, options, control)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def _control() -> dict[str, Any]:
    path = os.environ.get("FAKE_BOLTZ_CONTROL")
    return json.loads(Path(path).read_text()) if path else {}


def _parse(args: list[str]) -> tuple[Path, dict[str, Any]]:
    options: dict[str, Any] = {"--out_dir": "./", "--output_format": "mmcif"}
    data: Path | None = None
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg in FLAGS:
            options[arg] = True
        elif arg in INT_OPTIONS or arg in VALUE_OPTIONS:
            if not rest:
                raise ValueError(f"Option '{arg}' requires an argument.")
            options[arg] = int(rest.pop(0)) if arg in INT_OPTIONS else rest.pop(0)
        elif arg.startswith("-"):
            raise ValueError(f"No such option: {arg}")
        elif data is None:
            data = Path(arg)
        else:
            raise ValueError(f"Got unexpected extra argument ({arg})")
    if data is None or not data.exists():
        raise ValueError(f"Invalid value for 'DATA': Path '{data}' does not exist.")
    if options["--output_format"] not in ("pdb", "mmcif"):
        raise ValueError("Invalid value for '--output_format'")
    return data, options


def _hang(control: dict[str, Any]) -> None:
    # A child in the same process group: the runner must kill the group, not just us.
    sys.stdout.flush()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    if control.get("pid_file"):
        Path(control["pid_file"]).write_text(str(child.pid))
    time.sleep(600)


def predict(data: Path, options: dict[str, Any], control: dict[str, Any]) -> None:
    out = Path(options["--out_dir"]) / f"boltz_results_{data.stem}"
    out.mkdir(parents=True, exist_ok=True)
    for path in data.iterdir():
        if path.is_dir() or path.suffix.lower() not in (".yaml", ".yml", ".fa", ".fasta"):
            raise RuntimeError(f"Unable to parse filetype {path.suffix}, please provide a .fasta or .yaml file.")
    records = out / "processed" / "records"
    done = {p.stem for p in records.glob("*.json")} if records.exists() else set()
    records.mkdir(parents=True, exist_ok=True)
    for path in sorted(data.iterdir()):
        if path.stem not in done:
            _process(path, out, options, control)
    manifest = [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]
    _structures(manifest, out, options, control)
    if control.get("run") == "crash":
        raise RuntimeError("simulated crash in the structure stage")
    if control.get("run") == "crash_oom":
        raise RuntimeError("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    _affinities(manifest, out, options, control)


def _process(path: Path, out: Path, options: dict[str, Any], control: dict[str, Any]) -> None:
    try:
        record = _record(path, out, options, control)
    except Exception as exc:
        print(f"Failed to process {path}. Skipping. Error: {exc}.")
        return
    (out / "processed" / "records" / f"{path.stem}.json").write_text(json.dumps(record))


def _record(path: Path, out: Path, options: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if doc.get("version", 1) != 1:
        raise ValueError(f"Invalid version {doc['version']} in input!")
    protein = next(s["protein"] for s in doc["sequences"] if "protein" in s)
    ligand = next(s["ligand"] for s in doc["sequences"] if "ligand" in s)
    binder = doc["properties"][0]["affinity"]["binder"]
    if binder != ligand["id"]:
        raise ValueError(f"Could not find binder with name {binder} in the input!")
    if _mode(control, ligand["smiles"]) == "invalid":
        raise ValueError(f"Failed to parse SMILES {ligand['smiles']}")
    msa = protein.get("msa")
    if msa is None:
        _fetch_msa(path, out, options, control, protein["sequence"])
    elif msa != "empty":
        if not Path(msa).exists():
            raise FileNotFoundError(f"MSA file {msa} not found.")
        if Path(msa).suffix not in (".a3m", ".csv"):
            raise RuntimeError(f"MSA file {msa} not supported, only a3m or csv.")
    return {"id": path.stem, "smiles": ligand["smiles"], "chain": protein["id"], "msa": msa}


def _fetch_msa(path: Path, out: Path, options: dict[str, Any], control: dict[str, Any], sequence: str) -> None:
    if not options.get("--use_msa_server"):
        raise RuntimeError("Missing MSA's in input and --use_msa_server flag not set.")
    print(f"Generating MSA for {path} with 1 protein entities.")
    print(f"Calling MSA server for target {path.stem} with 1 sequences")
    if control.get("msa") == "fail":
        raise RuntimeError("MMseqs2 API is giving errors. Please confirm your input is a valid protein sequence.")
    msa_dir = out / "msa"
    (msa_dir / f"{path.stem}_0_unpaired_tmp").mkdir(parents=True, exist_ok=True)
    (msa_dir / f"{path.stem}_0_unpaired_tmp" / "uniref.a3m").write_text(f">101\n{sequence}\n")
    (msa_dir / f"{path.stem}_0.csv").write_text(f"key,sequence\n-1,{sequence}\n-1,{sequence.lower()}\n")


def _structures(manifest: list[dict[str, Any]], out: Path, options: dict[str, Any], control: dict[str, Any]) -> None:
    predictions = out / "predictions"
    existing = {p.name for p in predictions.iterdir()} if predictions.exists() else set()
    todo = [r for r in manifest if options.get("--override") or r["id"] not in existing]
    if todo:
        print(f"Running structure prediction for {len(todo)} input{'s' if len(todo) > 1 else ''}.")
    for record in todo:
        mode = _mode(control, record["smiles"])
        if mode == "hang":
            _hang(control)
        elif mode == "oom":
            print("| WARNING: ran out of memory, skipping batch")
        elif mode == "tokenizer":
            print(f"Tokenizer failed on {record['id']} with error boom. Skipping.")
        else:
            _write_structure(record, predictions / record["id"], mode, control)


def _write_structure(record: dict[str, Any], folder: Path, mode: str, control: dict[str, Any]) -> None:
    name = record["id"]
    folder.mkdir(parents=True, exist_ok=True)
    if mode != "no_cif":
        (folder / f"{name}_model_0.cif").write_text(f"data_{name}\n# fake model for {record['smiles']}\n")
    if mode != "no_confidence":
        confidence = {**CONFIDENCE, **_values(control, record["smiles"], "confidence")}
        (folder / f"confidence_{name}_model_0.json").write_text(json.dumps(confidence, indent=4))
    (folder / f"pre_affinity_{name}.npz").write_bytes(b"fake npz")
    (folder / f"plddt_{name}_model_0.npz").write_bytes(b"fake npz")


def _affinities(manifest: list[dict[str, Any]], out: Path, options: dict[str, Any], control: dict[str, Any]) -> None:
    print("\nPredicting property: affinity\n")
    predictions = out / "predictions"
    for record in manifest:
        name = record["id"]
        target = predictions / name / f"affinity_{name}.json"
        if target.exists() and not options.get("--override"):
            continue
        staged = predictions / name / f"pre_affinity_{name}.npz"
        if not staged.exists():
            raise FileNotFoundError(f"[Errno 2] No such file or directory: '{staged}'")
        mode, values = _mode(control, record["smiles"]), _values(control, record["smiles"], "affinity")
        _write_affinity(target, mode, values, control)


def _write_affinity(target: Path, mode: str, overrides: dict[str, Any], control: dict[str, Any]) -> None:
    if mode == "affinity_hang":
        _hang(control)
    elif mode == "affinity_oom":
        print("| WARNING: ran out of memory, skipping batch")
    elif mode == "bad_json":
        target.write_text('{"affinity_pred_value": -1.2, ')
    elif mode != "no_affinity":
        values: dict[str, Any] = {**AFFINITY, **overrides}
        if mode == "nan":
            values["affinity_pred_value"] = float("nan")
        if mode == "out_of_range":
            values["affinity_probability_binary"] = 1.7
        target.write_text(json.dumps(values, indent=4))


def _mode(control: dict[str, Any], smiles: str) -> str:
    return str(control.get("ligands", {}).get(smiles, "ok"))


def _values(control: dict[str, Any], smiles: str, kind: str) -> dict[str, Any]:
    return dict(control.get("values", {}).get(smiles, {}).get(kind, {}))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
