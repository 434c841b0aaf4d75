"""A tier's latency as the policy reads it: this process's, with what all processes
together have seen put over it while the shared view is fresh."""

from __future__ import annotations

from dataclasses import replace

from ..latency import TierLatency
from .view import SharedTier


def merged(local: TierLatency, shared: SharedTier | None) -> TierLatency:
    """In flight: this process's requests plus the other processes' leases. Averages,
    failures and cooldown: the shared ones once any process has published a sample (until
    then, this process's own, which may be a seed)."""
    if shared is None:
        return local
    if shared.samples == 0 and shared.consecutive_failures == 0 and shared.last_sample_at is None:
        return replace(local, in_flight=local.in_flight + shared.others_in_flight,
                       probe_in_flight=local.probe_in_flight or shared.probe_claimed)
    return replace(
        local,
        in_flight=local.in_flight + shared.others_in_flight,
        ttft_ema_ms=shared.ttft_ema_ms if shared.ttft_ema_ms is not None else local.ttft_ema_ms,
        total_ema_ms=shared.total_ema_ms if shared.total_ema_ms is not None else local.total_ema_ms,
        samples=max(shared.samples, local.samples),
        last_sample_at=max(shared.last_sample_at or 0.0, local.last_sample_at or 0.0) or None,
        consecutive_failures=shared.consecutive_failures,
        unhealthy_until=shared.unhealthy_until,
        probe_in_flight=local.probe_in_flight or shared.probe_claimed,
    )
