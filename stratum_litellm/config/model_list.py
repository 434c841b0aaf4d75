"""Each tier's backend, read from the gateway's own ``model_list``.

A tier without ``backend:`` has its load signals read at the ``api_base`` its model group
already names in LiteLLM's ``model_list`` (the kind detected from what answers there), so
the operator writes each address once. ``backend: off`` reads nothing. A tier gets no
backend, with a note saying why, when its group has no ``api_base`` (a hosted provider),
several different ones (say which with ``backend:``), one from an unset environment
variable, or when it is the overflow tier (a hosted API has no load signals to read).

The same entries' ``model_info`` tells what each tier's model can take
(:mod:`stratum_litellm.signals.limits`).

Plain data in, settings out: LiteLLM is never imported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from .base import Tier, environment_value
from .settings import StratumSettings
from .tiers import BackendSettings


def model_list_of(document: Any) -> list[Any] | None:
    """The ``model_list`` of a parsed gateway config, if it has one."""
    models = document.get("model_list") if isinstance(document, Mapping) else None
    return models if isinstance(models, list) else None


def deployments(group: str, model_list: Sequence[Any]) -> list[Mapping[str, Any]]:
    """The entries of ``model_list`` that serve ``group`` (their ``model_name``), in order;
    what is not a mapping is skipped. Their ``model_info`` says what the model can take
    (:func:`stratum_litellm.signals.limits.from_model_info`)."""
    return [d for d in model_list if isinstance(d, Mapping) and d.get("model_name") == group]


def fill_backends(settings: StratumSettings, model_list: Sequence[Any] | None,
                  environ: Mapping[str, str] = os.environ) -> tuple[StratumSettings, dict[Tier, str]]:
    """``settings`` with each tier that names no ``backend`` read at its group's
    ``api_base``, and a note per tier saying where its backend comes from (or why none)."""
    notes: dict[Tier, str] = {}
    tiers = {}
    for tier, tier_settings in settings.tiers.items():
        if tier_settings.backend == "off":
            notes[tier] = "off (backend: off)"
        elif tier_settings.backend is not None:
            notes[tier] = f"{tier_settings.backend.url} (backend:)"
        elif tier_settings.overflow:
            notes[tier] = "none (an overflow tier is not polled)"
        elif model_list is None:
            notes[tier] = "none (no model_list to read an api_base from; set backend:)"
        else:
            backend, notes[tier] = _from_model_list(tier_settings.model_group, model_list, environ)
            if backend is not None:
                tiers[tier] = tier_settings.model_copy(update={"backend": backend})
    if not tiers:
        return settings, notes
    return settings.model_copy(update={"tiers": {**settings.tiers, **tiers}}), notes


def _from_model_list(group: str, model_list: Sequence[Any],
                     environ: Mapping[str, str]) -> tuple[BackendSettings | None, str]:
    params = [d.get("litellm_params") for d in deployments(group, model_list)]
    params = [p for p in params if isinstance(p, Mapping)]
    bases = {p.get("api_base") for p in params}
    if not params or bases == {None}:
        return None, f"none ({group} has no api_base in model_list)"
    if len(bases) > 1:
        return None, f"none ({group} has {len(bases)} deployments with different api_base; set backend: to pick one)"
    base, key = _resolved(params[0].get("api_base"), environ), _resolved(params[0].get("api_key"), environ)
    if base is None:
        return None, f"none ({group}'s api_base {params[0].get('api_base')!r} names an unset variable)"
    try:
        backend = BackendSettings(kind="auto", url=base, api_key=key)
    except ValidationError as exc:
        return None, f"none ({group}'s api_base {base!r}: {exc.errors()[0]['msg']})"
    return backend, f"{base} (api_base of {group} in model_list, kind detected)"


def _resolved(value: Any, environ: Mapping[str, str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return environment_value(value, environ) or None
