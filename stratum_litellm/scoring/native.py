"""The optional C extensions of the scorer, and the switch that turns them off.

Each is built by ``pip install`` where a C compiler is present and has a pure-Python
counterpart with identical results; ``STRATUM_PURE_PYTHON=1`` makes every caller use the
Python one (for tests, and to rule the C code out when chasing a problem).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["load"]


def load(name: str) -> ModuleType | None:
    """The C extension ``stratum_litellm.scoring.<name>``, or None when it was not built or is switched off."""
    if os.environ.get("STRATUM_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module(f"stratum_litellm.scoring.{name}")
    except ImportError:  # built without a C compiler: the caller's Python version gives the same results
        return None
