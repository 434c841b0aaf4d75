"""What each tier can take: its context window, and whether it takes images, audio, tools.

A tier's limits are learned without the operator writing them twice, each from the first
of these that knows it:

1. the tier's own settings (``tiers.<tier>.limits``);
2. its model group's ``model_info`` in LiteLLM's ``model_list`` (``max_input_tokens``,
   ``supports_vision``, ``supports_audio_input``, ``supports_function_calling``: LiteLLM's
   names);
3. what its backend reports (llama.cpp's ``/props``: the context of one slot and the
   modalities; vLLM's ``/v1/models``: ``max_model_len``).

A limit nobody knows stays unknown (None), and an unknown limit never holds a request off.

:func:`configured` gives each tier's first two layers (known from the settings file alone:
``stratum check`` shows them); :func:`reported` makes the third of a backend's reading, and
the signals merge the three per snapshot (:class:`~.snapshot.Signals`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..config.model_list import deployments

if TYPE_CHECKING:
    from ..config import LimitSettings, StratumSettings, Tier
    from .backends.load import BackendLoad

__all__ = ["LIMITS", "NONE_KNOWN", "REPORTS", "SHOWN", "TierLimits", "configured", "describe", "from_model_info",
           "from_settings", "merged", "reported"]


@dataclass(frozen=True, slots=True)
class TierLimits:
    """One tier's limits; None: unknown."""

    #: Tokens one request may fill, its input and its answer together (a llama.cpp slot's
    #: context, vLLM's ``max_model_len``).
    context_tokens: int | None = None
    #: Tokens one request's input may have (LiteLLM's ``max_input_tokens``).
    input_tokens: int | None = None
    vision: bool | None = None
    audio: bool | None = None
    tools: bool | None = None
    #: Where each known limit came from, by field name (``tiers.smart.limits``,
    #: ``model_info of gemma4-smart``, ``llama-server /props``...).
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name != "sources")


LIMITS = ("context_tokens", "input_tokens", "vision", "audio", "tools")


def merged(*layers: TierLimits | None) -> TierLimits:
    """Each limit from the first layer that knows it (layers in order of precedence)."""
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for layer in layers:
        if layer is None:
            continue
        for name in LIMITS:
            value = getattr(layer, name)
            if value is not None and name not in values:
                values[name] = value
                if name in layer.sources:
                    sources[name] = layer.sources[name]
    return TierLimits(**values, sources=sources)  # type: ignore[arg-type]


#: Nothing known: shared, as most tiers of most ladders have it.
NONE_KNOWN = TierLimits()

#: LiteLLM's ``model_info`` key of each limit it has (``context_tokens`` it has not: its
#: ``max_tokens`` means the output in some entries and the whole window in others).
MODEL_INFO_KEYS: Mapping[str, str] = {
    "input_tokens": "max_input_tokens",
    "vision": "supports_vision",
    "audio": "supports_audio_input",
    "tools": "supports_function_calling",
}

#: What each backend kind reports, and where: kind -> (source, the limits it can tell).
REPORTS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "llamacpp": ("llama-server /props", ("context_tokens", "vision", "audio")),
    "vllm": ("vLLM /v1/models", ("context_tokens",)),
}


def configured(settings: StratumSettings, model_list: Sequence[Any] | None) -> dict[Tier, TierLimits]:
    """Each tier's limits as the settings file says them: its own ``tiers.<tier>.limits``,
    then its model group's ``model_info`` in ``model_list`` (None: a standalone settings
    file, no model_list). Every tier has an entry. Never raises on odd ``model_list`` data."""
    return {
        tier: merged(from_settings(tier, tier_settings.limits),
                     from_model_info(tier_settings.model_group, model_list))
        for tier, tier_settings in settings.tiers.items()
    }


def from_settings(tier: Tier, limits: LimitSettings | None) -> TierLimits:
    """The limits written under ``tiers.<tier>.limits`` (a ``LimitSettings``, or None)."""
    if limits is None:
        return NONE_KNOWN
    values = {name: getattr(limits, name) for name in LIMITS if getattr(limits, name) is not None}
    source = f"tiers.{tier}.limits"
    return TierLimits(**values, sources={name: source for name in values})


def from_model_info(group: str, model_list: Sequence[Any] | None) -> TierLimits:
    """The limits the ``model_info`` of ``group``'s deployments agree on.

    With several deployments a limit counts only if every one of them states it: the
    smallest token count, a capability only when all say the same. A value of the wrong
    type (``"8k"``, ``0``, ``"yes"``) counts as not stated."""
    if not model_list:
        return NONE_KNOWN
    infos = [d.get("model_info") for d in deployments(group, model_list)]
    if not infos:
        return NONE_KNOWN
    values: dict[str, object] = {}
    for name, key in MODEL_INFO_KEYS.items():
        stated = [_valid(name, info.get(key)) if isinstance(info, Mapping) else None for info in infos]
        if any(value is None for value in stated):
            continue
        if name.endswith("_tokens"):
            values[name] = min(stated)  # type: ignore[type-var]
        elif len(set(stated)) == 1:
            values[name] = stated[0]
    source = f"model_info of {group}"
    return TierLimits(**values, sources={name: source for name in values})  # type: ignore[arg-type]


def reported(load: BackendLoad | None) -> TierLimits | None:
    """The limits a backend's reading carries (None: no reading, or it carries none)."""
    if load is None or (load.context_tokens is None and load.vision is None and load.audio is None):
        return None
    values = {name: getattr(load, name) for name in ("context_tokens", "vision", "audio")
              if getattr(load, name) is not None}
    source = REPORTS[load.kind][0] if load.kind in REPORTS else f"{load.kind} backend"
    return TierLimits(**values, sources={name: source for name in values})


#: How each limit is named in ``stratum check``.
SHOWN: Mapping[str, str] = {"context_tokens": "context", "input_tokens": "input", "vision": "vision", "audio": "audio",
          "tools": "tools"}


def describe(limits: TierLimits) -> str:
    """``context 8192 tokens (tiers.smart.limits), vision no (model_info of gemma4-smart)``;
    empty when nothing is known."""
    parts = []
    for name in LIMITS:
        value = getattr(limits, name)
        if value is None:
            continue
        shown = f"{value} tokens" if name.endswith("_tokens") else ("yes" if value else "no")
        where = limits.sources.get(name)
        parts.append(f"{SHOWN[name]} {shown}" + (f" ({where})" if where else ""))
    return ", ".join(parts)


def _valid(name: str, value: Any) -> object | None:
    if name.endswith("_tokens"):
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None
    return value if isinstance(value, bool) else None
