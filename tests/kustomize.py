"""`kubectl kustomize` for the subset deploy/k8s uses, in Python: for machines without kubectl.

Resources (files and directories with a kustomization.yaml), `namespace`, `images`
(newName/newTag) and `patches` given inline as JSON 6902 operations with a kind/name target.
Anything else in a kustomization is refused, not ignored, so an overlay that grows a feature
this does not know fails here instead of rendering differently from kubectl.
tests/test_manifests.py compares both renderings wherever kubectl is installed.
"""

from pathlib import Path
from typing import Any

import yaml

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
Manifest = dict[str, Any]


def render(directory: Path) -> list[Manifest]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN_FIELDS
    if unknown:
        raise ValueError(f"{directory}: kustomization fields this renderer does not know: {sorted(unknown)}")
    manifests: list[Manifest] = []
    for resource in spec.get("resources", []):
        path = (directory / resource).resolve()
        manifests += render(path) if path.is_dir() else [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch in spec.get("patches", []):
        apply_patch(manifests, patch)
    for image in spec.get("images", []):
        set_image(manifests, image)
    if "namespace" in spec:
        for manifest in manifests:
            manifest["metadata"]["namespace"] = spec["namespace"]
    return manifests


def apply_patch(manifests: list[Manifest], patch: dict[str, Any]) -> None:
    if set(patch) != {"target", "patch"} or set(patch["target"]) - {"kind", "name"}:
        raise ValueError(f"only inline JSON 6902 patches with a kind/name target: {patch}")
    targets = [m for m in manifests if all(_field(m, key) == value for key, value in patch["target"].items())]
    if not targets:
        raise ValueError(f"patch target matches nothing: {patch['target']}")
    for manifest in targets:
        for operation in yaml.safe_load(patch["patch"]):
            json_patch(manifest, operation)


def _field(manifest: Manifest, key: str) -> Any:
    return manifest["kind"] if key == "kind" else manifest["metadata"]["name"]


def json_patch(document: Any, operation: dict[str, Any]) -> None:
    """RFC 6902 `add`, `replace` and `remove`; a path that does not exist is an error, as in kustomize."""
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]]
    node = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    op = operation["op"]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op == "add":
            node.insert(index, operation["value"])
        elif op == "replace":
            node[index] = operation["value"]
        elif op == "remove":
            del node[index]
        else:
            raise ValueError(f"unsupported op {op}")
        return
    if op in ("replace", "remove") and last not in node:
        raise KeyError(f"{operation['path']} does not exist")
    if op in ("add", "replace"):
        node[last] = operation["value"]
    elif op == "remove":
        del node[last]
    else:
        raise ValueError(f"unsupported op {op}")


def set_image(manifests: list[Manifest], image: dict[str, str]) -> None:
    for container in containers(manifests):
        name, _, _tag = container["image"].partition(":")
        if name == image["name"]:
            container["image"] = f"{image.get('newName', name)}:{image['newTag']}" if "newTag" in image else name


def containers(manifests: list[Manifest]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for manifest in manifests:
        pod = pod_spec(manifest)
        if pod is not None:
            found += pod.get("initContainers", []) + pod["containers"]
    return found


def pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    if manifest["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
        return spec
    return None
