"""``stratum explain``: each dimension's part, the decision, and the signals it read."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..routing.ladder import Ladder
from ..config import StratumSettings
from ..routing.decision import Decision
from ..scoring.view import RequestView
from ..signals.gpu import GpuMonitor
from ..signals.snapshot import Signals, SignalSnapshot
from .inputs import EXIT_OK, decide, policy_for, settings_for


def run(args: argparse.Namespace) -> int:
    settings, source = settings_for(args.config)
    policy = policy_for(settings, source, args.profile)
    monitor = None
    if settings.gpu.enabled:
        # One synchronous NVML poll, so the explanation shows the GPU as it is now.
        monitor = GpuMonitor(stale_after_s=60.0)
        monitor.poll_once()
    snapshot = Signals(settings, gpu_monitor=monitor).snapshot()
    if monitor is not None:
        monitor.stop()
    view = RequestView.from_prompt(args.prompt)
    score = policy.scorer.score(view)
    decision = decide(policy, view, snapshot)
    profile = policy.scorer.profile
    words = profile.text.top(view.last_user) if profile.text is not None else []
    if args.json:
        shown = explanation(settings, source, score.parts, decision, snapshot)
        shown["profile"] = {"name": profile.name, "source": profile.source, "fitted": profile.fitted_at,
                            "labels": profile.labels}
        shown["learned"] = {"part": score.learned, "words": dict(words)}
        print(json.dumps(shown, indent=2, default=str))
        return EXIT_OK
    print(f"settings: {source}")
    fitted = f"fitted {profile.fitted_at} on {profile.labels} labels" if profile.fitted_at else "not fitted on labels"
    print(f"profile: {profile.name} ({profile.source}; {fitted})")
    print(f"score {score.value:.4f} (threshold {settings.complexity.threshold})")
    rows = sorted([*score.parts.items(), ("learned", score.learned)], key=lambda kv: -abs(kv[1]))
    for name, part in rows:
        print(f"  {name:<14} {part:+.4f}")
    if words:
        print("  learned part, its weightiest words: " + ", ".join(f"{w!r} {v:+.3f}" for w, v in words))
    print(f"decision: {decision.tier} ({decision.model_group}) because {decision.label}")
    rungs = policy.ladder
    print("ladder: " + " < ".join(f"{t} (from {e})" for t, e in zip(rungs.local, rungs.entry))
          + (f" < {rungs.overflow} (overflow)" if rungs.overflow else ""))
    for key, value in decision.evidence.items():
        if key == "checks" or key.endswith("_checks"):
            tier = decision.wanted or decision.tier if key == "checks" else key.removesuffix("_checks")
            for check, verdict in value.items():
                print(f"  {tier}: check {check:<16} {verdict}")
        elif key not in ("score", "threshold"):
            print(f"  {key}: {value}")
    print(f"gpu: {snapshot.gpu_status}" + (f" ({snapshot.gpu_error})" if snapshot.gpu_error else ""))
    return EXIT_OK


def rungs(settings: StratumSettings) -> list[dict[str, Any]]:
    """The ladder as plain data: each local tier with its entry score, then the overflow tier."""
    ladder = Ladder.of(settings)
    shown: list[dict[str, Any]] = [{"tier": t, "model_group": settings.model_group(t), "entry_score": e}
                                   for t, e in zip(ladder.local, ladder.entry)]
    if ladder.overflow is not None:
        shown.append({"tier": ladder.overflow, "model_group": settings.model_group(ladder.overflow), "overflow": True})
    return shown


def explanation(settings: StratumSettings, source: str, parts: Any, decision: Decision,
                 snapshot: SignalSnapshot) -> dict[str, Any]:
    return {
        "settings": source,
        "score": decision.score,
        "threshold": settings.complexity.threshold,
        "parts": dict(parts),
        "decision": {"tier": decision.tier, "model_group": decision.model_group, "reason": decision.label,
                     "wanted": decision.wanted, "evidence": dict(decision.evidence)},
        "ladder": rungs(settings),
        "signals": {"gpu_status": snapshot.gpu_status, "gpu_error": snapshot.gpu_error},
    }
