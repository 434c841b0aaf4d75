"""Pick the complexity threshold that sends a target share of traffic above the first rung
of the ladder (the smart tier of two), or entry scores that give each rung its share.

Scores the operator's own requests with the settings in force (weights and config rules
included), then reads the threshold off the score distribution. Requests a rule sends to a
tier outright do not depend on the threshold and are counted as they go.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..config import SettingsError, StratumSettings, load_settings
from ..routing.decision import Reason
from ..routing.policy import Policy
from ..scoring.view import RequestView
from ..signals.snapshot import Signals
from .inputs import EXIT_BAD_CONFIG, EXIT_FAILED, EXIT_OK, read_views, settings_for


@dataclass(frozen=True, slots=True)
class Calibration:
    threshold: float
    target_share: float
    #: The share above the first rung the chosen threshold gives on these requests.
    share: float
    requests: int
    #: Shares rules send above the first rung / to it, whatever the threshold.
    ruled_above: float
    ruled_first: float
    #: Nearby thresholds and the share above the first rung each would give.
    table: Sequence[tuple[float, float]]
    #: The ladder's first rung and the one above it (the names in the config).
    first: str = "fast"
    second: str = "smart"


def scores_of(views: Iterable[RequestView], policy: Policy) -> tuple[list[float], int, int]:
    """Threshold-dependent scores, and the counts of requests rules route outright above
    the first rung of the ladder and to it (whatever the tiers are called)."""
    snapshot = Signals(policy.settings).snapshot()  # offline: capacity rules abstain
    floor = policy.ladder.floor
    scores: list[float] = []
    ruled_above = ruled_first = 0
    for view in views:
        decision = policy.decide(view, policy.settings.routed_model, snapshot)
        assert decision is not None
        if decision.reason is Reason.RULE:
            ruled_first += decision.tier == floor
            ruled_above += decision.tier != floor
        elif decision.score is not None:
            scores.append(decision.score)
    return scores, ruled_above, ruled_first


def share_at(scores: Sequence[float], threshold: float, ruled_above: int, total: int) -> float:
    return (sum(1 for s in scores if s >= threshold) + ruled_above) / total if total else 0.0


def calibrate(views: Iterable[RequestView], policy: Policy, target_share: float) -> Calibration:
    if not 0.0 <= target_share <= 1.0:
        raise ValueError(f"target share must be between 0 and 1, got {target_share}")
    scores, ruled_above, ruled_first = scores_of(views, policy)
    total = len(scores) + ruled_above + ruled_first
    if total == 0:
        raise ValueError("no requests to calibrate on")
    ranked = sorted(scores, reverse=True)
    # How many threshold-dependent requests should leave the first rung, after the rules' share.
    wanted = round(target_share * total) - ruled_above
    if wanted <= 0 or not ranked:
        threshold = min(1.0, (ranked[0] + 1e-4) if ranked else 1.0)
    elif wanted >= len(ranked):
        threshold = ranked[-1]
    else:
        # Midway between the last score in and the first one out, so ties stay together.
        threshold = (ranked[wanted - 1] + ranked[wanted]) / 2 if ranked[wanted - 1] > ranked[wanted] else ranked[wanted - 1]
    threshold = _down(min(1.0, max(0.0, threshold)))
    nearby = sorted({round(min(1.0, max(0.0, threshold + step)), 4) for step in (-0.1, -0.05, -0.02, 0.0, 0.02, 0.05, 0.1)})
    table = [(t, share_at(scores, t, ruled_above, total)) for t in nearby]
    local = policy.ladder.local
    return Calibration(threshold, target_share, share_at(scores, threshold, ruled_above, total), total,
                       ruled_above / total, ruled_first / total, table, local[0], local[1])


@dataclass(frozen=True, slots=True)
class Rung:
    tier: str
    entry_score: float
    #: The share of these requests the entry scores give this tier.
    share: float
    target_share: float


def calibrate_ladder(views: Iterable[RequestView], policy: Policy, shares: Sequence[float]) -> list[Rung]:
    """Entry scores for the local tiers that give each the target share of requests
    (``shares`` in ladder order, cheapest first, summing to 1). Requests a rule sends to a
    tier outright are left out: they go where the rule says whatever the entry scores."""
    local = policy.ladder.local
    if len(shares) != len(local):
        raise ValueError(f"give one share per local tier ({', '.join(local)}): got {len(shares)}")
    if any(s < 0 for s in shares) or abs(sum(shares) - 1.0) > 0.011:
        raise ValueError(f"shares must be >= 0 and add up to 1 (100%), got {', '.join(map(str, shares))}")
    scores, _, _ = scores_of(views, policy)
    if not scores:
        raise ValueError("no requests to calibrate on")
    ranked = sorted(scores, reverse=True)
    entries = [0.0]
    for index in range(1, len(local)):
        above = round(sum(shares[index:]) * len(ranked))  # requests that should reach this tier or higher
        if above <= 0:
            entry = min(1.0, ranked[0] + 1e-4)
        elif above >= len(ranked):
            entry = ranked[-1]
        else:  # midway between the last score in and the first one out
            entry = (ranked[above - 1] + ranked[above]) / 2
        entries.append(_down(min(1.0, max(entries[-1] + 1e-4, entry))))
    rungs = []
    for index, tier in enumerate(local):
        upper = entries[index + 1] if index + 1 < len(entries) else float("inf")
        got = sum(1 for score in scores if entries[index] <= score < upper) if index else \
            sum(1 for score in scores if score < upper)
        rungs.append(Rung(tier, entries[index], got / len(scores), shares[index]))
    return rungs


def _down(score: float) -> float:
    """To four decimals, never above ``score``: a threshold rounded up would leave out the
    request it was set at."""
    return math.floor(score * 10_000 + 1e-9) / 10_000


def parse_shares(text: str) -> list[float]:
    """``80/15/5`` (percent) or ``0.8,0.15,0.05``."""
    parts = [p for p in re.split(r"[/,\s]+", text.strip()) if p]
    values = [float(p) for p in parts]
    return [v / 100 for v in values] if sum(values) > 1.5 else values


_THRESHOLD_LINE = re.compile(r"^(\s*threshold:\s*)([0-9.eE+-]+)(\s*(#.*)?)$", re.MULTILINE)


def write_threshold(path: str | Path, threshold: float) -> None:
    """Set ``complexity.threshold`` in a settings file, keeping its comments and layout.

    The file is validated with the new value before it replaces the old one, so a gateway
    watching it (live reload) only ever sees a good file."""
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    matches = list(_THRESHOLD_LINE.finditer(text))
    if len(matches) != 1:
        raise SettingsError(
            f"{file}: expected exactly one 'threshold:' line to update, found {len(matches)}; "
            f"set complexity.threshold: {threshold} by hand"
        )
    m = matches[0]
    updated = text[: m.start(2)] + f"{threshold}" + text[m.end(2):]
    tmp = file.with_name(f".{file.name}.calibrate.tmp")
    tmp.write_text(updated, encoding="utf-8")
    try:
        if load_settings(tmp).complexity.threshold != threshold:
            raise SettingsError(f"{file}: the 'threshold:' line found is not complexity.threshold; set it by hand")
    except SettingsError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(file)


def run(args: argparse.Namespace) -> int:
    settings, source = settings_for(args.config)
    try:
        views = read_views(args.file, "calibrate")
    except OSError as exc:
        print(f"stratum calibrate: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if args.shares is not None:
        return _run_ladder(views, settings, source, args.shares)
    if args.target_share is None:
        print("stratum calibrate: give --target-share (two tiers) or --shares (a ladder, e.g. 80/15/5)",
              file=sys.stderr)
        return EXIT_FAILED
    try:
        result = calibrate(views, Policy(settings), args.target_share)
    except ValueError as exc:
        print(f"stratum calibrate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    above = result.second if len(Policy(settings).ladder.local) == 2 else f"above {result.first}"
    print(f"{result.requests} requests, target share to {above} {result.target_share:.1%} (settings: {source})")
    if result.ruled_above or result.ruled_first:
        print(f"config rules route {result.ruled_above:.1%} to {above} and {result.ruled_first:.1%} to {result.first} "
              "whatever the threshold")
    print(f"threshold {result.threshold} gives {result.share:.1%} to {above} (now: {settings.complexity.threshold})\n")
    print(f"threshold  share to {above}")
    for threshold, share in result.table:
        marker = "  <- suggested" if threshold == result.threshold else ""
        print(f"{threshold:<9}  {share:6.1%}{marker}")
    if args.write:
        target = args.config or source
        if not Path(target).is_file():
            print("stratum calibrate: --write needs a settings file (--config FILE)", file=sys.stderr)
            return EXIT_BAD_CONFIG
        write_threshold(target, result.threshold)
        print(f"\nwrote complexity.threshold: {result.threshold} to {target}")
    return EXIT_OK


def _run_ladder(views: list[RequestView], settings: StratumSettings, source: str, shares_text: str) -> int:
    try:
        rungs = calibrate_ladder(views, Policy(settings), parse_shares(shares_text))
    except ValueError as exc:
        print(f"stratum calibrate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{len(views)} requests (settings: {source}); entry scores for the target shares:\n")
    print("tier                 entry_score  share   target")
    for rung in rungs:
        print(f"{rung.tier:<20} {rung.entry_score:<11}  {rung.share:6.1%}  {rung.target_share:6.1%}")
    print("\nset them under callback_settings.stratum.tiers.<tier>.entry_score "
          "(the first tier needs none)")
    return EXIT_OK
