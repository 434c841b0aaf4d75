"""The ``stratum`` command: score prompts, explain a decision, check a config.

    stratum score "prompt"            score and tier of one prompt
    stratum score --jsonl < in.jsonl  {"id","prompt"} or {"id","messages"} lines in,
                                      {"id","score","tier","reason"} lines out, in order
    stratum explain "prompt"          each dimension's part, the decision, the signals read
    stratum calibrate FILE --target-share 0.1 [--write]
                                      the threshold for a target smart-tier share
    stratum check FILE                validate a config without starting anything (exit 0/2)

The settings come from ``--config FILE``, else ``$STRATUM_CONFIG``, else
``./litellm_config.yaml`` when present, else the defaults. The CLI never imports LiteLLM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence, TextIO

from .calibrate import calibrate, write_threshold
from ..routing.decision import Decision
from ..routing.policy import Policy
from ..scoring.view import RequestView
from ..config import CONFIG_ENV, SettingsError, StratumSettings, load_settings, resolve_settings
from ..signals.gpu import GpuMonitor
from ..signals.snapshot import SignalSnapshot, Signals

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


def _settings(config: str | None) -> tuple[StratumSettings, str]:
    if config:
        return load_settings(config), config
    if not os.environ.get(CONFIG_ENV) and Path("litellm_config.yaml").is_file():
        return load_settings("litellm_config.yaml"), "litellm_config.yaml"
    return resolve_settings()


def _offline_snapshot(settings: StratumSettings) -> SignalSnapshot:
    # Scoring offline reads no live signal: every capacity rule abstains.
    return Signals(settings).snapshot()


def _decide(policy: Policy, view: RequestView, snapshot: SignalSnapshot) -> Decision:
    decision = policy.decide(view, policy.settings.routed_model, snapshot)
    assert decision is not None  # the routed alias always gets a decision
    return decision


def _view_of(record: Any) -> RequestView:
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    if "messages" in record:
        return RequestView.from_request({"messages": record["messages"], "tools": record.get("tools")})
    prompt = record.get("prompt")
    if not isinstance(prompt, str):
        raise ValueError("each line needs a string 'prompt' or a 'messages' list")
    return RequestView.from_prompt(prompt)


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
            view = _view_of(record)
            decision = _decide(policy, view, snapshot)
            elapsed_us = (time.perf_counter() - started) * 1e6
            result = {"id": record_id, "score": decision.score, "tier": decision.tier, "reason": decision.label,
                      "latency_us": round(elapsed_us, 1)}
        except (ValueError, TypeError) as exc:
            failures += 1
            result = {"id": record_id, "error": f"line {number}: {exc}"}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    out.flush()
    return EXIT_FAILED if failures else EXIT_OK


def _cmd_score(args: argparse.Namespace) -> int:
    settings, _ = _settings(args.config)
    policy = Policy(settings)
    snapshot = _offline_snapshot(settings)
    if args.jsonl:
        return score_jsonl(sys.stdin, sys.stdout, policy, snapshot)
    if args.prompt is None:
        print("stratum score: give a prompt, or --jsonl to read JSON lines on stdin", file=sys.stderr)
        return EXIT_BAD_CONFIG
    decision = _decide(policy, RequestView.from_prompt(args.prompt), snapshot)
    print(f"{decision.score:.4f}\t{decision.tier}\t{decision.label}")
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace) -> int:
    settings, source = _settings(args.config)
    policy = Policy(settings)
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
    decision = _decide(policy, view, snapshot)
    if args.json:
        print(json.dumps(_explanation(settings, source, score.parts, decision, snapshot), indent=2, default=str))
        return EXIT_OK
    print(f"settings: {source}")
    print(f"score {score.value:.4f} (threshold {settings.complexity.threshold})")
    for name, part in sorted(score.parts.items(), key=lambda kv: -abs(kv[1])):
        print(f"  {name:<14} {part:+.4f}")
    print(f"decision: {decision.tier} ({decision.model_group}) because {decision.label}")
    for key, value in decision.evidence.items():
        if key == "checks":
            for check, verdict in value.items():
                print(f"  check {check:<16} {verdict}")
        elif key not in ("score", "threshold"):
            print(f"  {key}: {value}")
    print(f"gpu: {snapshot.gpu_status}" + (f" ({snapshot.gpu_error})" if snapshot.gpu_error else ""))
    return EXIT_OK


def _explanation(settings: StratumSettings, source: str, parts: Any, decision: Decision,
                 snapshot: SignalSnapshot) -> dict[str, Any]:
    return {
        "settings": source,
        "score": decision.score,
        "threshold": settings.complexity.threshold,
        "parts": dict(parts),
        "decision": {"tier": decision.tier, "model_group": decision.model_group, "reason": decision.label,
                     "evidence": dict(decision.evidence)},
        "signals": {"gpu_status": snapshot.gpu_status, "gpu_error": snapshot.gpu_error},
    }


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
        Policy(settings, source=args.file)  # loads python_rules too
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_CONFIG
    print(f"ok: {args.file}: routed model {settings.routed_model!r} -> "
          f"{settings.model_group('fast')} / {settings.model_group('smart')}, "
          f"threshold {settings.complexity.threshold}, {len(settings.rules)} config rules")
    return EXIT_OK


def _read_views(path: str) -> list[RequestView]:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    views = []
    with stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                views.append(_view_of(json.loads(line)))
            except (ValueError, TypeError) as exc:
                print(f"stratum calibrate: skipping line {number}: {exc}", file=sys.stderr)
    return views


def _cmd_calibrate(args: argparse.Namespace) -> int:
    settings, source = _settings(args.config)
    try:
        views = _read_views(args.file)
    except OSError as exc:
        print(f"stratum calibrate: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        result = calibrate(views, Policy(settings), args.target_share)
    except ValueError as exc:
        print(f"stratum calibrate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{result.requests} requests, target smart share {result.target_share:.1%} (settings: {source})")
    if result.ruled_smart or result.ruled_fast:
        print(f"config rules route {result.ruled_smart:.1%} to smart and {result.ruled_fast:.1%} to fast whatever the threshold")
    print(f"threshold {result.threshold} gives {result.share:.1%} smart (now: {settings.complexity.threshold})\n")
    print("threshold  smart share")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stratum", description="stratum-litellm adaptive router tools")
    sub = parser.add_subparsers(dest="command", required=True)

    score = sub.add_parser("score", help="score a prompt, or JSON lines on stdin")
    score.add_argument("prompt", nargs="?")
    score.add_argument("--jsonl", action="store_true", help="read {id, prompt|messages} lines on stdin")
    score.add_argument("--config", help="settings file (default: $STRATUM_CONFIG or ./litellm_config.yaml)")
    score.set_defaults(run=_cmd_score)

    explain = sub.add_parser("explain", help="show each dimension, the decision and the signals it read")
    explain.add_argument("prompt")
    explain.add_argument("--config")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(run=_cmd_explain)

    cal = sub.add_parser("calibrate", help="the threshold that sends a target share of requests to the smart tier")
    cal.add_argument("file", help="JSON lines {id, prompt} or {id, messages} (LiteLLM logging payloads work); - for stdin")
    cal.add_argument("--target-share", type=float, required=True, help="e.g. 0.10 for 10%% of requests on the smart tier")
    cal.add_argument("--config")
    cal.add_argument("--write", action="store_true", help="write the threshold into the settings file")
    cal.set_defaults(run=_cmd_calibrate)

    check = sub.add_parser("check", help="validate a config file without starting anything")
    check.add_argument("file")
    check.set_defaults(run=_cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_CONFIG
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
