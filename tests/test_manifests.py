"""The deployment files against the code they run (issue 11): every Kubernetes overlay rendered
(kubectl kustomize, or tests/kustomize.py where kubectl is missing), deploy/compose.yaml, the
Dockerfile and the Prometheus files. Commands must be real processes, ports the ones the
servers bind, probes routes that exist, environment names ones the settings read, metric
names ones the hub exports."""

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands
from django.urls import Resolver404, resolve

from batches.background.intake import CHUNK_TIMEOUT_SECONDS
from batches.engine.dispatcher import FED_WAIT_SECONDS
from tests import kustomize

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
OVERLAYS = sorted(path.name for path in (DEPLOY / "k8s" / "overlays").iterdir() if path.is_dir())
HUB_IMAGE = "omtx-hub"
# Where the code reads environment variables: the settings and what runs before them.
READERS = [
    path
    for app in ("accounts", "batches", "monitoring", "omtx_hub", "ratelimit")
    for path in (REPO / app).rglob("*.py")
    if "tests" not in path.parts and "migrations" not in path.parts
] + [DEPLOY / "healthcheck.py"]
ENV_READ = re.compile(
    r"""(?:env_(?:str|bool|int|float|list)\(|os\.environ(?:\.get|\.setdefault)?[\(\[]|os\.getenv\()\s*"([A-Z][A-Z0-9_]*)\""""
)
# What a production hub cannot do without (docs/deployment.md, "Secrets" and "Configuration").
REQUIRED = {
    "ENVIRONMENT",  # production settings: the image says so too, the manifests must not rely on it
    "SECRET_KEY",  # no start without it
    "DATABASE_URL",  # else each pod has its own SQLite file
    "REDIS_URL",  # else each process has its own cache, limiter and channel layer
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",  # forms posted through the HTTPS ingress
    "OMTX_PUBLIC_URL",  # warm_cache builds absolute links for it
    "METRICS_TOKEN",  # Prometheus's bearer token
    "MODAL_TOKEN_ID",  # the Boltz-2 executor
    "MODAL_TOKEN_SECRET",
}
# deploy/Procfile process → the Kubernetes container (or Job) that runs it.
PROCESSES = {"web": "web", "websockets": "websockets", "dispatch": "dispatch", "background": "background"}
PROCESSES |= {"monitor": "monitor", "release": "migrate"}


def env_names_read() -> set[str]:
    return {name for path in READERS for name in ENV_READ.findall(path.read_text())}


def procfile() -> dict[str, str]:
    entries = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name] = re.sub(r"\$\{PORT:-(\d+)\}", r"\1", command.strip())
    return entries


def procfile_argv(name: str) -> list[str]:
    command = procfile()[name]
    return ["sh", "-c", command] if "&&" in command else shlex.split(command)


def render(overlay: str) -> list[dict[str, Any]]:
    """kubectl's rendering where it is installed, else the Python one: never nothing."""
    directory = DEPLOY / "k8s" / "overlays" / overlay
    if shutil.which("kubectl"):
        done = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return kustomize.render(directory)


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    manifests = render(request.param)
    assert manifests, f"{request.param} rendered nothing"
    return request.param, manifests


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def hub_containers(manifests: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for manifest in manifests:
        pod = kustomize.pod_spec(manifest)
        for container in pod["containers"] if pod else []:
            if "/omtx-hub:" in container["image"] or container["image"].startswith(f"{HUB_IMAGE}:"):
                yield manifest, container


def secret_template() -> dict[str, Any]:
    secret: dict[str, Any] = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    return secret


def overlay_image(overlay: str) -> str:
    spec = yaml.safe_load((DEPLOY / "k8s" / "overlays" / overlay / "kustomization.yaml").read_text())
    [image] = [entry for entry in spec["images"] if entry["name"] == HUB_IMAGE]
    return f"{image['newName']}:{image['newTag']}"


# --- rendering ---


def test_every_overlay_renders_the_whole_hub(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    deployments = of_kind(manifests, "Deployment")
    assert set(deployments) == {"web", "websockets", "dispatch", "background", "monitor", "redis"}
    assert set(of_kind(manifests, "Job")) == {"migrate"}
    assert set(of_kind(manifests, "HorizontalPodAutoscaler")) == {"web"}
    assert set(of_kind(manifests, "PodDisruptionBudget")) == {"web", "websockets", "dispatch"}
    assert set(of_kind(manifests, "Service")) == {"web", "websockets", "redis"}
    assert of_kind(manifests, "Ingress") and of_kind(manifests, "ConfigMap")
    # The Secret is made by hand (an apply would overwrite the real one with empty values).
    assert not of_kind(manifests, "Secret")
    namespaces = {m["metadata"].get("namespace") for m in manifests}
    assert len(namespaces) == 1 and None not in namespaces, namespaces


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_python_rendering_matches_kubectl(overlay: str) -> None:
    if not shutil.which("kubectl"):
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is not installed")
        pytest.skip("kubectl is not installed: the Python rendering is used alone")
    by_id = {(m["kind"], m["metadata"]["name"]): m for m in render(overlay)}
    ours = {(m["kind"], m["metadata"]["name"]): m for m in kustomize.render(DEPLOY / "k8s" / "overlays" / overlay)}
    assert ours.keys() == by_id.keys()
    for key, manifest in by_id.items():
        assert ours[key] == manifest, key


# --- images and commands ---


def test_hub_containers_run_the_overlay_image_and_others_a_pinned_tag(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    overlay, manifests = rendered
    found = list(hub_containers(manifests))
    assert len(found) == 7  # web, websockets, dispatch + metrics, background, monitor, migrate
    assert {container["image"] for _, container in found} == {overlay_image(overlay)}
    for container in kustomize.containers(manifests):
        name, _, tag = container["image"].rpartition(":")
        assert name and tag and tag != "latest", container["image"]


def check_command(argv: list[str]) -> None:
    """The program exists and what it is told to load does."""
    if argv[:2] == ["sh", "-c"]:
        for part in argv[2].split("&&"):
            check_command(shlex.split(part))
        return
    program, *args = argv
    if program == "python" and args[0] == "-m":
        load(f"{args[1]}:main")
    elif program == "python":
        assert args[0] == "manage.py" and args[1] in get_commands(), argv
    elif program == "gunicorn":
        config = args[args.index("--config") + 1]
        assert config.startswith("python:")
        importlib.import_module(config.removeprefix("python:"))
        [app] = [arg for arg in args if re.fullmatch(r"[a-z_][\w.]*:[a-z_]\w*", arg)]
        load(app)
    elif program == "daphne":
        load(args[-1])
    else:
        pytest.fail(f"unknown program {program!r}")


def load(dotted: str) -> None:
    module, _, attribute = dotted.partition(":")
    assert callable(getattr(importlib.import_module(module), attribute)), dotted


def bind_port(argv: list[str]) -> int | None:
    if argv[0] == "gunicorn":
        return int(argv[argv.index("--bind") + 1].rpartition(":")[2])
    if argv[0] == "daphne":
        return int(argv[argv.index("-p") + 1])
    return None


def test_every_container_runs_a_real_process_on_its_declared_port(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, manifests = rendered
    for _, container in hub_containers(manifests):
        command = container["command"]
        check_command(command)
        ports = {port["containerPort"] for port in container.get("ports", [])}
        port = bind_port(command)
        assert ports == ({port} if port else set()), (container["name"], ports, port)


def test_containers_run_the_procfile_commands(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    commands = {container["name"]: container["command"] for _, container in hub_containers(manifests)}
    for process, container in PROCESSES.items():
        assert commands[container] == procfile_argv(process), process
    # The dispatcher pod's metrics server is the web process, smaller and on its own port.
    web = procfile_argv("web")
    assert commands["metrics"][:4] == web[:4]


def test_every_procfile_process_runs_here() -> None:
    assert set(procfile()) == set(PROCESSES)
    for process in procfile():
        check_command(procfile_argv(process))


# --- probes, services, ingress, scaling ---


def route_exists(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def test_probes_hit_routes_and_ports_that_exist(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    probed = set()
    for manifest, container in hub_containers(manifests):
        ports = {port["name"] for port in container.get("ports", [])}
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(kind)
            if probe is None or "exec" in probe:  # the loops' heartbeat: checked below
                continue
            get = probe["httpGet"]
            assert get["port"] in ports, (container["name"], kind)
            assert route_exists(get["path"]), get["path"]
            probed.add((manifest["metadata"]["name"], container["name"], kind))
    for deployment in ("web", "websockets"):
        assert {(deployment, deployment, "livenessProbe"), (deployment, deployment, "readinessProbe")} <= probed
    assert ("web", "web", "readinessProbe") in probed
    ready = [c["readinessProbe"]["httpGet"]["path"] for _, c in hub_containers(manifests) if "readinessProbe" in c]
    assert set(ready) == {"/health/ready"}


# The loops without HTTP → the longest their loop goes between two beats when all is well
# (omtx_hub/heartbeat.py): the dispatcher's wait while its pool is fed, the background
# worker's wait on a chunk whose validation hangs, the monitor's interval and one alert's POST.
def monitor_longest_wait(config: dict[str, str]) -> float:
    interval = float(config.get("METRICS_EXPORT_INTERVAL", settings.METRICS_EXPORT_INTERVAL))
    return interval + settings.OMTX_ALERT_WEBHOOK_TIMEOUT


LOOP_LONGEST_WAIT: dict[str, Callable[[dict[str, str]], float]] = {
    "dispatch": lambda config: FED_WAIT_SECONDS,
    "background": lambda config: CHUNK_TIMEOUT_SECONDS,
    "monitor": monitor_longest_wait,
}
HEARTBEAT_PROBE = ["python", "-m", "omtx_hub.heartbeat", "--max-age"]


def loop_probes(manifests: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Container name → (its livenessProbe, the container) for every exec probe."""
    return {
        container["name"]: (container["livenessProbe"], container)
        for _, container in hub_containers(manifests)
        if "exec" in container.get("livenessProbe", {})
    }


def container_env(container: dict[str, Any]) -> dict[str, str]:
    return {entry["name"]: entry["value"] for entry in container.get("env", []) if "value" in entry}


def test_every_loop_is_probed_on_the_heartbeat_file_it_writes(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    [config] = of_kind(manifests, "ConfigMap").values()
    probes = loop_probes(manifests)
    assert set(probes) == set(LOOP_LONGEST_WAIT)
    for name, (probe, container) in probes.items():
        command = probe["exec"]["command"]
        assert command[:-1] == HEARTBEAT_PROBE, name
        check_command(command)
        max_age = float(command[-1])
        assert max_age > 2 * LOOP_LONGEST_WAIT[name](config["data"]), name
        # The file is where the loop writes it (the same variable), on a writable volume.
        path = container_env(container)["OMTX_HEARTBEAT_FILE"]
        pod = kustomize.pod_spec(of_kind(manifests, "Deployment")[name])
        assert pod is not None
        empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
        mounts = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty_dirs}
        assert Path(path).parent.as_posix() in mounts, (name, path)
        # A probe slower than Python's start would count as a failure however fresh the file.
        assert probe["timeoutSeconds"] >= 5 and probe["failureThreshold"] >= 2, name


def run_probe(command: list[str], env: dict[str, str]) -> int:
    """The probe as the kubelet runs it: in the image's directory with the container's env."""
    argv = [sys.executable, *command[1:]]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)  # nosec B603
    return done.returncode


def run_beat(env: dict[str, str]) -> None:
    """One beat as the loops do it, through the settings: the file they name from the env."""
    code = "from omtx_hub.heartbeat import beat; beat()"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "omtx_hub.settings", **env}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)  # nosec B603
    assert done.returncode == 0, done.stderr


def test_the_loop_probes_pass_on_a_fresh_beat_and_fail_on_a_stale_or_missing_one(
    rendered: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    _, manifests = rendered
    for name, (probe, container) in loop_probes(manifests).items():
        command = probe["exec"]["command"]
        max_age = float(command[-1])
        # The container's own value, moved under tmp_path: this machine's /tmp is shared.
        env = container_env(container)
        path = tmp_path / name / Path(env["OMTX_HEARTBEAT_FILE"]).name
        env["OMTX_HEARTBEAT_FILE"] = str(path)
        assert run_probe(command, env) == 1, f"{name}: no beat yet"
        path.parent.mkdir()
        run_beat(env)
        assert run_probe(command, env) == 0, f"{name}: fresh beat"
        stale = time.time() - max_age - 60
        os.utime(path, (stale, stale))
        assert run_probe(command, env) == 1, f"{name}: stale beat"


def pod_labels(manifest: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = manifest["spec"]["template"]["metadata"]["labels"]
    return labels


def selected(manifests: list[dict[str, Any]], selector: dict[str, str]) -> list[dict[str, Any]]:
    return [m for m in of_kind(manifests, "Deployment").values() if selector.items() <= pod_labels(m).items()]


def test_services_and_ingress_reach_ports_that_exist(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    services = of_kind(manifests, "Service")
    for name, service in services.items():
        [deployment] = selected(manifests, service["spec"]["selector"])
        names = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names, (name, port)
    [ingress] = of_kind(manifests, "Ingress").values()
    [rule] = ingress["spec"]["rules"]
    routes = {path["path"]: path["backend"]["service"] for path in rule["http"]["paths"]}
    assert routes["/ws/"]["name"] == "websockets" and routes["/"]["name"] == "web"
    for backend in routes.values():
        assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]


def test_the_public_host_is_the_one_the_settings_allow(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    [config] = of_kind(manifests, "ConfigMap").values()
    [ingress] = of_kind(manifests, "Ingress").values()
    host = ingress["spec"]["rules"][0]["host"]
    assert host in config["data"]["ALLOWED_HOSTS"].split(",")
    assert config["data"]["OMTX_PUBLIC_URL"] == f"https://{host}"
    assert f"https://{host}" in config["data"]["CSRF_TRUSTED_ORIGINS"].split(",")


def test_autoscaler_and_disruption_budgets_point_at_deployments(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    deployments = of_kind(manifests, "Deployment")
    for hpa in of_kind(manifests, "HorizontalPodAutoscaler").values():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert deployments[target["name"]]["spec"]["replicas"] == hpa["spec"]["minReplicas"]
    for name, budget in of_kind(manifests, "PodDisruptionBudget").items():
        assert [m["metadata"]["name"] for m in selected(manifests, budget["spec"]["selector"]["matchLabels"])] == [name]


def test_every_container_has_resources_and_runs_unprivileged(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    var_dir = dockerfile_env()["OMTX_VAR_DIR"]
    for manifest in manifests:
        pod = kustomize.pod_spec(manifest)
        if pod is None:
            continue
        assert pod["securityContext"]["runAsNonRoot"] is True, manifest["metadata"]["name"]
        for container in pod["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for _, container in hub_containers(manifests):
        # A read-only image still needs VAR_DIR (Prometheus files) and /tmp (uploads, gunicorn).
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert {var_dir, "/tmp"} <= mounts, container["name"]


# --- environment ---


def provided_env(manifests: list[dict[str, Any]], container: dict[str, Any]) -> set[str]:
    configmaps = of_kind(manifests, "ConfigMap")
    secret = secret_template()
    names = {entry["name"] for entry in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            assert source["secretRef"]["name"] == secret["metadata"]["name"]
            names |= set(secret["stringData"])
    return names


def test_every_environment_name_is_one_the_hub_reads(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, manifests = rendered
    read = env_names_read()
    for _, container in hub_containers(manifests):
        assert provided_env(manifests, container) - read == set(), container["name"]
    assert set(secret_template()["stringData"]) - read == set()
    assert all(value == "" for value in secret_template()["stringData"].values())


def test_every_hub_container_gets_the_required_production_variables(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, manifests = rendered
    for _, container in hub_containers(manifests):
        missing = REQUIRED - provided_env(manifests, container)
        assert missing == set(), (container["name"], missing)
    [config] = of_kind(manifests, "ConfigMap").values()
    assert config["data"]["ENVIRONMENT"] == "production"


def test_the_names_read_include_what_the_settings_are_known_to_read() -> None:
    # The scan itself can fail: a reader it stopped seeing would let any name through.
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "OMTX_POD_IP", "PROMETHEUS_MULTIPROC_DIR", "PORT"} <= (
        env_names_read()
    )
    assert "NOT_A_SETTING" not in env_names_read()


# --- compose, Dockerfile, constraints ---


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_runs_the_procfile_processes_with_postgres_and_redis() -> None:
    services = compose()["services"]
    assert {"postgres", "redis"} <= set(services)
    for process in procfile():
        assert services[process]["command"] == procfile_argv(process), process
        check_command(services[process]["command"])
    read = env_names_read()
    for process in procfile():
        environment = services[process]["environment"]
        assert set(environment) - read == set(), process
        assert REQUIRED - {"CSRF_TRUSTED_ORIGINS"} <= set(environment), process
        assert services[process]["image"] == "omtx-hub:local"
    for process in ("web", "websockets"):
        [mapping] = services[process]["ports"]
        assert mapping == f"{bind_port(services[process]['command'])}:{services[process]['environment']['PORT']}"


def dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, argument in dockerfile():
        if instruction == "ENV":
            env |= dict(pair.split("=", 1) for pair in shlex.split(argument))
    return env


def test_the_image_is_production_non_root_and_starts_the_procfile_web_process() -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert dockerfile_env()["ENVIRONMENT"] == "production"
    assert dockerfile_env()["STATIC_ROOT"] != dockerfile_env()["OMTX_VAR_DIR"]
    [user] = [argument for instruction, argument in instructions if instruction == "USER"]
    assert user not in ("root", "0")
    runs = " ".join(argument for instruction, argument in instructions if instruction == "RUN")
    assert "manage.py collectstatic --noinput" in runs
    assert "-r requirements/base.txt -c deploy/constraints.txt" in runs
    [healthcheck] = [argument for instruction, argument in instructions if instruction == "HEALTHCHECK"]
    assert healthcheck.endswith('CMD ["python", "deploy/healthcheck.py"]')
    [cmd] = [json.loads(argument) for instruction, argument in instructions if instruction == "CMD"]
    assert cmd[:2] == ["sh", "-c"] and cmd[2].startswith("exec ")
    assert re.sub(r"\$\{PORT:-(\d+)\}", r"\1", cmd[2].removeprefix("exec ")) == procfile()["web"]
    # The USER instruction comes after the last RUN: nothing the image runs is root.
    names = [instruction for instruction, _ in instructions]
    assert names.index("USER") > max(i for i, name in enumerate(names) if name == "RUN")


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    ignored = {line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"}
    assert {".git", ".venv", "var", "*.sqlite3", ".env", "*.env"} <= ignored
    # What the image runs must not be ignored.
    assert not ignored & {"deploy", "deploy/healthcheck.py", "static", "templates", "requirements", "manage.py"}


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_the_constraints_hold_every_requirement_at_its_pinned_version() -> None:
    base = REPO / "requirements" / "base.txt"
    wanted = [line for line in base.read_text().splitlines() if line.strip() and not line.startswith("#")]
    pins = requirement_pins(base)
    assert len(pins) == len(wanted), "every runtime requirement is pinned with =="
    constraints = requirement_pins(DEPLOY / "constraints.txt")
    assert {name: constraints.get(name) for name in pins} == pins


# --- Prometheus ---

PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "histogram_quantile", "vector", "and", "or",
    "unless", "by", "on", "without", "ignoring", "le", "job", "status", "outcome", "reason", "scope",
}  # fmt: skip


@pytest.fixture
def exported_names(db: None) -> set[str]:
    """Every sample name /metrics can carry: the default registry's (counters, histogram) and
    the queue gauges read at scrape time."""
    from prometheus_client.registry import REGISTRY

    import omtx_hub.cache
    import ratelimit.metrics
    from monitoring import prometheus

    assert omtx_hub.cache.CACHE_REQUESTS and ratelimit.metrics.REJECTIONS
    names = set(REGISTRY._names_to_collectors)
    names |= {family.name for family in prometheus.QueueCollector().collect()}
    return names


def promql_metrics(expression: str) -> set[str]:
    expression = re.sub(r'"[^"]*"', "", expression)
    expression = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expression)
    return set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expression)) - PROMQL_WORDS


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_alert_rules_use_only_metrics_the_hub_exports(exported_names: set[str]) -> None:
    used = set()
    for rule in alert_rules():
        names = promql_metrics(rule["expr"])
        assert names, rule["alert"]
        assert names - exported_names - {"up"} == set(), rule["alert"]
        used |= names
    assert {"omtx_queue_depth", "omtx_jobs_completed_total", "omtx_executor_errors_total"} <= used
    assert "omtx_http_request_duration_seconds_bucket" in used


def test_the_metric_name_check_can_fail(exported_names: set[str]) -> None:
    assert promql_metrics('sum(rate(omtx_jobs_complete_total{outcome="failed"}[5m]))') - exported_names == {
        "omtx_jobs_complete_total"
    }


def test_alert_rules_are_complete_and_link_the_runbook() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in (REPO / "docs" / "deployment.md").read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        assert {"alert", "expr", "for", "labels", "annotations"} <= set(rule)
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/deployment.md" and anchor in anchors, rule["alert"]


def test_prometheus_scrapes_the_pods_that_serve_metrics(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, manifests = rendered
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["authorization"]["credentials_file"].endswith("/METRICS_TOKEN")
    keep = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}
    assert keep[("__meta_kubernetes_pod_label_app_kubernetes_io_part_of",)] == "omtx-hub"
    scraped = []
    for name, deployment in of_kind(manifests, "Deployment").items():
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") != "true":
            continue
        assert pod_labels(deployment)["app.kubernetes.io/part-of"] == "omtx-hub"
        containers = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["containerPort"] for c in containers for p in c.get("ports", [])}
        assert int(annotations["prometheus.io/port"]) in ports, name
        assert route_exists(annotations["prometheus.io/path"])
        scraped.append(name)
    # The dispatcher's counters are in its pod: its metrics container must be scraped.
    assert sorted(scraped) == ["dispatch", "web", "websockets"]
    if overlay == "production":
        [namespace] = {m["metadata"]["namespace"] for m in manifests}
        assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == [namespace]
