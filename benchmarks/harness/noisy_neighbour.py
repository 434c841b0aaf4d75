#!/usr/bin/env python3
"""A memory-heavy neighbour for the timing benchmarks: copies 64 MB over and over until killed.

    python benchmarks/harness/noisy_neighbour.py & python benchmarks/scoring/scoring_cost.py; kill %1

On a 2-core machine it keeps one core busy streaming through memory, which evicts the shared
last-level cache and competes for memory bandwidth, as another tenant of the host would. It
runs beside any revision's benchmarks (it imports nothing of the project).
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--megabytes", type=int, default=64, help="size of the buffer copied (default 64)")
    args = p.parse_args(argv)
    source, target = bytes(args.megabytes << 20), bytearray(args.megabytes << 20)
    while True:
        target[:] = source


if __name__ == "__main__":
    raise SystemExit(main())
