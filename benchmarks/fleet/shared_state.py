#!/usr/bin/env python3
"""What sharing the router's state in Redis costs and what it buys, against the same
router with its own state only, in one run.

    .venv/bin/python benchmarks/fleet/shared_state.py [--only decision|gateway|burst]

Three parts, each against a real ``redis-server`` on a free port (started here):

- ``decision``: ``RouterEngine.route_shared(body)`` with a ``SharedState`` on a redis-py
  asyncio client (its background tick running in the same loop) against
  ``RouterEngine.route(body)`` of an engine with no shared state, on the same bodies,
  taking turns in short blocks. Wall time per decision (the Redis round trips are waits,
  not CPU). Every routed request is ended (``engine.observe`` with a success) so no lease
  piles up; each body has a fresh ``litellm_call_id``. A separate short pass counts the
  Lua scripts each kind of body runs on the request path.
- ``gateway``: real LiteLLM gateways with the repository's config in front of one
  zero-delay stub backend for both tiers (``backend: off``, smart ``max_in_flight: 64``):
  without Redis, with ``router_settings.redis_host/port`` but ``shared_state.mode: off``
  (what LiteLLM's own use of that Redis costs), and with the state shared. Sequential
  requests, rotating between the gateways each round.
- ``burst``: 20 complex streaming requests at once, split over two gateways, against a
  smart stub that takes ``--ttft-ms`` to its first token, smart ``max_in_flight: 2``: two
  gateways on one Redis against two that share nothing. The stub reports the most
  requests it held at once.

The figures to read are the ratios and differences: absolute times on a shared 2-core
machine swing 2-3x between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
from harness import Report, load, p90, p99  # noqa: E402
from harness.gateways import AUTH, merged, redis_commands, redis_config, started  # noqa: E402

import redis.asyncio as aioredis  # noqa: E402

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT  # noqa: E402
from gateway import Gateway  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from servers import StubBackend  # noqa: E402
from waiting import wait_until  # noqa: E402

from stratum_litellm.config import parse_settings  # noqa: E402
from stratum_litellm.gateway.engine import RouterEngine  # noqa: E402
from stratum_litellm.signals.shared import SharedState, scripts  # noqa: E402

SCRIPT_NAMES = {scripts.CLAIM: "claim", scripts.RECALL: "recall", scripts.TIER: "tier", scripts.OWNERS: "owners",
                scripts.REMEMBER: "remember", scripts.BUDGET: "budget"}


# -- 1. decision cost ---------------------------------------------------------------------

# A place on smart is only given back in Redis at the next tick (every 0.2 s), so blocks of
# fast calls leave hundreds of ended leases there for a moment: the limit is high enough
# that they never fill it (which the reasons printed check), while still making every
# complex decision claim its place.
DECISION_LIMIT = 100_000


def decision_settings(affinity: bool, prefix: str, limit: int = DECISION_LIMIT) -> Any:
    return parse_settings({
        "gpu": {"enabled": False},
        "affinity": {"enabled": affinity},
        "shared_state": {"key_prefix": prefix},
        "tiers": {"fast": {"model_group": "gemma4-fast", "backend": "off"},
                  "smart": {"model_group": "gemma4-smart", "backend": "off", "max_in_flight": limit}},
    })


_fresh = itertools.count()


def simple(_: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": SIMPLE_PROMPT}]


def complex_seen(_: int) -> list[dict[str, str]]:
    # The same opening every time: after the first, the conversation is on smart here already.
    return [{"role": "user", "content": COMPLEX_PROMPT}]


def complex_new(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{COMPLEX_PROMPT} (Case {n}.)"}]


def multi_turn_new(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Please look at this, case {n}."}, {"role": "assistant", "content": "Done."},
            {"role": "user", "content": SIMPLE_PROMPT}]


#: label, body's messages, whether the engines keep conversation affinity (the default).
CASES: list[tuple[str, Callable[[int], list[dict[str, str]]], bool]] = [
    ("simple, one turn (same text each time)", simple, True),
    ("complex, one turn, conversation already on smart", complex_seen, True),
    ("multi-turn, conversation not seen", multi_turn_new, True),
    ("complex, one turn, new conversation", complex_new, True),
    ("simple, one turn, affinity off", simple, False),
]


def body(messages: Callable[[int], list[dict[str, str]]]) -> dict[str, Any]:
    return {"model": "gemma4-auto", "messages": messages(next(_fresh)), "litellm_call_id": uuid.uuid4().hex}


def end(engine: RouterEngine, data: dict[str, Any], decision: Any) -> None:
    """The request's success callback, as the gateway's would give it: its in-flight count
    and its lease go."""
    kwargs = {"litellm_call_id": data["litellm_call_id"],
              "standard_logging_object": {"model_group": decision.model_group},
              "litellm_params": {"metadata": data.get("metadata", {})}}
    engine.observe(kwargs, 0.0, 0.01, ok=True)


class Pair:
    """A local engine and a shared one with the same settings; ``register`` makes the shared
    one's scripts (redis-py's own ``register_script`` unless counting)."""

    def __init__(self, affinity: bool, url: str, counting: bool = False, limit: int = DECISION_LIMIT) -> None:
        prefix = "bench" if affinity else "bench-noaffinity"
        prefix += "-count" if counting else ""
        prefix += f"-limit{limit}" if limit != DECISION_LIMIT else ""
        self.local = RouterEngine(decision_settings(affinity, prefix, limit))
        settings = decision_settings(affinity, prefix, limit)
        self.shared = RouterEngine(settings)
        self.client = aioredis.Redis.from_url(url)
        self.calls: Counter[str] = Counter()
        register = self.counted if counting else self.client.register_script
        self.state = SharedState(settings, lambda: register)
        self.shared.signals.share(self.state)

    def counted(self, source: str) -> Callable[..., Any]:
        script, name = self.client.register_script(source), SCRIPT_NAMES.get(source, "?")

        async def run(keys: list[str], args: list[Any]) -> Any:
            self.calls[name] += 1
            return await script(keys=keys, args=args)

        return run

    async def start(self) -> None:
        assert await self.state.sync(), "the shared state did not come up"
        self.state.start()

    async def close(self) -> None:
        self.state.close()
        self.local.close()
        self.shared.close()
        await self.client.aclose()


async def count_scripts(url: str) -> dict[str, Counter[str]]:
    """Scripts run on the request path per decision of each case, the tick paused."""
    out = {}
    for label, messages, affinity in CASES:
        pair = Pair(affinity, url, counting=True)
        await pair.state.sync()  # up, with no tick running: only the request path counts
        for _ in range(3):  # warm: the seen conversation reaches smart
            data = body(messages)
            end(pair.shared, data, await pair.shared.route_shared(data))
        pair.calls.clear()
        for _ in range(20):
            data = body(messages)
            end(pair.shared, data, await pair.shared.route_shared(data))
        out[label] = Counter({k: v / 20 for k, v in pair.calls.items()})
        await pair.close()
    return out


async def one_at_a_time(url: str, n: int = 30, gap_s: float = 0.02) -> dict[str, Counter[str]]:
    """Complex requests one after the other on a smart tier of ``max_in_flight: 2``, each
    ended before the next starts (``gap_s`` apart): never more than one in flight."""
    pair = Pair(True, url, limit=2)
    await pair.start()
    await asyncio.sleep(0.3)
    out: dict[str, Counter[str]] = {"local": Counter(), "shared": Counter()}
    for kind, engine in (("local", pair.local), ("shared", pair.shared)):
        for _ in range(n):
            data = body(complex_new)
            decision = engine.route(data) if kind == "local" else await engine.route_shared(data)
            out[kind][f"{decision.tier}/{decision.reason}"] += 1
            end(engine, data, decision)
            await asyncio.sleep(gap_s)
    await pair.close()
    return out


async def decision_part(url: str, calls: int, block: int) -> None:
    scripts_run = await count_scripts(url)
    sequential = await one_at_a_time(url)
    pairs = {True: Pair(True, url), False: Pair(False, url)}
    for pair in pairs.values():
        await pair.start()
    ping = aioredis.Redis.from_url(url)
    await ping.ping()
    times: dict[tuple[str, str], list[float]] = {(label, kind): [] for label, _, _ in CASES
                                                 for kind in ("local", "shared")}
    ping_times: list[float] = []
    # One round trip as SharedState._run makes it: the recall script under asyncio.wait_for.
    recall = ping.register_script(scripts.RECALL)
    await recall(keys=["bench:nothing"], args=[])
    script_times: list[float] = []
    reasons: dict[tuple[str, str], Counter[str]] = {key: Counter() for key in times}
    not_up = 0
    # Warm both engines on every case (scripts cached, the seen conversation on smart).
    for label, messages, affinity in CASES:
        pair = pairs[affinity]
        for _ in range(50):
            data = body(messages)
            end(pair.local, data, pair.local.route(data))
            data = body(messages)
            end(pair.shared, data, await pair.shared.route_shared(data))
    load_before = load()
    blocks = max(1, calls // block)
    for n in range(blocks):
        order = CASES[n % len(CASES):] + CASES[:n % len(CASES)]
        for label, messages, affinity in order:
            pair = pairs[affinity]
            kinds = ("local", "shared") if n % 2 == 0 else ("shared", "local")
            for kind in kinds:
                samples, seen = times[(label, kind)], reasons[(label, kind)]
                for _ in range(block):
                    data = body(messages)
                    if kind == "local":
                        started = time.perf_counter_ns()
                        decision = pair.local.route(data)
                        samples.append((time.perf_counter_ns() - started) / 1000)
                        end(pair.local, data, decision)
                    else:
                        not_up += not pair.state.up
                        started = time.perf_counter_ns()
                        decision = await pair.shared.route_shared(data)
                        samples.append((time.perf_counter_ns() - started) / 1000)
                        end(pair.shared, data, decision)
                    seen[f"{decision.tier}/{decision.reason}"] += 1
        for _ in range(block // 5):
            started = time.perf_counter_ns()
            await ping.ping()
            ping_times.append((time.perf_counter_ns() - started) / 1000)
            started = time.perf_counter_ns()
            await asyncio.wait_for(recall(keys=["bench:nothing"], args=[]), timeout=0.05)
            script_times.append((time.perf_counter_ns() - started) / 1000)
        await asyncio.sleep(0)  # the ticks run between blocks as well as during the waits
    left = sum(pair.shared.signals.latency.in_flight("smart") for pair in pairs.values())
    await asyncio.sleep(0.5)  # a tick or two: the ended leases go
    in_redis = sum([await ping.zcard(pair.state.keys.leases("smart")) for pair in pairs.values()])
    for pair in pairs.values():
        await pair.close()
    await ping.aclose()

    print(f"\n## 1. Decision cost: `route_shared` (Redis) against `route` (local)\n")
    print(f"Wall time per decision, microseconds; {blocks} blocks of {block} calls per case and engine, "
          f"taking turns; load average {load_before} before, {load()} after. Redis scripts: those a decision "
          f"runs on the request path (a separate pass of 20, the tick paused).\n")
    print("| case | local p50 | shared p50 | added p50 | shared / local p50 | local p99 | shared p99 | added p99 "
          "| Redis scripts per decision | routed (shared) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for label, _, _ in CASES:
        lo, sh = times[(label, "local")], times[(label, "shared")]
        ran = ", ".join(f"{v:g} {k}" for k, v in sorted(scripts_run[label].items())) or "none"
        routed = ", ".join(f"{k} {v}" for k, v in reasons[(label, "shared")].most_common())
        print(f"| {label} | {statistics.median(lo):.1f} | {statistics.median(sh):.1f} | "
              f"{statistics.median(sh) - statistics.median(lo):+.1f} | "
              f"{statistics.median(sh) / statistics.median(lo):.2f}x | {p99(lo):.1f} | {p99(sh):.1f} | "
              f"{p99(sh) - p99(lo):+.1f} | {ran} | {routed} |")
    for label, values in (("(a bare `PING`, redis-py asyncio client, same loop)", ping_times),
                          ("(the recall script alone, under `asyncio.wait_for` as `SharedState` runs it)",
                           script_times)):
        print(f"| {label} | | {statistics.median(values):.1f} | | | | {p99(values):.1f} | | | |")
    local_reasons = {label: reasons[(label, "local")] for label, _, _ in CASES}
    print("\nRouted by the local engine: " + "; ".join(
        f"{label}: " + ", ".join(f"{k} {v}" for k, v in seen.most_common()) for label, seen in local_reasons.items()))
    print("\nOne at a time on a smart tier of `max_in_flight: 2`: 30 complex requests (new conversations), "
          "each ended (its success callback) 20 ms before the next, so never more than one in flight; the shared "
          "state's tick runs every 0.2 s (the default `sync_interval_s`):\n")
    print("| engine | routed |")
    print("|---|---|")
    for kind, seen in sequential.items():
        print(f"| {kind} | {', '.join(f'{k} {v}' for k, v in seen.most_common())} |")
    print(f"\nShared decisions taken while the shared view was not up (routed locally): {not_up}. "
          f"Local in flight on smart at the end: {left}; leases left in Redis 0.5 s later: "
          f"{in_redis}.")


# -- 2. gateway latency -------------------------------------------------------------------

def one_request(client: httpx.Client, gw: Gateway, prompt: str) -> tuple[float, str]:
    body = {"model": "gemma4-auto", "max_tokens": 4, "messages": [{"role": "user", "content": prompt}]}
    started_at = time.perf_counter()
    r = client.post(f"{gw.base_url}/v1/chat/completions", json=body)
    elapsed = (time.perf_counter() - started_at) * 1000.0
    r.raise_for_status()
    return elapsed, f"{r.headers.get('x-stratum-tier')}/{r.headers.get('x-stratum-reason')}"


def waited(gw: Gateway, before: tuple[float, float] | None = None) -> Any:
    """The gateway's ``stratum_shared_state_wait_seconds`` (sum, count); with ``before``, the
    mean wait in milliseconds since then (None: the gateway does not wait on Redis)."""
    total = gw.metric("stratum_shared_state_wait_seconds_sum") or 0.0
    count = gw.metric("stratum_shared_state_wait_seconds_count") or 0.0
    if before is None:
        return total, count
    return None if count == before[1] else (total - before[0]) / (count - before[1]) * 1000.0


def commands_per_request(server: RedisServer, client: httpx.Client, gw: Gateway, prompt: str,
                         n: int = 60) -> tuple[float, Counter[str]]:
    """Redis commands per request through ``gw`` beyond the background rate (every
    gateway's tick) measured just before, over as long a time."""
    before = redis_commands(server)
    started_at = time.monotonic()
    for _ in range(n):
        one_request(client, gw, prompt)
    busy_s = time.monotonic() - started_at
    busy = redis_commands(server) - before
    before = redis_commands(server)
    time.sleep(busy_s)
    idle = redis_commands(server) - before
    per = Counter({k: (busy[k] - idle[k]) / n for k in busy if abs(busy[k] - idle[k]) / n >= 0.05})
    return sum(busy.values()) / n - sum(idle.values()) / n, per


def gateway_part(server: RedisServer, tmp: Path, requests: int, warmup: int) -> None:
    settings = {"tiers": {"fast": {"backend": "off"}, "smart": {"backend": "off", "max_in_flight": 64}}}
    config = redis_config(tmp, server.url)
    names = ("no Redis", "Redis, shared_state off", "Redis, shared")
    with StubBackend(name="zero-delay") as stub:
        stub.set_behaviour(ttft_ms=0, token_interval_ms=0, tokens=4)
        gateways = {
            "no Redis": Gateway(stub.api_base, stub.api_base, stratum=settings, wait=False),
            "Redis, shared_state off": Gateway(stub.api_base, stub.api_base, config=config, wait=False,
                                               stratum=merged(settings, {"shared_state": {"mode": "off"}})),
            "Redis, shared": Gateway(stub.api_base, stub.api_base, config=config, wait=False, stratum=settings),
        }
        begun = time.monotonic()
        with started(gateways), httpx.Client(headers=AUTH, timeout=30) as client:
            startup_s = time.monotonic() - begun
            for gw in gateways.values():
                one_request(client, gw, SIMPLE_PROMPT)  # the first request starts the tick
            wait_until(lambda: gateways["Redis, shared"].metric("stratum_shared_state_up") == 1, timeout=15)
            up = {name: gw.metric("stratum_shared_state_up") for name, gw in gateways.items()}
            load_before = load()
            rows = []
            for prompt_name, prompt in (("simple", SIMPLE_PROMPT), ("complex", COMPLEX_PROMPT)):
                for _ in range(warmup):
                    for gw in gateways.values():
                        one_request(client, gw, prompt)
                times: dict[str, list[float]] = {name: [] for name in names}
                routed: dict[str, Counter[str]] = {name: Counter() for name in names}
                waits_before = {name: waited(gw) for name, gw in gateways.items()}
                for i in range(requests):
                    for name in names[i % 3:] + names[:i % 3]:  # who goes first rotates
                        elapsed, how = one_request(client, gateways[name], prompt)
                        times[name].append(elapsed)
                        routed[name][how] += 1
                waits = {name: waited(gw, waits_before[name]) for name, gw in gateways.items()}
                commands = {name: commands_per_request(server, client, gateways[name], prompt)
                            for name in names[1:]}
                rows.append((prompt_name, times, routed, commands, waits))
            errors = {name: gw.metric("stratum_internal_errors_total") for name, gw in gateways.items()}
            shared_errors = gateways["Redis, shared"].metric("stratum_shared_state_errors_total")
            local_decisions = gateways["Redis, shared"].metric("stratum_shared_state_local_decisions_total")
            up_after = gateways["Redis, shared"].metric("stratum_shared_state_up")

    print(f"\n## 2. Gateway latency: with the state shared in Redis and without\n")
    print(f"{requests} sequential non-streaming requests per gateway and prompt, the three gateways taking turns "
          f"(first one rotating), after {warmup} each to warm up; a zero-delay stub backend for both tiers; "
          f"milliseconds (the mean wait on Redis per request from the gateway's "
          f"`stratum_shared_state_wait_seconds`). Load average {load_before} before, {load()} after; the gateways started in "
          f"{startup_s:.0f} s. `stratum_shared_state_up`: {up}.\n")
    print("| prompt | gateway | median | p90 | − no Redis, median | − no Redis, p90 | waited on Redis, mean "
          "| routed | Redis commands per request (the commands inside scripts counted too) |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|")
    for prompt_name, times, routed, commands, waits in rows:
        base = times["no Redis"]
        for name in names:
            values = times[name]
            diff = "" if name == "no Redis" else f"{statistics.median(values) - statistics.median(base):+.2f}"
            diff90 = "" if name == "no Redis" else f"{p90(values) - p90(base):+.2f}"
            how = ", ".join(f"{k} {v}" for k, v in routed[name].most_common())
            if name in commands:
                total, per = commands[name]
                runs = per.get("evalsha", 0.0) + per.get("eval", 0.0)
                inside = ", ".join(f"{k} {v:.1f}" for k, v in per.most_common() if k not in ("evalsha", "eval"))
                cmds = f"{total:.1f}: {runs:.1f} script runs ({inside or 'nothing else'})"
            else:
                cmds = "—"
            wait = "—" if waits[name] is None else f"{waits[name]:.3f}"
            print(f"| {prompt_name} | {name} | {statistics.median(values):.2f} | {p90(values):.2f} | {diff} | "
                  f"{diff90} | {wait} | {how} | {cmds} |")
        shared, off = times["Redis, shared"], times["Redis, shared_state off"]
        print(f"| {prompt_name} | shared − shared_state off | | | {statistics.median(shared) - statistics.median(off):+.2f}"
              f" | {p90(shared) - p90(off):+.2f} | | | |")
    print(f"\nInternal errors: {errors}; the shared gateway's Redis errors: {shared_errors}, decisions taken "
          f"locally while it was down: {local_decisions}, `stratum_shared_state_up` at the end: {up_after}.")


# -- 3. a burst over two gateways ---------------------------------------------------------

async def stream(client: httpx.AsyncClient, gw: Gateway) -> tuple[str, str]:
    body = {"model": "gemma4-auto", "stream": True, "max_tokens": 4,
            "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}
    async with client.stream("POST", f"{gw.base_url}/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for _ in r.aiter_bytes():
            pass
        return r.headers.get("x-stratum-tier", "?"), r.headers.get("x-stratum-reason", "?")


def late_replies(gateways: list[Gateway]) -> float:
    """Claims and look-ups whose Redis reply did not come within the budget (or failed),
    summed over ``gateways``: each such request was routed from local state."""
    return sum(gw.metric("stratum_shared_state_errors_total", op=op) or 0.0
               for gw in gateways for op in ("claim", "recall"))


async def burst(gateways: list[Gateway], smart: StubBackend, n: int) -> tuple[Any, ...]:
    smart.clear_requests()
    late = late_replies(gateways)
    started_at = time.monotonic()
    async with httpx.AsyncClient(headers=AUTH, timeout=120, limits=httpx.Limits(max_connections=4 * n)) as client:
        replies = await asyncio.gather(*(stream(client, gateways[i % len(gateways)]) for i in range(n)))
    took = time.monotonic() - started_at
    return smart.peak(), len(smart.requests()), Counter(replies), took, late_replies(gateways) - late


def burst_part(server: RedisServer, tmp: Path, n: int, rounds: int, ttft_ms: int) -> None:
    settings = {"latency": {"sla_ms": 120_000},  # only the capacity decides, not the slow first token
                "tiers": {"fast": {"backend": "off"}, "smart": {"backend": "off", "max_in_flight": 2}}}
    config = redis_config(tmp, server.url)
    server.flush()
    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart:
        smart.set_behaviour(ttft_ms=ttft_ms, token_interval_ms=0, tokens=4)
        gateways = {f"shared {i}": Gateway(fast.api_base, smart.api_base, config=config, stratum=settings, wait=False)
                    for i in (1, 2)}
        gateways |= {f"local {i}": Gateway(fast.api_base, smart.api_base, stratum=settings, wait=False)
                     for i in (1, 2)}
        with started(gateways), httpx.Client(headers=AUTH, timeout=30) as client:
            for gw in gateways.values():
                for _ in range(2):
                    one_request(client, gw, SIMPLE_PROMPT)
            wait_until(lambda: all(gateways[f"shared {i}"].metric("stratum_shared_state_up") == 1 for i in (1, 2)),
                       timeout=15)
            up = {name: gw.metric("stratum_shared_state_up") for name, gw in gateways.items()}
            load_before = load()
            results = []
            for r in range(rounds):
                for mode in ("shared", "local"):
                    pair = [gateways[f"{mode} 1"], gateways[f"{mode} 2"]]
                    results.append((r + 1, mode, *asyncio.run(burst(pair, smart, n))))
                    time.sleep(1.0)  # the ended leases go at the next tick; nothing left in flight
            errors = {name: gw.metric("stratum_internal_errors_total") for name, gw in gateways.items()}

    print(f"\n## 3. A burst over two gateways: {n} complex streams at once, {n // 2} to each\n")
    print(f"Smart: a stub taking {ttft_ms:,} ms to its first token, `max_in_flight: 2` on each gateway; fast: a "
          f"zero-delay stub. Two gateways on one redis-server (shared) against two without Redis (local), "
          f"{rounds} round(s) taking turns. Load average {load_before} before, {load()} after. "
          f"`stratum_shared_state_up`: {up}.\n")
    print("| round | gateways | smart backend's peak in flight | requests the smart backend got | "
          "smart (reason) | fast (reason) | Redis replies late or failed (claim, recall) | burst took s |")
    print("|---:|---|---:|---:|---|---|---:|---:|")
    for r, mode, peak, got, replies, took, late in results:
        smart_ones = ", ".join(f"{v} {reason}" for (tier, reason), v in replies.most_common() if tier == "smart")
        fast_ones = ", ".join(f"{v} {reason}" for (tier, reason), v in replies.most_common() if tier == "fast")
        label = "shared (one Redis)" if mode == "shared" else "local (no Redis)"
        print(f"| {r} | {label} | {peak} | {got} | {sum(v for (t, _), v in replies.items() if t == 'smart')}"
              f" ({smart_ones or '—'}) | {sum(v for (t, _), v in replies.items() if t == 'fast')} "
              f"({fast_ones or '—'}) | {'—' if mode == 'local' else f'{late:g}'} | {took:.1f} |")
    print(f"\nInternal errors: {errors}.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("decision", "gateway", "burst"), help="run one part only")
    p.add_argument("--calls", type=int, default=3000, help="decisions per case and engine (part 1)")
    p.add_argument("--block", type=int, default=100, help="calls per block before the next engine's turn (part 1)")
    p.add_argument("--requests", type=int, default=200, help="requests per gateway and prompt (part 2)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up requests per gateway and prompt (part 2)")
    p.add_argument("--burst", type=int, default=20, help="concurrent streams in a burst (part 3)")
    p.add_argument("--rounds", type=int, default=3, help="bursts per mode (part 3)")
    p.add_argument("--ttft-ms", type=int, default=3000, help="the smart stub's time to first token (part 3)")
    args = p.parse_args(argv)

    began = time.monotonic()
    Report(__file__, argv).header("Shared state in Redis: cost and effect")
    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="stratum-shared-bench-") as tmp:
        if args.only in (None, "decision"):
            asyncio.run(decision_part(server.url, args.calls, args.block))
        if args.only in (None, "gateway"):
            server.flush()
            gateway_part(server, Path(tmp), args.requests, args.warmup)
        if args.only in (None, "burst"):
            burst_part(server, Path(tmp), args.burst, args.rounds, args.ttft_ms)
    print(f"\nThe run took {time.monotonic() - began:.0f} s; load average {load()} at the end.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
