"""What every benchmark repeats: the header line, percentiles, timing one call, Markdown
tables, and a JSON copy of what was printed (``--json PATH``).

A benchmark is a script run by path (``python benchmarks/<group>/<name>.py``); its first
lines put ``benchmarks/`` on ``sys.path`` and import this package::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness import Report, percentile  # noqa: E402

Importing the package also puts the repository's root on ``sys.path`` (``stratum_litellm``
from this tree) and sets ``LITELLM_LOCAL_MODEL_COST_MAP``. Gateways and Redis:
``harness.gateways``; the seeded texts and LiteLLM's router: ``harness.texts``; a tree in
a process of its own: ``harness.worker``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[1]
ROOT = BENCHMARKS.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


# -- figures ------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of ``values``: the figures in RESULTS-*.md."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def p90(values: Sequence[float]) -> float:
    return percentile(values, 0.90)


def p99(values: Sequence[float]) -> float:
    return percentile(values, 0.99)


def timed(call: Callable[[Any], object], arg: Any) -> tuple[float, float]:
    """(wall µs, CPU µs of this thread) of one ``call(arg)``."""
    c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
    call(arg)
    t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
    return (t1 - t0) / 1000, (c1 - c0) / 1000


def interleaved(calls: dict[str, tuple[Callable[[Any], object], Callable[[int], Any]]], rounds: int,
                budget: dict[str, int]) -> dict[str, list[tuple[float, float]]]:
    """Time each contender call by call, taking turns, ``budget[name]`` calls spread evenly
    over ``rounds`` rounds (a slow contender gets fewer): load on the machine hits all alike,
    and each call finds the caches as the others left them. ``calls[name]`` is the call and
    its i-th argument (picked outside the timing); the result is (wall, CPU) microseconds
    per call, as :func:`timed` gives."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    for i in range(rounds):
        for name, (call, argument) in calls.items():
            n = budget[name]
            if i * n // rounds != (i + 1) * n // rounds:
                samples[name].append(timed(call, argument(i)))
    return samples


def load() -> str:
    """The load average, one and five minutes: ``"1.23 (5 min 0.98)"``."""
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (5 min {five:.2f})"


def load1() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]


# -- the report ---------------------------------------------------------------------------

def command(script: str | Path, argv: Sequence[str] | None = None) -> str:
    """``python benchmarks/<group>/<name>.py ARGS``: how to run ``script`` again."""
    path = Path(script).resolve()
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    args = list(argv if argv is not None else sys.argv[1:])
    return " ".join(["python", str(shown), *args])


def json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json PATH``: write what the run printed (the header and every table) there too."""
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the run's tables here as JSON")


class Report:
    """A run's output: a header line, Markdown tables and notes on stdout, kept as they go;
    ``finish`` writes them as JSON when given a path. ``data`` takes anything else to write."""

    def __init__(self, script: str | Path, argv: Sequence[str] | None = None, title: str | None = None) -> None:
        self.command = command(script, argv)
        self.started = time.strftime("%Y-%m-%d %H:%M")
        self.load_start = os.getloadavg()
        self.tables: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.data: dict[str, Any] = {}
        self.title = title

    def header(self, title: str | None = None) -> None:
        """``# title`` and one line: the command, the date, the CPUs, the load average."""
        self.title = title or self.title
        if self.title:
            print(f"# {self.title}\n")
        one, five, _ = self.load_start
        print(f"`{self.command}`, {self.started}, {os.cpu_count()} CPUs, "
              f"load average {one:.2f} (5 min {five:.2f}) at the start.")

    def note(self, text: str = "") -> None:
        print(text)
        if text.strip():
            self.notes.append(text.strip())

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[object]], align: str = "",
              title: str | None = None) -> None:
        """A Markdown table; ``align`` one letter a column (``l`` left, ``r`` right, ``-``
        none), the rest as the last letter given; no ``align``: no alignment marks."""
        rows = [[str(cell) for cell in row] for row in rows]
        marks = {"l": "---", "r": "---:", "-": "---"}
        letters = align.ljust(len(columns), align[-1:] or "-")
        print("| " + " | ".join(columns) + " |")
        print("|" + "|".join(marks[a] for a in letters[:len(columns)]) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        self.tables.append({"title": title, "columns": list(columns), "rows": rows})

    def finish(self, json_path: Path | None = None) -> None:
        """Write the JSON (when asked): command, date, CPUs, load at start and end, notes,
        tables and ``data``."""
        if json_path is None:
            return
        write_json(json_path, {"command": self.command, "date": self.started, "cpus": os.cpu_count(),
                               "load_start": self.load_start, "load_end": os.getloadavg(), "title": self.title,
                               "notes": self.notes, "tables": self.tables, **self.data})


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))
    print(f"\n(JSON written to {path})", file=sys.stderr)
