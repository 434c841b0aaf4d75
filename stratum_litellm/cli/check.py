"""``stratum check``: validate a config file without starting anything (exit 0, or 2)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


from ..config import SECTION_PATH, BackendSettings, SettingsError, StratumSettings, judge_of, read_document, settings_of
from ..learning.store import store_path
from ..config.model_list import fill_backends, model_list_of
from ..routing.policy import Policy
from ..signals.backends.load import BackendTarget
from ..signals.limits import LIMITS, REPORTS, SHOWN, TierLimits, configured, describe
from ..signals.shared import redis_source, shares_state
from .inputs import EXIT_BAD_CONFIG, EXIT_OK


def run(args: argparse.Namespace) -> int:
    try:
        document = read_document(args.file)  # read once: settings, model_list and Redis
        settings = settings_of(document, args.file)
        policy = Policy(settings, source=args.file)  # loads python_rules too
        models = model_list_of(document)
        _groups_are_served(settings, models, args.file)
        redis = redis_source(document, os.environ)
        shared = shares_state(settings, args.file, redis, 1, "the gateway config")
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_CONFIG
    ladder = policy.ladder
    rungs = [f"{tier} ({settings.model_group(tier)}, from {score})" for tier, score in zip(ladder.local, ladder.entry)]
    if ladder.overflow is not None:
        rungs.append(f"{ladder.overflow} ({settings.model_group(ladder.overflow)}, overflow)")
    print(f"ok: {args.file}: routed model {settings.routed_model!r} -> {' < '.join(rungs)}, "
          f"{len(settings.rules)} config rules")
    filled, notes = fill_backends(settings, models)
    for tier, note in notes.items():
        print(f"  {tier} backend signals: {note}")
    limits = configured(settings, models)
    for tier, tier_settings in filled.tiers.items():
        print(f"  {tier} limits: {limits_line(tier, tier_settings.model_group, limits[tier], tier_settings.polled)}")
    learning = settings.learning
    if learning.active:
        tier, group = judge_of(settings)
        judged = (f"judged samples: {learning.judged.share:.1%} of routed requests, at most {learning.judged.per_hour}"
                  f"/hour and {learning.judged.per_day}/day, judged by {group}" if learning.judged.enabled
                  else "judged samples: off")
        feedback = "decisions kept for Open WebUI's ratings" if learning.feedback.enabled else "no decisions kept"
        print(f"  learning: {judged}; {feedback}; labels in {store_path(settings, args.file)}")
    print(f"  profile: {policy.scorer.profile.name} ({policy.scorer.profile.source})")
    if shared:
        print(f"  shared state: in the gateway's Redis ({redis})")
    else:
        why = "shared_state.mode: off" if settings.shared_state.mode == "off" else "no Redis configured"
        print(f"  shared state: none, each gateway process keeps its own ({why})")
    return EXIT_OK


def limits_line(tier: str, group: str, limits: TierLimits, backend: BackendSettings | None) -> str:
    """What the tier's model can take and where each came from; then what its backend
    will add at run time (only what the configuration left unknown), and where it is read."""
    known = describe(limits)
    later = _from_backend(limits, backend)
    if not known and later is None:
        return f"none known (tiers.{tier}.limits, or model_info of {group} in model_list, can say them)"
    return "; ".join(part for part in (known or "none configured", later) if part)


def _from_backend(limits: TierLimits, backend: BackendSettings | None) -> str | None:
    if backend is None:
        return None
    url = BackendTarget(backend.kind, backend.url).url  # as the poller reads it: no /v1
    if backend.kind == "llama-swap":
        return f"none from its backend (llama-swap at {url} reports none)"
    said = []
    for kind in tuple(REPORTS) if backend.kind == "auto" else (backend.kind,):
        source, names = REPORTS[kind]
        server, path = source.split(" ", 1)
        wanted = ", ".join(SHOWN[name] for name in LIMITS if name in names and getattr(limits, name) is None)
        if wanted:
            said.append(f"{wanted} if {server} ({path})" if backend.kind == "auto" else f"{wanted} ({source})")
    if not said:
        return None
    detected = ", kind detected" if backend.kind == "auto" else ""
    return f"from its backend at run time ({url}{detected}): {', '.join(said)}"


def _groups_are_served(settings: StratumSettings, models: list[Any] | None, file: str) -> None:
    """In a gateway config, every tier's model group must be a ``model_name`` of its
    ``model_list`` (a standalone settings file has none to check against)."""
    if models is None:
        return
    served = {m.get("model_name") for m in models if isinstance(m, dict)}
    where = ".".join(SECTION_PATH)
    for tier, tier_settings in settings.tiers.items():
        if tier_settings.model_group not in served:
            raise SettingsError(f"invalid stratum settings in {file}:\n  {where}.tiers.{tier}.model_group: "
                                f"{tier_settings.model_group!r} is not a model_name in model_list "
                                f"(model_list has: {', '.join(sorted(str(n) for n in served))})")
    _, judge = judge_of(settings)
    if settings.learning.judged.enabled and judge not in served:
        raise SettingsError(f"invalid stratum settings in {file}:\n  {where}.learning.judged.judge: {judge!r} is "
                            f"neither a tier nor a model_name in model_list "
                            f"(model_list has: {', '.join(sorted(str(n) for n in served))})")
