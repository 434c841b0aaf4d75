"""What every settings module shares: tier names, LiteLLM's environment convention, and
the strict base of every settings model."""

from __future__ import annotations

import os
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict

#: A tier's name: the operator's key under ``tiers`` (``fast`` and ``smart`` by default).
Tier = str
#: The tier names of the default two-tier ladder, cheapest first.
TIERS: tuple[Tier, Tier] = ("fast", "smart")
#: Tier names are metric label values and header values: short and plain.
TIER_NAME = r"^[A-Za-z0-9_.-]{1,40}$"

RulePosition = Literal["first", "capacity", "last"]


#: LiteLLM's convention for a config value read from the environment: ``os.environ/NAME``.
ENV_PREFIX = "os.environ/"


def environment_value(value: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """``value`` itself, or for ``os.environ/NAME`` that variable (None when it is unset)."""
    if not value.startswith(ENV_PREFIX):
        return value
    return environ.get(value.removeprefix(ENV_PREFIX))


class Strict(BaseModel):
    # Typos must fail loudly, and "2000" must not silently become 2000.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

