"""Build, load and drive the fake ``libnvidia-ml.so.1`` in ``tests/support/nvml_fake/fake_nvml.c``.

The fake lets the real ``pynvml`` (nvidia-ml-py) run its whole code path on a machine
without a GPU: the C library re-reads a small state file (named by ``$FAKE_NVML_STATE``)
on every call, and :class:`FakeNvml` rewrites that file atomically, so a poller thread
never sees half a state.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pynvml

SOURCE = Path(__file__).with_name("nvml_fake") / "fake_nvml.c"
LIBRARY_NAME = "libnvidia-ml.so.1"
STATE_ENV = "FAKE_NVML_STATE"
GIB = 1024**3

_built: Path | None = None


def build(out_dir: Path | str | None = None) -> Path:
    """Compile the fake once per process (one pytest session) and return its path."""
    global _built
    if _built is not None and _built.exists():
        return _built
    if shutil.which("gcc") is None:
        raise RuntimeError("gcc is needed to build the fake NVML library")
    target_dir = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="fake-nvml-"))
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / LIBRARY_NAME
    # The soname matters: pynvml dlopen()s "libnvidia-ml.so.1", and glibc hands back an
    # already-loaded object whose soname matches, i.e. this fake once it is preloaded.
    subprocess.run(
        ["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
         f"-Wl,-soname,{LIBRARY_NAME}", "-o", str(target), str(SOURCE)],
        check=True,
        capture_output=True,
        text=True,
    )
    _built = target
    return target


def load(path: Path | str) -> ctypes.CDLL:
    """Load the fake globally so pynvml's own ``CDLL("libnvidia-ml.so.1")`` resolves to it."""
    lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    lib.fakenvml_calls.argtypes = [ctypes.c_char_p]
    lib.fakenvml_calls.restype = ctypes.c_ulong
    lib.fakenvml_init_count.argtypes = []
    lib.fakenvml_init_count.restype = ctypes.c_int
    lib.fakenvml_reset.argtypes = []
    lib.fakenvml_reset.restype = None
    return lib


def reset_pynvml() -> None:
    """Forget pynvml's module-level state so the next nvmlInit() starts from scratch."""
    with pynvml.libLoadLock:
        pynvml.nvmlLib = None
        pynvml._nvmlGetFunctionPointer_cache.clear()
        pynvml._nvmlLib_refcount = 0


def error_code(error: str | int) -> int:
    """``"GPU_IS_LOST"`` / ``"NVML_ERROR_GPU_IS_LOST"`` / ``15`` -> 15 (codes from pynvml)."""
    if isinstance(error, int):
        return error
    name = error if error.startswith("NVML_ERROR_") else f"NVML_ERROR_{error}"
    return int(getattr(pynvml, name))


@dataclass(frozen=True)
class FakeGpu:
    name: str
    total: int
    free: int
    used: int
    util: int = 0
    mem_util: int = 0


@dataclass(frozen=True)
class _Failure:
    function: str
    code: int
    device: int | None


class FakeNvml:
    """Writes the fake's state file; every mutator rewrites the whole file atomically."""

    def __init__(self, lib: ctypes.CDLL, state_path: Path | str) -> None:
        self.lib = lib
        self.state_path = Path(state_path)
        self._gpus: dict[int, FakeGpu] = {}
        self._count: int | None = None
        self._failures: list[_Failure] = []
        self._hangs: set[str] = set()

    # -- state -------------------------------------------------------------
    def set_gpus(self, gpus: Iterable[FakeGpu] | dict[int, FakeGpu], count: int | None = None) -> None:
        """Replace the devices; a dict allows gaps (a missing index behaves like a lost GPU)."""
        self._gpus = dict(gpus) if isinstance(gpus, dict) else dict(enumerate(gpus))
        self._count = count
        self.flush()

    def fail(self, function: str, error: str | int, device: int | None = None) -> None:
        """Make ``function`` return ``error`` (for every call, or for one device only)."""
        self._failures.append(_Failure(function, error_code(error), device))
        self.flush()

    def clear_failures(self) -> None:
        self._failures.clear()
        self.flush()

    def hang(self, function: str) -> None:
        """Make ``function`` block inside C until :meth:`release` (simulates a stuck driver)."""
        self._hangs.add(function)
        self.flush()

    def release(self) -> None:
        self._hangs.clear()
        self.flush()

    def render(self) -> str:
        lines = ["# written by tests/support/nvml_fake.py"]
        if self._count is not None:
            lines.append(f"count {self._count}")
        for index, gpu in sorted(self._gpus.items()):
            if "\n" in gpu.name:
                raise ValueError("GPU names must be one line")
            lines.append(
                f"gpu {index} {gpu.total} {gpu.free} {gpu.used} {gpu.util} {gpu.mem_util} {gpu.name}"
            )
        for failure in self._failures:
            device = "" if failure.device is None else f" {failure.device}"
            lines.append(f"fail {failure.function} {failure.code}{device}")
        for function in sorted(self._hangs):
            lines.append(f"hang {function}")
        return "\n".join(lines) + "\n"

    def flush(self) -> None:
        # Write-then-rename: the C side opens the file on every call and must see either
        # the old or the new state, never a torn one.
        tmp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.render())
        os.replace(tmp, self.state_path)

    # -- observation -------------------------------------------------------
    def calls(self, function: str) -> int:
        value = int(self.lib.fakenvml_calls(function.encode()))
        if value == ctypes.c_ulong(-1).value:
            raise KeyError(f"the fake does not count {function}")
        return value

    def init_count(self) -> int:
        """NVML's init refcount inside the fake (inits minus successful shutdowns)."""
        return int(self.lib.fakenvml_init_count())

    def reset_counters(self) -> None:
        self.lib.fakenvml_reset()


#: The GPU a gateway test reads unless it says otherwise: 16 GB, half free, 20 % busy (room
#: on every GPU check of the default settings).
HALF_FREE = FakeGpu("Test GPU 16GB", total=16 * GIB, free=8 * GIB, used=8 * GIB, util=20)


def for_a_process(state_path: Path | str, gpus: Iterable[FakeGpu] = (HALF_FREE,)) -> tuple[FakeNvml, dict[str, str]]:
    """The fake for another process (a gateway, the ``stratum`` command): writes ``gpus`` to
    ``state_path`` and returns the :class:`FakeNvml` that changes them later, and the
    environment that makes that process's real pynvml load the fake. LD_LIBRARY_PATH is
    searched before the system's library paths, so a real ``libnvidia-ml.so.1`` on a GPU
    machine is not the one loaded: the same GPUs on every machine. (Its ``calls()`` and
    counters read this process, not that one: they are not for these.)"""
    library = build()
    fake = FakeNvml(None, state_path)  # type: ignore[arg-type]
    fake.set_gpus(gpus)
    return fake, {"LD_LIBRARY_PATH": str(library.parent), STATE_ENV: str(fake.state_path)}
