"""The package as someone else installs it: ``python -m build`` makes the sdist and the
wheel, each goes into a virtual environment of its own, and the README's "Add it to an
existing LiteLLM gateway" steps run as written against a real llama-server.

Slow (a build, fresh environments, a gateway start), so marked ``slow``. LiteLLM itself is
installed once into a cached environment that holds only ``litellm[proxy]`` (LITELLM_ONLY,
keyed by the LiteLLM pin), the way an existing gateway has it; each test then makes a fresh
venv that sees that one through a ``.pth`` file and installs the built package into it with
pip (the machine's pip configuration, find-links and constraints, applies). A reinstall of
LiteLLM per test would cost about a minute on two cores and test LiteLLM, not this package.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from process import ROOT, ManagedProcess, free_port
from servers import LlamaServer

pytestmark = pytest.mark.slow

def litellm_requirement() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'"(litellm\[proxy\][^"]*)"', text)
    assert match, "pyproject.toml declares no litellm[proxy] dependency"
    return match.group(1)


# The cache scripts/stack/paths.py names (STRATUM_CACHE_DIR), so an empty one is filled anew.
CACHE = Path(os.environ.get("STRATUM_CACHE_DIR") or Path.home() / ".cache" / "stratum-litellm")
LITELLM_ONLY = CACHE / f"venv-litellm-only-{re.sub(r'[^A-Za-z0-9.=]+', '_', litellm_requirement())}-py{sys.version_info[0]}{sys.version_info[1]}"
# Prompts from both ends and the middle of the score range, in several scripts.
PROMPTS = [
    "hi there! thanks",
    "Prove rigorously that for every prime p greater than 3 the number p squared minus one is divisible by 24.",
    "def f(x):\n    return [i**2 for i in range(x) if i % 3 == 0]\nWhy is this slow for large x? Rewrite it.",
    "比较快速排序和归并排序的时间复杂度，并解释为什么在最坏情况下快速排序更慢。",
    "Integrate x^2 * e^{-x} from 0 to infinity and show each step; then compute the variance.",
    "What's the weather like? Not asking for a forecast, just small talk.",
    '{"user_name": "a", "snake_case_key": {"nested": [1, 2, 3]}}',
]


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 900, cwd: Path | None = None) -> str:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATUM_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", **extra)
    return env


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT], env=clean_env(), cwd=ROOT)
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return {"sdist": sdists[0], "wheel": wheels[0]}


@pytest.fixture(scope="session")
def litellm_only() -> Path:
    """A cached venv holding only litellm[proxy] at the pinned version (and its own deps)."""
    python = LITELLM_ONLY / "bin" / "python"
    done = LITELLM_ONLY / ".complete"
    if not done.exists():
        if LITELLM_ONLY.exists():
            import shutil

            shutil.rmtree(LITELLM_ONLY)  # a half-built one from an interrupted run
        run([sys.executable, "-m", "venv", LITELLM_ONLY])
        run([python, "-m", "pip", "install", "--quiet", litellm_requirement()], env=clean_env())
        done.touch()
    return LITELLM_ONLY


def fresh_venv(path: Path, base: Path) -> Path:
    """A new venv that sees ``base``'s packages through a .pth file; returns its python."""
    run([sys.executable, "-m", "venv", "--without-pip", path])
    python = path / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    base_site = Path(run([base / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "litellm_only.pth").write_text(f"{base_site}\n")
    return python


def pip_install(base: Path, python: Path, target: Path, **env: str) -> str:
    return run([base / "bin" / "python", "-m", "pip", "--python", python, "install", "--no-cache-dir", target],
               env=clean_env(**env))


def engines(python: Path) -> tuple[str, str, str]:
    code = ("from stratum_litellm.scoring.scan import ENGINE\n"
            "from stratum_litellm.scoring.measure import MEASURE_ENGINE\n"
            "from stratum_litellm.scoring.text import ENGINE as TEXT_ENGINE\n"
            "print(ENGINE, MEASURE_ENGINE, TEXT_ENGINE)")
    scan, measure, text = run([python, "-c", code], env=clean_env(), cwd=Path("/")).split()
    return scan, measure, text


def scores(python: Path, **env: str) -> list[float]:
    """``stratum score --jsonl`` of the installed package over PROMPTS."""
    lines = "\n".join(json.dumps({"id": i, "prompt": p}) for i, p in enumerate(PROMPTS)) + "\n"
    result = subprocess.run([str(python.with_name("stratum")), "score", "--jsonl"], input=lines, capture_output=True,
                            text=True, env=clean_env(**env), timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [o["id"] for o in out] == list(range(len(PROMPTS)))
    return [o["score"] for o in out]


def installed_files(python: Path) -> list[str]:
    code = "import importlib.metadata as m; print('\\n'.join(str(f) for f in m.files('stratum-litellm')))"
    return run([python, "-c", code], env=clean_env(), cwd=Path("/")).split()


def test_the_wheel_installs_with_its_c_parts(dist: dict[str, Path], litellm_only: Path, tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv", litellm_only)
    pip_install(litellm_only, python, dist["wheel"])
    assert dist["wheel"].name.endswith(".whl") and "-py3-none-any" not in dist["wheel"].name, \
        "a wheel with C parts is platform-specific"
    assert engines(python) == ("c", "c", "c")
    native = [f for f in installed_files(python) if f.endswith(".so")]
    assert len(native) == 4, native  # scan, measurements, score kernel, learned text part
    # The pure-Python path of the same install gives the same scores.
    assert scores(python) == scores(python, STRATUM_PURE_PYTHON="1")


def test_the_sdist_installs_with_and_without_a_c_compiler_and_scores_the_same(
    dist: dict[str, Path], litellm_only: Path, tmp_path: Path
) -> None:
    with_cc = fresh_venv(tmp_path / "with-cc", litellm_only)
    pip_install(litellm_only, with_cc, dist["sdist"])
    assert engines(with_cc) == ("c", "c", "c")

    # No compiler at all: CC and CXX fail, setup.py's optional extensions are skipped.
    without_cc = fresh_venv(tmp_path / "without-cc", litellm_only)
    log = pip_install(litellm_only, without_cc, dist["sdist"], CC="false", CXX="false")
    assert "Successfully installed" in log
    assert engines(without_cc) == ("python", "python", "python")
    assert not [f for f in installed_files(without_cc) if f.endswith(".so")]
    assert scores(without_cc) == scores(with_cc)


# -- README: "Add it to an existing LiteLLM gateway", run as written --------------------------


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("## Add it to an existing LiteLLM gateway", 1)[1].split("\n## ", 1)[0]


def code_blocks(section: str, language: str) -> list[str]:
    blocks = re.findall(r"```" + language + r"\n(.*?)```", section, flags=re.S)
    # The steps are indented list items: drop the common indent.
    out = []
    for block in blocks:
        lines = block.splitlines()
        indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
        out.append("\n".join(l[indent:] for l in lines))
    return out


def test_the_readme_steps_add_the_router_to_a_gateway_that_only_has_litellm(
    dist: dict[str, Path], litellm_only: Path, tmp_path: Path, llama_build: tuple[Path, Path]
) -> None:
    section = readme_section()
    install, start = code_blocks(section, "sh")
    (config_lines,) = code_blocks(section, "yaml")

    # Step 1: `pip install /path/to/stratum-litellm`, with the built wheel as the path.
    assert install.split("#")[0].split() == ["pip", "install", "/path/to/stratum-litellm"]
    python = fresh_venv(tmp_path / "gateway-venv", litellm_only)
    pip_install(litellm_only, python, dist["wheel"])
    # The litellm command of an existing gateway, run by this venv's Python.
    shim = python.with_name("litellm")
    shim.write_text(f"#!{python}\nimport sys\nfrom litellm import run_server\nsys.exit(run_server())\n")
    shim.chmod(0o755)

    # Step 2: the lines added to the operator's minimal config.
    config = tmp_path / "config.yaml"
    config.write_text(config_lines)
    assert "stratum_litellm.proxy_handler" in yaml.safe_load(config_lines)["litellm_settings"]["callbacks"]

    with LlamaServer(alias="gemma4-any", slots=2) as backend:
        port = free_port()
        env = clean_env(PATH=f"{python.parent}:{os.environ['PATH']}", LITELLM_MASTER_KEY="sk-readme-test-key",
                        STRATUM_FAST_API_BASE=backend.api_base, STRATUM_SMART_API_BASE=backend.api_base)
        # Step 3, as written: check, then start (on a free port instead of 4000).
        check, launch = [line for line in start.splitlines() if line.strip() and not line.startswith("#")]
        assert check == "stratum check config.yaml"
        run(["sh", "-c", check], env=env, cwd=tmp_path)
        assert launch.endswith("--port 4000")
        # The line runs as written (sh keeps it in its process group, which stop() ends).
        gateway = ManagedProcess(["sh", "-c", f"{launch.removesuffix('4000')}{port}"],
                                 f"http://127.0.0.1:{port}/health/liveliness", env, name="readme-gateway",
                                 ready_timeout_s=180, cwd=tmp_path)
        with gateway:
            reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                               headers={"Authorization": "Bearer sk-readme-test-key"}, timeout=120,
                               json={"model": "gemma4-auto", "max_tokens": 8,
                                     "messages": [{"role": "user", "content": "hi there! thanks"}]})
            assert reply.status_code == 200, reply.text
            assert reply.headers["x-stratum-tier"] == "fast"
            assert reply.headers["x-litellm-model-group"] == "gemma4-fast"
            assert reply.json()["choices"][0]["message"]["content"]
