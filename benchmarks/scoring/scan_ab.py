#!/usr/bin/env python3
"""The C scan engine of another revision against this tree's, in one process, cold and warm.

    python benchmarks/scoring/scan_ab.py REVISION [--calls N]      # e.g. HEAD~1; needs gcc and git

Both builds of ``stratum_litellm/scoring/_bytescan.c`` (REVISION's, from git, and the working
tree's) are compiled into a temporary directory and loaded side by side with the scorer's
own spec; they must give identical results on the texts. Each is then timed on the seeded
2,000-character texts of scoring_cost.py, alternating which goes first: *cold*, each call
right after a call of LiteLLM's complexity router (whose work evicts the engine's tables
from the caches, as a gateway's other work does between two requests), and *warm*, back to
back. CPU time of the calling thread, microseconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness

from harness import ROOT, percentile  # noqa: E402
from harness.texts import litellm_classifier, realistic_text  # noqa: E402

from stratum_litellm.scoring import measure  # noqa: E402

SOURCE = "stratum_litellm/scoring/_bytescan.c"


def build(source: str, name: str, into: Path):  # type: ignore[no-untyped-def]
    """Compile a _bytescan.c source as module `name` and return a Scanner with the scorer's spec."""
    c_file = into / f"{name}.c"
    c_file.write_text(source)
    library = into / f"{name}.so"
    include = sysconfig.get_paths()["include"]
    subprocess.run(["gcc", "-O2", "-fPIC", "-shared", f"-I{include}", f"-I{ROOT / 'stratum_litellm' / 'scoring'}",
                    f"-DPyInit__bytescan=PyInit_{name}",
                    str(c_file), "-o", str(library)], check=True)
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Scanner(**measure._SCANNER_SPEC)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("revision", help="the git revision whose engine to compare with the working tree's")
    p.add_argument("--calls", type=int, default=1000, help="cold calls per build (warm: 5 times as many)")
    args = p.parse_args(argv)
    if shutil.which("gcc") is None:
        raise SystemExit("gcc is needed to build the two engines")
    old_source = subprocess.run(["git", "show", f"{args.revision}:{SOURCE}"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        builds = {args.revision: build(old_source, "_bytescan_old", Path(tmp)),
                  "working tree": build((ROOT / SOURCE).read_text(), "_bytescan_new", Path(tmp))}
    rng = random.Random(7)
    texts = [realistic_text(2_000, rng) for _ in range(32)]
    data = [t.encode() for t in texts]
    first, second = builds.values()
    if any(first.scan(d) != second.scan(d) for d in data):
        raise SystemExit("the two engines give different results")
    classify = litellm_classifier()
    print(f"Scan of 2,000 characters, microseconds of CPU: {args.revision} against the working tree\n")
    print("| build | cold median | cold p90 | cold p99 | warm median | warm p90 | warm p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    results: dict[str, dict[str, list[float]]] = {name: {"cold": [], "warm": []} for name in builds}
    for mode, calls in (("cold", args.calls), ("warm", 5 * args.calls)):
        for i in range(calls):
            j = i % 32
            for name in (list(builds) if i % 2 else list(builds)[::-1]):
                if mode == "cold":
                    classify(texts[j])
                start = time.thread_time_ns()
                builds[name].scan(data[j])
                results[name][mode].append((time.thread_time_ns() - start) / 1000)
    for name, modes in results.items():
        cells = [f"{f(values):.1f}" for values in (modes["cold"], modes["warm"])
                 for f in (statistics.median, lambda v: percentile(v, 0.9), lambda v: percentile(v, 0.99))]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nReproduce: `python benchmarks/scoring/scan_ab.py {args.revision} --calls {args.calls}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
