"""``stratum score``: the score, tier and reason of one prompt, or of JSON lines in order."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Iterable, TextIO

from ..routing.policy import Policy
from ..scoring.view import RequestView
from ..signals.snapshot import SignalSnapshot
from .inputs import (EXIT_BAD_CONFIG, EXIT_FAILED, EXIT_OK, decide, offline_snapshot, policy_for, settings_for,
                     view_of)


def score_jsonl(lines: Iterable[str], out: TextIO, policy: Policy, snapshot: SignalSnapshot) -> int:
    """Score JSON lines in order; a bad line gets an ``error`` line, not a crash."""
    failures = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record_id: Any = None
        try:
            record = json.loads(line)
            record_id = record.get("id") if isinstance(record, dict) else None
            started = time.perf_counter()
            view = view_of(record)
            decision = decide(policy, view, snapshot)
            elapsed_us = (time.perf_counter() - started) * 1e6
            result = {"id": record_id, "score": decision.score, "tier": decision.tier, "reason": decision.label,
                      "latency_us": round(elapsed_us, 1)}
        except (ValueError, TypeError) as exc:
            failures += 1
            result = {"id": record_id, "error": f"line {number}: {exc}"}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    out.flush()
    return EXIT_FAILED if failures else EXIT_OK


def run(args: argparse.Namespace) -> int:
    settings, source = settings_for(args.config)
    policy = policy_for(settings, source, args.profile)
    snapshot = offline_snapshot(settings)
    if args.jsonl:
        return score_jsonl(sys.stdin, sys.stdout, policy, snapshot)
    if args.prompt is None:
        print("stratum score: give a prompt, or --jsonl to read JSON lines on stdin", file=sys.stderr)
        return EXIT_BAD_CONFIG
    decision = decide(policy, RequestView.from_prompt(args.prompt), snapshot)
    print(f"{decision.score:.4f}\t{decision.tier}\t{decision.label}")
    return EXIT_OK
