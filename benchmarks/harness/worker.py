"""A timing worker in a process of its own: one tree on PYTHONPATH, JSON lines in and out.

The benchmarks that compare trees or builds run each in such a process and make them take
turns, so a change of load on the machine hits all alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


class Worker:
    def __init__(self, label: str, tree: Path, code: str, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.label = label
        environment = {**os.environ, "PYTHONPATH": str(tree), "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
        self.process = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=environment, cwd=tree)

    def ask(self, command: dict[str, object]) -> list[float]:
        """Send one command, return the worker's answer (the per-call times, µs)."""
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait()
