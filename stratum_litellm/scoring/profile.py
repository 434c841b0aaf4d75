"""A scoring profile: what turns a request's levels and words into its score, in one file.

A profile holds the bias and one weight per dimension (the explainable part), and optionally
a learned part over the words of the last user turn (:mod:`.text`): a sparse table of hashed
word and word-pair weights. Two ship with the package:

- ``handmade``: the dimension weights fitted by ``scripts/fit_scorer.py`` (``data/weights.json``),
  no learned part;
- ``default``: the same plus a learned part fitted on labelled prompts by ``stratum fit``
  (``data/profile.json``); what the router uses unless ``complexity.profile`` names another.

``stratum fit --out FILE`` writes the operator's own. The file is JSON::

    {"format": "stratum-profile/1", "name": "...", "bias": -2.4,
     "weights": {"length": 1.5, ...},                      # every dimension
     "text": {"features": "words-1-2/crc32/v1", "bits": 18,
              "indices": [...], "weights": [...]},         # or null
     "fitted": {"at": "2026-12-06T20:00:00Z", "labels": 412, ...}}

A file that cannot be read or does not hold a whole profile raises :class:`ProfileError`
naming the file and what was expected.
"""

from __future__ import annotations

import json
import math
import os
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import text as text_features
from .dimensions import DIMENSIONS

__all__ = ["BUILTIN", "FORMAT", "Profile", "ProfileError", "TextPart", "builtin", "load_profile", "resolve",
           "settings_folder"]

FORMAT = "stratum-profile/1"
#: Profiles shipped with the package, by name: the file under ``scoring/data``.
BUILTIN: Mapping[str, str] = {"default": "profile.json", "handmade": "weights.json"}
#: Bounds of a learned part's table: 2**bits float32 weights (4 KB to 16 MB).
MIN_BITS, MAX_BITS = 10, 22


class ProfileError(ValueError):
    """A profile file the router refuses, with the file and what was expected."""


@dataclass(frozen=True, slots=True, eq=False)
class TextPart:
    """The learned weights over hashed word features: sparse on disk, a dense table in memory."""

    bits: int
    indices: tuple[int, ...]
    weights: tuple[float, ...]
    table: array = field(repr=False)

    @classmethod
    def of(cls, bits: int, indices: Sequence[int], weights: Sequence[float]) -> "TextPart":
        return cls(bits, tuple(indices), tuple(weights), text_features.table(bits, indices, weights))

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1

    def contribution(self, text: str) -> float:
        """This part's logit for a text (the last user turn)."""
        return text_features.contribution(text, self.table, self.mask)

    def contribution_of(self, hashes: Sequence[int]) -> float:
        """The same from the text's feature hashes (stored labels keep those, not the text)."""
        if not hashes:
            return 0.0
        table, mask = self.table, self.mask
        total = 0.0
        for feature in hashes:
            total += table[feature & mask]
        return total / math.sqrt(len(hashes))

    def top(self, text: str, n: int = 8) -> list[tuple[str, float]]:
        """The features of ``text`` that weigh most in this part (for ``stratum explain``)."""
        words = text_features.tokens(text)
        names = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
        features = text_features.hashes(text)
        scale = 1.0 / math.sqrt(len(features)) if features else 0.0
        seen: dict[str, float] = {}
        for name, feature in zip(names, features):
            seen[name] = seen.get(name, 0.0) + self.table[feature & self.mask] * scale
        return sorted(((k, v) for k, v in seen.items() if v), key=lambda kv: -abs(kv[1]))[:n]


@dataclass(frozen=True, slots=True, eq=False)
class Profile:
    """Bias, dimension weights and an optional learned part; ``fitted`` says how it was made."""

    name: str
    bias: float
    weights: Mapping[str, float]
    text: TextPart | None = None
    fitted: Mapping[str, Any] = field(default_factory=dict)
    #: Where it was read from (a file, or ``builtin:<name>``).
    source: str = ""

    def logit(self, levels: Sequence[float], hashes: Sequence[int] = ()) -> float:
        """The score's logit from a request's levels (DIMENSIONS order) and text features."""
        total = self.bias
        for name, level in zip(DIMENSIONS, levels):
            total += self.weights[name] * level
        if self.text is not None:
            total += self.text.contribution_of(hashes)
        return total

    def value(self, levels: Sequence[float], hashes: Sequence[int] = ()) -> float:
        """The score in [0, 1] for stored features (as :meth:`logit`)."""
        z = max(-60.0, min(60.0, self.logit(levels, hashes)))
        return 1.0 / (1.0 + math.exp(-z))

    @property
    def labels(self) -> int:
        """How many labels it was fitted on (0: none, e.g. the hand-made one)."""
        value = self.fitted.get("labels", 0)
        return value if isinstance(value, int) else 0

    @property
    def fitted_at(self) -> str | None:
        at = self.fitted.get("at")
        return at if isinstance(at, str) else None

    def to_json(self) -> dict[str, Any]:
        text = None
        if self.text is not None:
            text = {"features": text_features.FEATURES, "bits": self.text.bits, "indices": list(self.text.indices),
                    "weights": [round(w, 6) for w in self.text.weights]}
        return {"format": FORMAT, "name": self.name, "bias": round(self.bias, 6),
                "weights": {d: round(float(self.weights[d]), 6) for d in DIMENSIONS}, "text": text,
                "fitted": dict(self.fitted)}


def builtin(name: str) -> Profile:
    """A profile shipped with the package (see :data:`BUILTIN`)."""
    data = resources.files("stratum_litellm.scoring").joinpath(f"data/{BUILTIN[name]}").read_text(encoding="utf-8")
    return parse(json.loads(data), f"builtin:{name}", name)


def resolve(spec: str | None, base: str | os.PathLike[str] | None = None) -> str:
    """Where a ``complexity.profile`` value points: a builtin name, or a file path (relative
    paths are read from ``base``, the settings file's folder)."""
    if spec is None or spec in BUILTIN:
        return f"builtin:{spec or 'default'}"
    path = Path(os.path.expanduser(spec))
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return str(path)


def settings_folder(source: str) -> str | None:
    """The folder relative profile paths are read from: that of the settings file named by
    ``source`` (None when the settings came from elsewhere: the working directory)."""
    return str(Path(source).resolve().parent) if source and os.path.isfile(source) else None


def load_profile(spec: str | None, base: str | os.PathLike[str] | None = None) -> Profile:
    """The profile a ``complexity.profile`` value names (None: the shipped default)."""
    where = resolve(spec, base)
    if where.startswith("builtin:"):
        return builtin(where.removeprefix("builtin:"))
    try:
        raw = Path(where).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read profile {where}: {exc.strerror or exc}") from None
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ProfileError(f"profile {where} is not JSON: {exc}") from None
    return parse(document, where)


def parse(document: Any, source: str, name: str | None = None) -> Profile:
    """A profile from its JSON document, checked whole."""
    def refuse(what: str) -> ProfileError:
        return ProfileError(f"profile {source}: {what}")

    if not isinstance(document, Mapping):
        raise refuse(f"expected a JSON object, got {type(document).__name__}")
    if "format" in document and document["format"] != FORMAT:
        raise refuse(f"format {document['format']!r} is not {FORMAT!r}")
    bias = document.get("bias")
    if not _finite(bias):
        raise refuse(f"'bias' must be a finite number, got {bias!r}")
    weights = document.get("weights")
    if not isinstance(weights, Mapping):
        raise refuse("'weights' must be an object with one number per dimension")
    missing = [d for d in DIMENSIONS if d not in weights]
    unknown = [k for k in weights if k not in DIMENSIONS]
    if missing or unknown:
        raise refuse(f"'weights' must name exactly the dimensions ({', '.join(DIMENSIONS)}); "
                     + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(map(str, unknown))}"))
    bad = [d for d in DIMENSIONS if not _finite(weights[d])]
    if bad:
        raise refuse(f"weights.{bad[0]} must be a finite number, got {weights[bad[0]]!r}")
    fitted = document.get("fitted", document.get("fit", {}))
    return Profile(
        name=str(document.get("name") or name or Path(source).stem),
        bias=float(bias),
        weights={d: float(weights[d]) for d in DIMENSIONS},
        text=_text_part(document.get("text"), refuse),
        fitted=dict(fitted) if isinstance(fitted, Mapping) else {},
        source=source,
    )


def _text_part(raw: Any, refuse: Any) -> TextPart | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise refuse("'text' must be an object (features, bits, indices, weights) or null")
    if raw.get("features") != text_features.FEATURES:
        raise refuse(f"text.features {raw.get('features')!r}: this version scores with {text_features.FEATURES!r}; "
                     "refit the profile (stratum fit)")
    bits = raw.get("bits")
    if type(bits) is not int or not MIN_BITS <= bits <= MAX_BITS:
        raise refuse(f"text.bits must be an integer from {MIN_BITS} to {MAX_BITS}, got {bits!r}")
    indices, values = raw.get("indices"), raw.get("weights")
    if not isinstance(indices, list) or not isinstance(values, list) or len(indices) != len(values):
        raise refuse("text.indices and text.weights must be lists of the same length")
    size = 1 << bits
    for position, (index, value) in enumerate(zip(indices, values)):
        if type(index) is not int or not 0 <= index < size:
            raise refuse(f"text.indices[{position}] must be an integer from 0 to {size - 1}, got {index!r}")
        if not _finite(value):
            raise refuse(f"text.weights[{position}] must be a finite number, got {value!r}")
    return TextPart.of(bits, indices, [float(v) for v in values])


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
