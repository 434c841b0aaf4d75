"""The few Prometheus gauges a reader needs, out of a backend's ``/metrics`` text."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from prometheus_client.parser import text_string_to_metric_families

#: metric name -> one (labels, value) per label set (one per engine, model, ...).
Metrics = Mapping[str, list[tuple[Mapping[str, str], float]]]


def parse(text: str, names: Collection[str]) -> Metrics:
    """Values of the metrics in ``names``, one per label set; other metrics are skipped.

    Only the wanted families are handed to the Prometheus parser: cheaper on vLLM's large
    histogram output, and a malformed line elsewhere cannot spoil the reading. A malformed
    wanted line raises (the parser raises more than ``ValueError``).
    """
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            parts = stripped.split(None, 3)
            name = parts[2] if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") else ""
        else:
            name = stripped.split("{", 1)[0].split(None, 1)[0]
        if name in names:
            kept.append(stripped)
    samples: dict[str, list[tuple[Mapping[str, str], float]]] = {}
    if not kept:
        return samples
    for family in text_string_to_metric_families("\n".join(kept) + "\n"):
        for sample in family.samples:
            if sample.name in names:
                value = float(sample.value)
                if math.isfinite(value):
                    samples.setdefault(sample.name, []).append((sample.labels, value))
    return samples


def count(metrics: Metrics, name: str) -> int | None:
    """Sum over label sets (engines), as a count; None if absent or nonsensical (< 0)."""
    values = [value for _, value in metrics.get(name, ())]
    if not values:
        return None
    total = sum(values)
    if total < 0:
        return None
    return int(round(total))


def fraction(metrics: Metrics, name: str) -> float | None:
    """The highest 0..1 value over label sets (the fullest engine); values outside 0..1
    are not trusted."""
    values = [value for _, value in metrics.get(name, ()) if 0.0 <= value <= 1.0]
    return max(values) if values else None
