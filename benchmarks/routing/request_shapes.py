#!/usr/bin/env python3
"""What a request's shape costs the router: one routing decision for bodies of 10,000
content parts, image parts, messages, messages of parts, tools and tool calls, against a
plain one-turn chat in the same process.

    python benchmarks/routing/request_shapes.py [--base /tmp/shapes-base] [--rounds 40]

Timed is ``RouterEngine.route(body)``, what the pre-call hook runs (view, score, policy,
evidence, metrics, rewrite), by wall clock per call; shapes take turns in each round so a
change of load hits them alike. Each tree (this one, and ``--base``, any checkout of the
project with its C parts built in place) runs in a process of its own. Printed: median
milliseconds per shape and its ratio to the plain chat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WORKER = r"""
import json, statistics, sys, time
from stratum_litellm.config import parse_settings
from stratum_litellm.gateway.engine import RouterEngine

N = 10_000
engine = RouterEngine(parse_settings({"gpu": {"enabled": False}}))
part = {"type": "text", "text": "word "}
image = {"type": "image_url", "image_url": {"url": "data:,"}}
shapes = {
    "plain chat (200 chars)": {"messages": [{"role": "user", "content": "hello there, " * 15}]},
    "10,000 text parts": {"messages": [{"role": "user", "content": [part] * N}]},
    "10,000 image parts": {"messages": [{"role": "user", "content": [part] + [image] * N}]},
    "10,000 messages": {"messages": [{"role": "assistant" if i % 2 else "user", "content": "hi " * 3}
                                     for i in range(N)]},
    "10,000 messages of parts": {"messages": [{"role": "user", "content": [part]} for _ in range(N)]},
    "10,000 tools": {"messages": [{"role": "user", "content": "x"}],
                     "tools": [{"type": "function", "function": {"name": f"f{i}", "parameters": {
                         "type": "object", "properties": {"q": {"type": "string"}}}}} for i in range(N)]},
    "10,000 tool calls": {"messages": [
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": str(i), "type": "function", "function": {"name": "f", "arguments": "{}"}}
                        for i in range(N)]},
        {"role": "user", "content": "x"}]},
}
times = {name: [] for name in shapes}
for r in range(int(sys.argv[1])):
    for name, body in shapes.items():
        call = dict(body, model="gemma4-auto", litellm_call_id=f"c{r}")
        start = time.perf_counter()
        engine.route(call)
        times[name].append(time.perf_counter() - start)
        engine.signals.latency.release(f"c{r}")
print(json.dumps({name: statistics.median(t) * 1000 for name, t in times.items()}))
"""


def run(tree: Path, rounds: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree), LITELLM_LOCAL_MODEL_COST_MAP="True")
    out = subprocess.run([sys.executable, "-c", WORKER, str(rounds)], env=env, capture_output=True, text=True,
                         timeout=900, cwd=tree)
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, help="a checkout of the project to compare against")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    trees = [("this tree", ROOT)] + ([("base", args.base)] if args.base else [])
    results = {label: run(tree, args.rounds) for label, tree in trees}
    header = "| shape | " + " | ".join(f"{label}: median ms (x plain)" for label in results) + " |"
    print(header)
    print("|---" * (1 + len(results)) + "|")
    plain = "plain chat (200 chars)"
    for shape in results["this tree"]:
        cells = [f"{r[shape]:.3f} ({r[shape] / r[plain]:.1f}x)" for r in results.values()]
        print(f"| {shape} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
