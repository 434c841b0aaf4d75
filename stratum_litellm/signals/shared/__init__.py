"""State shared by every process of a gateway, in the gateway's Redis (see :mod:`.state`)."""

from .merge import merged
from .source import redis_source, shares_state
from .state import Connect, Register, SharedState
from .view import Claim, Claimed, SharedTier, SharedView

__all__ = ["Claim", "Claimed", "Connect", "Register", "SharedState", "SharedTier", "SharedView", "merged",
           "redis_source",
           "shares_state"]
