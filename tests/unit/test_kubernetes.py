"""The Kubernetes deployment (deploy/kubernetes/), checked without a cluster.

kubectl's own kustomize builds the base and each component; every object is checked
against Kubernetes 1.30's schemas with kubernetes-validate (strict: an unknown field
fails); the PrometheusRule's rules go through the real promtool, the ConfigMap's files
through ``stratum check``; then the promises an operator relies on are asserted on the
built objects: the same gateway, Redis and model servers as docker-compose.yml (both files
parsed), LiteLLM's probes, a graceful stop that outlasts the longest request, and
rollouts and node drains that always leave a gateway serving.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from test_alert_rules import RULE_TESTS, RULES, promtool
from test_deploy import BASE_FILE, LITELLM_CONFIG, image_is_pinned, rendered, stratum_script

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPONENTS = KUBERNETES / "components"
HELM_VALUES = KUBERNETES / "helm" / "litellm-values.yaml"
DOCS = ROOT / "docs" / "deploy.md"
SCHEMA_VERSION = "1.30.0"
# Custom resources of the Prometheus operator: no schema is bundled; checked structurally.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
# litellm.constants.GRACEFUL_SHUTDOWN_TEARDOWN_HEADROOM_SECONDS: LiteLLM's own allowance
# for the teardown after its drain.
TEARDOWN_S = 10


# -- building ----------------------------------------------------------------------------


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed: the kustomizations cannot be built (its kustomize is the one operators run)")
    return found


def build(folder: Path) -> list[dict[str, Any]]:
    result = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def overlay(folder: Path, text: str) -> Path:
    """A kustomization in ``folder`` (outside the repository, as an operator's would be);
    ``BASE`` in ``text`` stands for the relative path to deploy/kubernetes."""
    folder.mkdir(parents=True, exist_ok=True)
    base = os.path.relpath(KUBERNETES, folder)
    (folder / "kustomization.yaml").write_text(text.replace("BASE", base), encoding="utf-8")
    return folder


def with_components(folder: Path, *names: str) -> Path:
    lines = ["resources:", "  - BASE"]
    if names:
        lines += ["components:"] + [f"  - BASE/components/{name}" for name in names]
    return overlay(folder, "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return build(KUBERNETES)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return build(with_components(tmp_path_factory.mktemp("full"), "gpu-backends", "prometheus-operator"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose runs it (interpolated from .env.example)."""
    stack = rendered([BASE_FILE])
    stack["variant"] = "single-gpu"
    return stack


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = pod(deployment)["containers"]
    assert len(containers) == 1, [c["name"] for c in containers]
    return containers[0]


def env(c: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or the valueFrom mapping."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def expand(arg: str, variables: dict[str, Any]) -> str:
    """The kubelet's expansion of command and args: $(NAME) of a plain variable, $$ -> $."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        value = variables.get(match.group(1))
        return value if isinstance(value, str) else match.group(0)

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, arg)


def port_number(c: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    assert port in named, f"{c['name']} has no port named {port!r}"
    return named[port]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def kubernetes_sync():
    spec = importlib.util.spec_from_file_location("kubernetes_sync", ROOT / "scripts" / "kubernetes_sync.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- it builds, and every object is valid ------------------------------------------------

BASE_OBJECTS = {("ConfigMap", "gateway-config"), ("Deployment", "gateway"), ("Service", "gateway"),
                ("PodDisruptionBudget", "gateway"), ("Deployment", "redis"), ("Service", "redis")}
COMPONENT_OBJECTS = {
    "gpu-backends": {("Deployment", "vllm"), ("Service", "vllm"), ("Deployment", "llamacpp"), ("Service", "llamacpp"),
                     ("PersistentVolumeClaim", "hf-cache"), ("PersistentVolumeClaim", "llama-cache")},
    "prometheus-operator": {("ServiceMonitor", "gateway"), ("ServiceMonitor", "model-servers"),
                            ("PrometheusRule", "stratum-alerts")},
}


def kinds_and_names(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(kind, name) of each object; a generated ConfigMap without its hash suffix."""
    return {(o["kind"], re.sub(r"-[a-z0-9]{10}$", "", o["metadata"]["name"]) if o["kind"] == "ConfigMap"
             else o["metadata"]["name"]) for o in objects}


@pytest.mark.parametrize("names", [(), ("gpu-backends",), ("prometheus-operator",),
                                   ("gpu-backends", "prometheus-operator")], ids=lambda n: "+".join(n) or "base")
def test_the_base_and_each_component_build(names: tuple[str, ...], tmp_path: Path) -> None:
    objects = build(with_components(tmp_path, *names))
    assert kinds_and_names(objects) == BASE_OBJECTS.union(*(COMPONENT_OBJECTS[n] for n in names))


def test_the_base_builds_where_operators_apply_it(base: list[dict[str, Any]]) -> None:
    # `kubectl apply -k deploy/kubernetes`: the folder itself, no overlay needed.
    assert kinds_and_names(base) == BASE_OBJECTS


def test_every_object_passes_the_kubernetes_schema_strictly(full: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    skipped = set()
    for obj in full:
        if obj["kind"] in CUSTOM_KINDS:
            skipped.add(obj["kind"])
            continue
        try:
            kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert skipped == CUSTOM_KINDS  # and nothing else went unchecked


def test_the_schema_check_refuses_an_unknown_field(base: list[dict[str, Any]]) -> None:
    import copy

    import kubernetes_validate

    broken = copy.deepcopy(find(base, "Deployment", "gateway"))
    container(broken)["readinesProbe"] = container(broken)["readinessProbe"]  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, SCHEMA_VERSION, strict=True)


# -- generated files ---------------------------------------------------------------------


def test_the_generated_files_are_up_to_date() -> None:
    stale = [str(p.relative_to(ROOT)) for p in kubernetes_sync().stale()]
    assert not stale, f"out of date: {stale}; run `python scripts/kubernetes_sync.py` (make kubernetes)"


def test_the_config_map_holds_the_repositorys_files(base: list[dict[str, Any]]) -> None:
    data = next(o for o in base if o["kind"] == "ConfigMap")["data"]
    for key, source in {"litellm_config.yaml": LITELLM_CONFIG, "stratum.yaml": ROOT / "deploy" / "stratum.yaml",
                        "stratum.two-gpu.yaml": ROOT / "deploy" / "stratum.two-gpu.yaml"}.items():
        assert yaml.safe_load(data[key]) == yaml.safe_load(source.read_text(encoding="utf-8")), key


# -- the Prometheus operator's objects ---------------------------------------------------


def test_the_prometheus_rule_holds_exactly_the_alert_rules(full: list[dict[str, Any]]) -> None:
    rule = find(full, "PrometheusRule", "stratum-alerts")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule) == {"apiVersion", "kind", "metadata", "spec"} and set(rule["spec"]) == {"groups"}
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]


def test_promtool_checks_and_unit_tests_the_prometheus_rule(full: list[dict[str, Any]], tmp_path: Path) -> None:
    groups = find(full, "PrometheusRule", "stratum-alerts")["spec"]["groups"]
    (tmp_path / RULES.name).write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    count = sum(len(group["rules"]) for group in groups)
    checked = subprocess.run([promtool(), "check", "rules", RULES.name], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert checked.returncode == 0 and f"SUCCESS: {count} rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = subprocess.run([promtool(), "test", "rules", RULE_TESTS.name], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_service_monitors_scrape_what_prometheus_scrapes_in_compose(full: list[dict[str, Any]]) -> None:
    jobs = {job["job_name"]: job for job in yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())["scrape_configs"]}
    scraped = {}
    for monitor in (o for o in full if o["kind"] == "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        endpoint, = monitor["spec"]["endpoints"]
        services = [s for s in full if s["kind"] == "Service"
                    and matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        assert services, f"ServiceMonitor {monitor['metadata']['name']} selects no Service"
        for svc in services:
            assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}
            scraped[svc["metadata"]["name"]] = endpoint  # the operator's job label: the Service's name
    assert set(scraped) == {"gateway", "vllm", "llamacpp"} <= set(jobs)
    # StratumScrapeTargetDown names these jobs.
    down = next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "StratumScrapeTargetDown")
    assert all(re.search(rf"\b{name}\b", down["expr"]) for name in scraped)
    for name, endpoint in scraped.items():
        assert endpoint["path"] == jobs[name]["metrics_path"], name
    # /metrics/ asks for the master key: the same Secret key the gateway reads it from.
    credentials = scraped["gateway"]["authorization"]["credentials"]
    key_ref = env(container(find(full, "Deployment", "gateway")))["LITELLM_MASTER_KEY"]["secretKeyRef"]
    assert (credentials["name"], credentials["key"]) == (key_ref["name"], key_ref["key"])


# -- the gateway ---------------------------------------------------------------------------


def mounted_files(deployment: dict[str, Any], config_map: dict[str, Any]) -> dict[str, str]:
    """Container path -> text of every file the pod mounts from ``config_map``."""
    volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
    files = {}
    for mount in container(deployment)["volumeMounts"]:
        source = volumes[mount["name"]].get("configMap")
        if not source or source["name"] != config_map["metadata"]["name"]:
            continue
        items = {i["key"]: i["path"] for i in source.get("items", [])} or {k: k for k in config_map["data"]}
        if "subPath" in mount:
            files[mount["mountPath"]] = config_map["data"][next(k for k, p in items.items() if p == mount["subPath"])]
        else:
            files.update({f"{mount['mountPath']}/{path}": config_map["data"][key] for key, path in items.items()})
    return files


def test_stratum_check_accepts_the_mounted_config(base: list[dict[str, Any]], tmp_path: Path) -> None:
    gateway = find(base, "Deployment", "gateway")
    c = container(gateway)
    files = mounted_files(gateway, next(o for o in base if o["kind"] == "ConfigMap"))
    for path, text in files.items():
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_text(text, encoding="utf-8")
    variables = {k: v for k, v in env(c).items() if isinstance(v, str)}
    config = c["args"][c["args"].index("--config") + 1]
    assert config in files and variables["STRATUM_CONFIG"] in files
    run_env = {k: v for k, v in os.environ.items() if k != "STRATUM_CONFIG"}
    run_env.update({k: v for k, v in variables.items() if k != "STRATUM_CONFIG"})
    outputs = {}
    for path in (config, variables["STRATUM_CONFIG"]):
        result = subprocess.run([stratum_script(), "check", str(tmp_path / path.lstrip("/"))], capture_output=True,
                                text=True, env=run_env, timeout=120, cwd=tmp_path)
        assert result.returncode == 0 and result.stdout.startswith("ok:"), result.stdout + result.stderr
        outputs[path] = result.stdout
    gateway_check = outputs[config]
    assert "shared state: in the gateway's Redis" in gateway_check
    assert "fast backend signals: http://vllm:8000/v1" in gateway_check
    assert "smart backend signals: http://llamacpp:8080/v1" in gateway_check
    # The label store lies on a writable volume of the pod.
    store = re.search(r"labels in (\S+)", outputs[variables["STRATUM_CONFIG"]]).group(1)
    writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert any(store.startswith(path + "/") for path in writable), store


def test_the_gateway_runs_as_compose_runs_it(base: list[dict[str, Any]], compose: dict[str, Any]) -> None:
    c = container(find(base, "Deployment", "gateway"))
    want = compose["services"]["gateway"]
    assert c["image"] == want["image"] and image_is_pinned(c["image"])
    variables = env(c)
    assert [expand(a, variables) for a in c["args"]] == [str(a) for a in want["command"]]
    for name, value in want["environment"].items():
        if name == "LITELLM_MASTER_KEY":
            assert "secretKeyRef" in variables[name], "the master key comes from a Secret"
        else:
            assert variables.get(name) == value, name
    assert int(variables["GATEWAY_WORKERS"]) > 1, "several workers per pod"


def test_nothing_is_installed_at_start(full: list[dict[str, Any]]) -> None:
    for deployment in (o for o in full if o["kind"] == "Deployment"):
        for c in pod(deployment)["containers"] + pod(deployment).get("initContainers", []):
            words = " ".join(c.get("command", []) + c.get("args", []))
            assert not re.search(r"\bpip\b|\buv\b|\bapt(-get)?\b|\bapk\b", words), f"{c['name']} installs at start"
            assert image_is_pinned(c["image"]), c["image"]


def test_readiness_is_litellms_own_and_does_not_wait_for_redis(base: list[dict[str, Any]]) -> None:
    gateway = find(base, "Deployment", "gateway")
    c = container(gateway)
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert c["startupProbe"]["httpGet"]["path"] in {"/health/liveliness", "/health/readiness"}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert port_number(c, c[probe]["httpGet"]["port"]) == 4000
    # Public readiness reports only the database (none here) unless the config asks for the
    # detailed payload, which would report the cache too; and nothing waits for Redis.
    general = yaml.safe_load(LITELLM_CONFIG.read_text())["general_settings"]
    assert not general.get("allow_public_health_readiness_details")
    assert "initContainers" not in pod(gateway)
    assert "redis" not in yaml.safe_dump(c["readinessProbe"]).lower()


def test_a_stopping_gateway_outlasts_the_longest_request(base: list[dict[str, Any]]) -> None:
    gateway = find(base, "Deployment", "gateway")
    c = container(gateway)
    variables = env(c)
    drain = float(variables["GRACEFUL_SHUTDOWN_TIMEOUT"])
    pre_stop = c["lifecycle"]["preStop"]
    # A /health/drain hook drains only the worker that answers it: with several workers
    # per pod the stop relies on SIGTERM, which every worker gets.
    assert "sleep" in pre_stop, pre_stop
    grace = pod(gateway)["terminationGracePeriodSeconds"]
    assert grace > pre_stop["sleep"]["seconds"] + drain + TEARDOWN_S
    longest = max(float(m["litellm_params"].get("timeout", 0))
                  for m in yaml.safe_load(LITELLM_CONFIG.read_text())["model_list"])
    assert drain >= longest, "a request LiteLLM still waits for would be cut by the stop"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert "terminationGracePeriodSeconds" not in c[probe]


def test_rollouts_and_node_drains_leave_a_gateway_serving(base: list[dict[str, Any]]) -> None:
    gateway = find(base, "Deployment", "gateway")
    replicas = gateway["spec"]["replicas"]
    assert replicas >= 2
    rolling = gateway["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0 and rolling["maxSurge"] >= 1
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    budget = find(base, "PodDisruptionBudget", "gateway")["spec"]
    assert matches(budget["selector"]["matchLabels"], labels)
    allowed = budget["maxUnavailable"] if "maxUnavailable" in budget else replicas - budget["minAvailable"]
    assert 1 <= allowed < replicas, "a drain must be able to proceed and must leave one pod"
    spread = pod(gateway)["topologySpreadConstraints"]
    assert {s["topologyKey"] for s in spread} >= {"kubernetes.io/hostname"}
    # ScheduleAnyway: a single-node cluster still runs every replica.
    assert all(s["whenUnsatisfiable"] == "ScheduleAnyway" and matches(s["labelSelector"]["matchLabels"], labels)
               for s in spread)
    anti = pod(gateway)["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert all(matches(t["podAffinityTerm"]["labelSelector"]["matchLabels"], labels) for t in anti)
    resources = container(gateway)["resources"]
    assert resources["requests"] and resources["limits"]["memory"]


# -- how the pieces reach each other -----------------------------------------------------


def test_every_service_reaches_a_deployments_pods(full: list[dict[str, Any]]) -> None:
    deployments = [o for o in full if o["kind"] == "Deployment"]
    for svc in (o for o in full if o["kind"] == "Service"):
        targets = [d for d in deployments if matches(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        assert len(targets) == 1, f"Service {svc['metadata']['name']} selects {len(targets)} Deployments"
        for port in svc["spec"]["ports"]:
            port_number(container(targets[0]), port["targetPort"])


def test_the_gateway_reaches_redis_and_both_tiers_by_service(full: list[dict[str, Any]]) -> None:
    variables = env(container(find(full, "Deployment", "gateway")))

    def serves(name: str, port: int) -> None:
        svc = find(full, "Service", name)
        assert port in {p["port"] for p in svc["spec"]["ports"]}, f"Service {name} has no port {port}"

    serves(variables["REDIS_HOST"], int(variables["REDIS_PORT"]))
    for variable in ("STRATUM_FAST_API_BASE", "STRATUM_SMART_API_BASE"):
        url = urlsplit(variables[variable])
        serves(url.hostname, url.port)
    # No service links: a Service named redis or vllm would otherwise inject REDIS_PORT /
    # VLLM_PORT=tcp://..., which LiteLLM and vLLM read as settings.
    assert all(pod(d)["enableServiceLinks"] is False for d in full if d["kind"] == "Deployment")


# -- Redis and the model servers as compose runs them ------------------------------------


def compose_health_path(svc: dict[str, Any]) -> tuple[str, int]:
    url = urlsplit(re.search(r"https?://[^\s'\"]+", " ".join(svc["healthcheck"]["test"])).group(0))
    return url.path, url.port


def test_redis_runs_as_compose_runs_it(base: list[dict[str, Any]], compose: dict[str, Any]) -> None:
    c = container(find(base, "Deployment", "redis"))
    want = compose["services"]["redis"]
    assert c["image"] == want["image"]
    assert c["args"] == want["command"]
    assert c["readinessProbe"]["exec"]["command"] == want["healthcheck"]["test"][1:]


@pytest.mark.parametrize("name", ["vllm", "llamacpp"])
def test_the_model_servers_run_as_compose_runs_them(name: str, full: list[dict[str, Any]],
                                                    compose: dict[str, Any]) -> None:
    deployment = find(full, "Deployment", name)
    c = container(deployment)
    want = compose["services"][name]
    assert c["image"] == want["image"]
    assert c["args"] == [str(a) for a in want["command"]]
    # compose's entrypoint, where it has one, with `$$` meaning `$` in both.
    assert c.get("command") == want.get("entrypoint")
    variables = env(c)
    for key, value in want["environment"].items():
        if key == "HF_TOKEN":
            assert variables[key]["secretKeyRef"]["optional"] is True
        else:
            assert variables.get(key) == value, key
    assert str(c["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    path, port = compose_health_path(want)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == path and port_number(c, c[probe]["httpGet"]["port"]) == port
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod(deployment)["volumes"]
              if "persistentVolumeClaim" in v}
    mounts = {m["mountPath"]: claims.get(m["name"]) for m in c["volumeMounts"]}
    for volume in want["volumes"]:
        assert mounts.get(volume["target"]) == volume["source"], volume
        find(full, "PersistentVolumeClaim", volume["source"])
    assert deployment["spec"]["strategy"]["type"] == "Recreate", "one GPU and one RWO cache per server"


# -- the documented routes ---------------------------------------------------------------


def kubernetes_docs() -> str:
    return DOCS.read_text(encoding="utf-8").split("\n## Kubernetes", 1)[1].split("\n## ", 1)[0]


def test_the_overlays_in_the_docs_build(tmp_path: Path) -> None:
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", kubernetes_docs(), flags=re.S) if "resources:" in b]
    assert len(blocks) >= 2
    for number, block in enumerate(blocks):
        text = re.sub(r"^(\s*-\s*)\S*deploy/kubernetes", r"\1BASE", block, flags=re.M)
        assert "BASE" in text, f"overlay {number} names no deploy/kubernetes"
        objects = build(overlay(tmp_path / str(number), text))
        gateway = container(find(objects, "Deployment", "gateway"))
        if "external" in block.lower():
            assert not [o for o in objects if o["metadata"]["name"] == "redis"], "the stack's Redis is left"
            assert env(gateway)["REDIS_HOST"] != "redis"
        if "images:" in block:
            assert not gateway["image"].startswith("stratum-litellm-gateway:"), gateway["image"]


def test_the_helm_values_say_what_the_base_says(base: list[dict[str, Any]]) -> None:
    values = yaml.safe_load(HELM_VALUES.read_text(encoding="utf-8"))
    gateway = find(base, "Deployment", "gateway")
    c = container(gateway)
    variables = env(c)
    assert values["replicaCount"] == gateway["spec"]["replicas"]
    assert str(values["numWorkers"]) == variables["GATEWAY_WORKERS"]
    assert f"{values['image']['repository']}:{values['image']['tag']}" == c["image"]
    plain = {k: v for k, v in variables.items() if isinstance(v, str) and k != "GATEWAY_WORKERS"}
    assert values["envVars"] == plain
    assert values["db"] == {"deployStandalone": False, "useExisting": False} and not values["migrationJob"]["enabled"]
    assert values["proxyConfigMap"] == {"create": False, "name": values["proxyConfigMap"]["name"],
                                        "key": "litellm_config.yaml"}
    assert values["lifecycle"] == c["lifecycle"]
    assert values["terminationGracePeriodSeconds"] == pod(gateway)["terminationGracePeriodSeconds"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert values[probe]["path"] == c[probe]["httpGet"]["path"]
    assert values["pdb"] == {"enabled": True, "maxUnavailable": find(base, "PodDisruptionBudget", "gateway")["spec"]["maxUnavailable"]}
    assert {m["mountPath"] for m in values["volumeMounts"]} == {m["mountPath"] for m in c["volumeMounts"]} - {"/app/config.yaml"}
    # One pinned chart version, the same in the file and the docs.
    pinned = set(re.findall(r"--version (\S+)", HELM_VALUES.read_text(encoding="utf-8")))
    assert len(pinned) == 1 and pinned <= set(re.findall(r"--version (\S+)", kubernetes_docs()))
