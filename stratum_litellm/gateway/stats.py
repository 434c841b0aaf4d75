"""What the router reports about itself: one read model, taken at one moment.

Metrics, the CLI and tests read a :class:`RouterStats`; none of them reaches into the
engine's signal sources, so those can change shape without touching the readers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..config import StratumSettings, Tier
from ..learning.writer import Agreement
from ..scoring.profile import Profile
from ..signals.backends import BackendLoad
from ..signals.budget import BudgetLeft
from ..signals.gpu import GpuReading
from ..signals.latency import TierLatency


@dataclass(frozen=True, slots=True)
class RouterStats:
    #: The settings in force (so a reader can draw each signal against its limit).
    settings: StratumSettings
    #: Latency averages, sample counts and in-flight requests of each tier.
    latency: Mapping[Tier, TierLatency]
    #: Each configured GPU index and its reading, None when unknown.
    gpus: Mapping[int, GpuReading | None]
    #: The backend load of each tier whose backend is read.
    backends: Mapping[Tier, BackendLoad]
    #: What is left of the overflow tier's budget (no entry without an overflow tier).
    budgets: Mapping[Tier, BudgetLeft] = field(default_factory=dict)
    #: Whether the state shared in Redis is fresh; None when this router shares none.
    shared_up: bool | None = None
    #: The scoring profile in use.
    profile: Profile | None = None
    #: The learning loop is on (judged samples or recorded decisions).
    learning_active: bool = False
    samples_in_progress: int = 0
    #: The profile against the newest labels, and the store's labels (None: not measured yet).
    agreement: Agreement | None = None
