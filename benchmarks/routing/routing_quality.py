#!/usr/bin/env python3
"""Routing quality of the stratum scorer, measured by the project's harness (routing_eval.py).

    python benchmarks/routing/routing_quality.py                       # dev split: random, length, stratum
    python benchmarks/routing/routing_quality.py --with-litellm        # + LiteLLM's complexity router (raw score)
    python benchmarks/routing/routing_quality.py --eval-dir PATH --split dev

It runs ``routing_eval.py`` (from --eval-dir, default ../shared/eval beside the repository)
with the built-in baselines and this file as a scorer command:

    python benchmarks/routing/routing_quality.py --serve-jsonl          # {"id","prompt"} lines -> {"id","score","latency_us"}
    python benchmarks/routing/routing_quality.py --serve-litellm-jsonl  # the same protocol, LiteLLM's scorer

The serve modes only need stdin/stdout, so the harness can call them like `stratum score --jsonl`.
Cross-validated figures (fit on one half of dev, measured on the other) come from
``scripts/fit_scorer.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval"


def serve(score: Callable[[str], float]) -> int:
    """Scorer-command protocol: one JSON line in, one JSON line out, in order."""
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        row = json.loads(line)
        prompt = row.get("prompt")
        started = time.perf_counter_ns()
        value = score(prompt if isinstance(prompt, str) else "")
        elapsed_us = (time.perf_counter_ns() - started) / 1000
        out.write(json.dumps({"id": row.get("id"), "score": value, "latency_us": round(elapsed_us, 2)}) + "\n")
    out.flush()
    return 0


def stratum_score_fn() -> Callable[[str], float]:
    from stratum_litellm.scoring.view import RequestView
    from stratum_litellm.scoring.scorer import Scorer

    scorer = Scorer()

    def score(prompt: str) -> float:  # the path the gateway runs: request body -> view -> score
        return scorer.score(RequestView.from_request({"messages": [{"role": "user", "content": prompt}]})).value

    return score


def litellm_score_fn() -> Callable[[str], float]:
    router = litellm_complexity_router()
    return lambda prompt: float(router.classify(prompt)[1])


def litellm_complexity_router():  # type: ignore[no-untyped-def]
    """LiteLLM's built-in complexity router, offline, with its default keyword config."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

    tiers = {"SIMPLE": "fast", "MEDIUM": "fast", "COMPLEX": "smart", "REASONING": "smart"}
    return ComplexityRouter(model_name="auto", litellm_router_instance=None, complexity_router_config={"tiers": tiers})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--serve-jsonl", action="store_true", help="act as the scorer command (stratum scorer)")
    p.add_argument("--serve-litellm-jsonl", action="store_true", help="act as the scorer command (LiteLLM scorer)")
    p.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR, help="directory of routing_eval.py and the data")
    p.add_argument("--data", type=Path, help="JSONL data (default: routellm_dev.jsonl in --eval-dir)")
    p.add_argument("--split", nargs="+", default=["dev"], help="split(s) to report (dev, test, all)")
    p.add_argument("--with-litellm", action="store_true", help="also measure LiteLLM's complexity router")
    p.add_argument("--json-out", type=Path, help="write the harness's metrics JSON here")
    args = p.parse_args(argv)

    if args.serve_jsonl:
        return serve(stratum_score_fn())
    if args.serve_litellm_jsonl:
        return serve(litellm_score_fn())

    harness = args.eval_dir / "routing_eval.py"
    data = args.data or args.eval_dir / "routellm_dev.jsonl"
    me = f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))}"
    cmd = [sys.executable, str(harness), "--data", str(data), "--split", *args.split,
           "--scorer", "random", "--scorer", "length",
           "--scorer-cmd", f"{me} --serve-jsonl", "--scorer-name", "stratum"]  # fmt: skip
    if args.with_litellm:
        cmd += ["--scorer-cmd", f"{me} --serve-litellm-jsonl", "--scorer-name", "litellm-complexity"]
    if args.json_out:
        cmd += ["--json-out", str(args.json_out)]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
