"""How complex a chat request is: a score in [0, 1] over named dimensions (see :mod:`.scorer`)."""

from __future__ import annotations

from .scorer import DIMENSIONS, Score, Scorer

__all__ = ["DIMENSIONS", "Score", "Scorer"]
