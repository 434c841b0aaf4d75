#!/usr/bin/env python3
"""Instructions per request of the scorer's path, counted by valgrind (callgrind), which
gives the same count whatever else the machine is doing.

    python benchmarks/scoring/scoring_instructions.py            # needs valgrind (Debian: apt-get install valgrind)

For each build (with its C parts, scan engine and score kernel; in pure Python, as
STRATUM_PURE_PYTHON=1 makes it) and size it runs the whole request path (body ->
RequestView -> Scorer.score) N times under callgrind, and once with no calls; the
difference divided by N is the cost of one request. Same seeded texts as scoring_cost.py.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
import harness  # noqa: E402,F401  (puts this tree on sys.path)

CALLS = 320


def run_path(size: int, calls: int) -> None:
    """The measured program: score 32 texts of `size` characters, calls times in all."""
    import random

    from harness.texts import realistic_text

    from stratum_litellm.scoring.view import RequestView
    from stratum_litellm.scoring.scorer import Scorer

    rng = random.Random(7)
    bodies = [{"model": "gemma4-auto", "messages": [{"role": "user", "content": realistic_text(size, rng)}]}
              for _ in range(32)]
    scorer = Scorer()
    for i in range(calls):
        scorer.score(RequestView.from_request(bodies[i % 32]))


def instructions(size: int, calls: int, pure_python: bool) -> int:
    env = dict(os.environ, STRATUM_PURE_PYTHON="1" if pure_python else "0")
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--run", str(size), str(calls)],
        capture_output=True, text=True, env=env, check=True,
    ).stderr
    match = re.search(r"refs:\s+([\d,]+)", out)
    if not match:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", nargs=2, type=int, metavar=("SIZE", "CALLS"), help=argparse.SUPPRESS)
    p.add_argument("--sizes", type=int, nargs="+", default=[200, 2_000])
    args = p.parse_args(argv)
    if args.run:
        run_path(*args.run)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    from stratum_litellm.scoring.measure import MEASURE_ENGINE
    from stratum_litellm.scoring.scan import ENGINE

    native = ENGINE == "c" and MEASURE_ENGINE == "c"
    engines = [("with the C parts", False), ("pure Python", True)] if native else [("pure Python", True)]
    print("| chars | " + " | ".join(f"{name}, instructions per request" for name, _ in engines) + " |")
    print("|---:|" + "---:|" * len(engines))
    for size in args.sizes:
        cells = []
        for _, pure in engines:
            base = instructions(size, 0, pure)
            cells.append(f"{(instructions(size, CALLS, pure) - base) // CALLS:,}")
        print(f"| {size:,} | " + " | ".join(cells) + " |")
    print("\nReproduce: `python benchmarks/scoring/scoring_instructions.py`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
