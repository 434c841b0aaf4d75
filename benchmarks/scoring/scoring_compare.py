#!/usr/bin/env python3
"""Do two source trees score every prompt alike? Value, parts and per-dimension levels, as JSON.

    python benchmarks/scoring/scoring_compare.py --base /tmp/scoring-base --eval ../shared/eval/routellm_dev.jsonl

Each tree is imported in a process of its own (``PYTHONPATH=<tree>``), with its C parts
and again with ``STRATUM_PURE_PYTHON=1``; every prompt is scored as the gateway scores it
(``RequestView.from_request`` of a one-turn chat, then ``Scorer.score``) and written as one
JSON line. The trees' C parts must be built in place (``python setup.py build_ext --inplace``).
Prints how many prompts are identical, per mode, and the first differences.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run inside each tree's process. Older trees call the per-dimension values `signals`.
CHILD = r"""
import json, sys
from stratum_litellm.scoring.view import RequestView
from stratum_litellm.scoring.scorer import Scorer
from stratum_litellm.scoring import measure, scan
scorer = Scorer()
engines = f"{scan.ENGINE}/{measure.MEASURE_ENGINE}"
print(json.dumps(engines), flush=True)
for line in sys.stdin:
    prompt = json.loads(line)
    s = scorer.score(RequestView.from_request({"messages": [{"role": "user", "content": prompt}]}))
    levels = getattr(s, "levels", None)
    if levels is None:
        levels = s.signals
    print(json.dumps([s.value, dict(s.parts), dict(levels)]), flush=False)
"""


def score_all(tree: Path, prompts: list[str], pure: bool) -> tuple[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(tree), "STRATUM_PURE_PYTHON": "1" if pure else "0"}
    run = subprocess.run([sys.executable, "-c", CHILD], input="".join(json.dumps(p) + "\n" for p in prompts),
                         capture_output=True, text=True, env=env, cwd=tree, check=True)
    engines, *lines = run.stdout.splitlines()
    return json.loads(engines), lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", type=Path, required=True, help="the tree to compare against (a git worktree)")
    p.add_argument("--tree", type=Path, default=ROOT, help="the tree under test (default: this one)")
    p.add_argument("--eval", type=Path, required=True, help="JSON lines with a 'prompt' field")
    args = p.parse_args(argv)

    prompts = [json.loads(line)["prompt"] for line in args.eval.read_text(encoding="utf-8").splitlines() if line]
    identical = True
    for pure in (False, True):
        base_engines, base = score_all(args.base, prompts, pure)
        tree_engines, tree = score_all(args.tree, prompts, pure)
        same = sum(a == b for a, b in zip(base, tree))
        mode = "STRATUM_PURE_PYTHON=1" if pure else "C parts"
        print(f"{mode}: {same} of {len(prompts)} identical "
              f"(scan/measurements: base {base_engines}, tree {tree_engines})")
        for i, (a, b) in enumerate(zip(base, tree)):
            if a != b:
                print(f"  prompt {i}: base {a[:200]}\n            tree {b[:200]}")
                break
        identical &= same == len(prompts) == len(base) == len(tree)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
