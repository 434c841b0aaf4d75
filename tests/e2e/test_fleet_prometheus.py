"""A fleet, seen as one: a real Prometheus scraping three real gateways (the repository's
litellm_config.yaml and the plugin, sharing one real redis-server, in front of one real
llama-server per tier), with a known number of requests sent through each.

The dashboard's fleet panels, run as the dashboard has them, add up what each replica
counts (decisions, requests in flight) and show once what every replica reports alike (a
latency average shared in Redis, the backends' own slots, a setting): never three times.
Shared state up is one series per replica, and when one replica loses Redis (the third
reaches it through a relay the test cuts) the panel and StratumSharedStateDown name that
replica alone.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Iterator

import pytest

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from fleet import PATIENT
from gateway import MASTER_KEY, Gateway
from process import free_port
from prometheus_server import Prometheus, panel_exprs, write_scrape_config
from redis_server import RedisServer
from servers import LlamaServer
from tcp_relay import TcpRelay
from waiting import wait_until

# Requests through each of the three gateways: simple ones (the fast tier) and complex ones
# (the smart tier), so that each replica's own count differs.
SIMPLE = (2, 3, 4)
COMPLEX = (1, 0, 1)
# SmolLM2 on a busy 2-core CPU is slow: keep the SLA out of the way of routing.
ROUTER = {"latency": {"sla_ms": 120_000}, "shared_state": PATIENT}
# Filled in for Grafana's $__rate_interval: longer than the whole test, so increase() counts
# every request since each counter's first scrape (at 0), and rate() times it the same.
WINDOW_S = 600
# increase() extrapolates to the end of its window by up to 1.1 scrape intervals (1 s here):
# over this many seconds of samples that adds at most 11 * 1.1 / 40 = 0.3 to a count of 11,
# so a count read from a panel rounds to the exact number.
SAMPLED_S = 40


def ask(gw: Gateway, content: str) -> str:
    """One request through ``gw``: the tier it reports."""
    with gw.client() as client:
        reply = client.chat.completions.with_raw_response.create(
            model="gemma4-auto", messages=[{"role": "user", "content": content}], max_tokens=8)
    return reply.headers["x-stratum-tier"]


def instance(gw: Gateway) -> str:
    return f"127.0.0.1:{gw.port}"


def values(prom: Prometheus, expr: str, label: str | None = None) -> dict[str | None, float]:
    """``expr`` now, by the value of ``label`` (None: a single series)."""
    return {r["metric"].get(label) if label else None: float(r["value"][1])
            for r in prom.query(expr, rate_interval=f"{WINDOW_S}s")}


@pytest.fixture(scope="module")
def redis_relay(redis_server: RedisServer) -> Iterator[TcpRelay]:
    with TcpRelay(redis_server.host, redis_server.port) as relay:
        yield relay


@pytest.fixture(scope="module")
def fleet(llama_fast: LlamaServer, llama_smart: LlamaServer, redis_server: RedisServer,
          redis_relay: TcpRelay) -> Iterator[list[Gateway]]:
    """Three gateways on one Redis, the third through the relay; they start at once."""
    redis_at = [(redis_server.host, redis_server.port)] * 2 + [(redis_relay.host, redis_relay.port)]
    gateways = [Gateway(llama_fast.api_base, llama_smart.api_base, stratum=ROUTER, wait=False, timeout_s=300,
                        env={"REDIS_HOST": host, "REDIS_PORT": str(port)}) for host, port in redis_at]
    with ExitStack() as started:
        for gw in gateways:
            started.enter_context(gw)
        for gw in gateways:
            assert gw.process is not None
            gw.process.wait_ready()
        yield gateways


@pytest.fixture(scope="module")
def prometheus(fleet: list[Gateway], llama_smart: LlamaServer,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    folder = tmp_path_factory.mktemp("prometheus-fleet")
    # One target per replica under the gateway job; nothing listens on the vLLM target.
    config = write_scrape_config(folder, MASTER_KEY, [instance(gw) for gw in fleet],
                                 llama_smart.base_url.split("//", 1)[1], f"127.0.0.1:{free_port()}")
    with Prometheus(config, folder / "data") as prom:
        yield prom


def test_fleet_panels_add_up_what_each_replica_counts_and_show_shared_values_once(
        fleet: list[Gateway], prometheus: Prometheus) -> None:
    # Each replica's decision counters scraped at 0 before the first request.
    assert wait_until(lambda: len(prometheus.query("sum by (instance) (stratum_decisions_total) == 0")) == 3,
                      timeout=60, interval=0.5), prometheus.target_health()
    scraped_from = time.monotonic()

    for gw, simple, complex_ in zip(fleet, SIMPLE, COMPLEX):
        assert [ask(gw, SIMPLE_PROMPT) for _ in range(simple)] == ["fast"] * simple
        assert [ask(gw, COMPLEX_PROMPT) for _ in range(complex_)] == ["smart"] * complex_
    sent = sum(SIMPLE) + sum(COMPLEX)

    in_flight = panel_exprs("In flight per tier")[0]
    _, total, sla = panel_exprs("Latency EMA per tier vs SLA")  # (time to first token: streams only)
    raw_total = 'stratum_tier_latency_ema_seconds{measure="total"}'

    def settled() -> bool:
        # Every answer's callback has run and each replica has read the shared averages back.
        readings = prometheus.query(raw_total)
        return (values(prometheus, "sum(stratum_decisions_total)") == {None: sent}
                and values(prometheus, in_flight, "tier") == {"fast": 0, "smart": 0}
                and len(readings) == 6 and len({(r["metric"]["tier"], r["value"][1]) for r in readings}) == 2)

    assert wait_until(settled, timeout=60, interval=0.5), prometheus.query(raw_total)
    time.sleep(max(0.0, scraped_from + SAMPLED_S - time.monotonic()))

    # Counters: summed over the replicas, each replica's own count in them.
    assert values(prometheus, "sum by (instance) (stratum_decisions_total)", "instance") == {
        instance(gw): simple + complex_ for gw, simple, complex_ in zip(fleet, SIMPLE, COMPLEX)}
    by_reason = values(prometheus, panel_exprs("Decisions by reason")[0], "reason")
    assert {reason: round(rate * WINDOW_S) for reason, rate in by_reason.items() if rate} == {
        "simple": sum(SIMPLE), "complex": sum(COMPLEX)}
    scores = values(prometheus, panel_exprs("Complexity score distribution")[0], "le")
    assert round(scores["+Inf"]) == sent
    share = values(prometheus, panel_exprs("Share of routed traffic per tier")[0], "tier")
    assert share == pytest.approx({"fast": 100 * sum(SIMPLE) / sent, "smart": 100 * sum(COMPLEX) / sent}, abs=2)
    assert len(prometheus.query(in_flight)) == 2  # one series per tier, not one per replica

    # Shared state: one series per replica, all up.
    assert values(prometheus, panel_exprs("Shared state up")[0], "instance") == {instance(gw): 1 for gw in fleet}
    reaching, replicas = panel_exprs("Replicas reaching Redis")
    assert values(prometheus, reaching) == values(prometheus, replicas) == {None: 3}

    # What every replica reports alike shows once: the latency average shared in Redis (each
    # replica reads the same value back; a sum would show it three times), the backends' own
    # slots (llama-server -np 2, read by each replica), a setting.
    readings = prometheus.query(raw_total)
    shown = values(prometheus, total, "tier")
    assert set(shown) == {"fast", "smart"}
    for tier, value in shown.items():
        each = [float(r["value"][1]) for r in readings if r["metric"]["tier"] == tier]
        assert len(each) == 3 and set(each) == {value}, readings
    slots = panel_exprs("Backend queue (as the router reads it)")[2]
    assert values(prometheus, slots, "tier") == {"fast": 2, "smart": 2}
    assert len(prometheus.query("stratum_backend_slots")) == 6
    assert values(prometheus, sla) == {None: 120}


def test_the_replica_that_loses_redis_is_the_one_the_panel_and_the_alert_name(
        fleet: list[Gateway], redis_relay: TcpRelay, prometheus: Prometheus) -> None:
    per_replica = panel_exprs("Shared state up")[0]
    reaching, replicas = panel_exprs("Replicas reaching Redis")
    for gw in fleet:  # a request each: every replica's shared-state tick runs
        ask(gw, SIMPLE_PROMPT)
    up = {instance(gw): 1.0 for gw in fleet}
    assert wait_until(lambda: values(prometheus, per_replica, "instance") == up, timeout=30, interval=0.5)

    redis_relay.cut()
    lost = instance(fleet[2])
    assert wait_until(lambda: values(prometheus, per_replica, "instance") == {**up, lost: 0.0},
                      timeout=30, interval=0.5), values(prometheus, per_replica, "instance")
    assert values(prometheus, reaching) == {None: 2} and values(prometheus, replicas) == {None: 3}

    # The rule as Prometheus evaluates it (every second here): pending, as its `for` is two
    # minutes, for the replica that lost Redis alone, its summary naming it.
    def alerts() -> list[dict]:
        return [a for a in prometheus.api("alerts")["alerts"] if a["labels"]["alertname"] == "StratumSharedStateDown"]

    assert wait_until(lambda: len(alerts()) == 1, timeout=15, interval=0.5), alerts()
    alert = alerts()[0]
    assert alert["state"] == "pending" and alert["labels"]["instance"] == lost
    assert alert["annotations"]["summary"] == f"Router shared state down on {lost}"
