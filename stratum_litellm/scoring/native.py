"""The optional C parts of the scorer, and the switch that turns them off.

Each part is built by ``pip install`` where a C compiler is present and has a pure-Python
counterpart with identical results. ``STRATUM_PURE_PYTHON`` switches parts off:
``1`` (or any value but ``0`` that names no part) all of them, ``scan`` or
``scan,kernel`` the ones named (for tests, benchmarks, and to rule the C code out when
chasing a problem).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["PARTS", "load"]

# Part name -> its C extension in this package. The measurements read the C scan's results
# in place, so they are off whenever the scan is.
PARTS: dict[str, str] = {"scan": "_bytescan", "measure": "_measure", "kernel": "_score_kernel", "text": "_text"}
_NEEDS = {"measure": ("scan",)}


def switched_off() -> frozenset[str]:
    """The parts STRATUM_PURE_PYTHON switches off."""
    value = os.environ.get("STRATUM_PURE_PYTHON", "").strip()
    if value in ("", "0"):
        return frozenset()
    named = {name.strip() for name in value.split(",")} & set(PARTS)
    return frozenset(named) if named else frozenset(PARTS)


def load(part: str) -> ModuleType | None:
    """The C extension of ``part`` (a key of PARTS), or None when it was not built or is switched off."""
    off = switched_off()
    if part in off or any(needed in off for needed in _NEEDS.get(part, ())):
        return None
    try:
        return importlib.import_module(f"stratum_litellm.scoring.{PARTS[part]}")
    except ImportError:  # built without a C compiler: the caller's Python version gives the same results
        return None
