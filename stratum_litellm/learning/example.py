"""What a label keeps of its request: the features a refit needs, and no text by default.

An :class:`Example` is the request's level in each dimension (what the explainable part of a
score reads) and the hashes of the words of its last user turn (what the learned part reads,
:mod:`stratum_litellm.scoring.text`). A profile scores an example exactly as it scores the
request itself, so labels stored without their text can still fit and measure profiles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..scoring import text as text_features
from ..scoring.dimensions import DIMENSIONS
from ..scoring.scorer import levels as levels_of
from ..scoring.view import RequestView

__all__ = ["Example"]


@dataclass(frozen=True, slots=True)
class Example:
    #: One level per dimension, in DIMENSIONS order.
    levels: tuple[float, ...]
    #: The text features of the last user turn (:func:`stratum_litellm.scoring.text.hashes`).
    hashes: tuple[int, ...]
    #: The last user turn, only where text is kept.
    text: str | None = None

    @classmethod
    def empty(cls) -> "Example":
        """No features yet (a label whose request is still to be measured)."""
        return cls((0.0,) * len(DIMENSIONS), ())

    @classmethod
    def of_view(cls, view: RequestView, keep_text: bool = False) -> "Example":
        found = levels_of(view)
        last = view.last_user if isinstance(view.last_user, str) else ""
        return cls(tuple(found[d] for d in DIMENSIONS), tuple(text_features.hashes(last)),
                   last if keep_text else None)

    @classmethod
    def of_request(cls, body: Mapping[str, Any], keep_text: bool = False) -> "Example":
        """From a request body (``messages``, ``tools``... as the gateway sees it)."""
        return cls.of_view(RequestView.from_request(body), keep_text)

    @classmethod
    def of_prompt(cls, prompt: str, keep_text: bool = False) -> "Example":
        return cls.of_view(RequestView.from_prompt(prompt), keep_text)

    def features_json(self) -> str:
        """The features as stored (compact JSON; the text is stored apart)."""
        return json.dumps({"features": text_features.FEATURES, "levels": [round(x, 6) for x in self.levels],
                           "hashes": list(self.hashes)}, separators=(",", ":"))

    @classmethod
    def from_features_json(cls, raw: str, text: str | None = None) -> "Example":
        data = json.loads(raw)
        if data.get("features") != text_features.FEATURES:
            raise ValueError(f"features {data.get('features')!r} are not {text_features.FEATURES!r}")
        found = data["levels"]
        if len(found) != len(DIMENSIONS):
            raise ValueError(f"expected {len(DIMENSIONS)} levels, got {len(found)}")
        return cls(tuple(float(x) for x in found), tuple(int(h) for h in data["hashes"]), text)

    def with_text(self, keep: bool) -> "Example":
        return self if keep or self.text is None else Example(self.levels, self.hashes, None)

