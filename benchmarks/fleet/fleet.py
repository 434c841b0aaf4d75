#!/usr/bin/env python3
"""One gateway against a fleet of three on one Redis, in one run: decisions per second,
gateway latency, and what the shared state costs per request at three replicas.

    .venv/bin/python benchmarks/fleet/fleet.py [--seconds 10] [--rounds 3] [--clients 8] [--json PATH]

Real LiteLLM gateways with the repository's config, two workers each (``--num_workers 2``),
in front of one zero-delay stub backend for both tiers (``backend: off``, smart
``max_in_flight: 64``), a real ``redis-server`` on a free port (started here):

- ``1 replica``: one gateway, its state in Redis;
- ``3 replicas``: three gateways sharing that Redis, the clients' requests spread over them
  in turn (what a Service does);
- ``3 replicas, shared_state off``: three gateways with the same Redis configured for
  LiteLLM but the router's state kept per process: the shared state's own cost at three.

``--clients`` concurrent clients send non-streaming requests (simple and complex in turn)
for ``--seconds`` to one set, then the next, ``--rounds`` times over, so the sets share
the machine's moments alike. Decisions per second are the router's own count
(``stratum_decisions_total``, summed over the set's gateways) over the time; latency is the
client's. Redis commands per request are counted from ``INFO commandstats`` over each
block, less the background ticks' rate measured just before with no traffic.

On a 2-core machine the gateways' processes share those two cores whatever their number:
three replicas cannot serve more here, so the ratio reads as what coordination costs,
not as scaling. Absolute figures swing 2-3x between runs; read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
from harness import Report, json_argument, load, p90  # noqa: E402
from harness.gateways import AUTH, merged, redis_commands, redis_config, started  # noqa: E402

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT  # noqa: E402
from gateway import Gateway  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from servers import StubBackend  # noqa: E402
from waiting import wait_until  # noqa: E402

SETS = ("1 replica", "3 replicas", "3 replicas, shared_state off")
WORKERS = ["--num_workers", "2", "--timeout_worker_healthcheck", "300"]


def decisions(gateways: list[Gateway]) -> float:
    return sum(gw.metric("stratum_decisions_total") or 0.0 for gw in gateways)


async def block(gateways: list[Gateway], clients: int, seconds: float) -> list[float]:
    """``clients`` closed loops for ``seconds``, each request to the next gateway in turn."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    turn = iter(range(10**9))

    async def loop(client: httpx.AsyncClient, n: int) -> None:
        while time.monotonic() < deadline:
            i = next(turn)
            gw = gateways[i % len(gateways)]
            prompt = SIMPLE_PROMPT if (i + n) % 2 else COMPLEX_PROMPT
            body = {"model": "gemma4-auto", "max_tokens": 4, "messages": [{"role": "user", "content": prompt}]}
            began = time.perf_counter()
            r = await client.post(f"{gw.base_url}/v1/chat/completions", json=body)
            r.raise_for_status()
            latencies.append((time.perf_counter() - began) * 1000.0)

    limits = httpx.Limits(max_keepalive_connections=0)  # a connection per request, as through a Service
    async with httpx.AsyncClient(headers=AUTH, timeout=60, limits=limits) as client:
        await asyncio.gather(*(loop(client, n) for n in range(clients)))
    return latencies


def measure(server: RedisServer, sets: dict[str, list[Gateway]], clients: int, seconds: float,
            rounds: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {name: {"latency": [], "decisions": 0.0, "time": 0.0, "commands": 0.0,
                                             "requests": 0} for name in sets}
    for _ in range(rounds):
        for name, gateways in sets.items():
            before = redis_commands(server)
            time.sleep(1.0)
            idle = sum((redis_commands(server) - before).values())  # every gateway's ticks, one second
            counted, commands = decisions(gateways), redis_commands(server)
            began = time.monotonic()
            latencies = asyncio.run(block(gateways, clients, seconds))
            took = time.monotonic() - began
            row = out[name]
            row["latency"] += latencies
            row["decisions"] += decisions(gateways) - counted
            row["time"] += took
            row["commands"] += sum((redis_commands(server) - commands).values()) - idle * took
            row["requests"] += len(latencies)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="length of one block of traffic")
    p.add_argument("--rounds", type=int, default=3, help="blocks per set of gateways")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients")
    json_argument(p)
    args = p.parse_args(argv)
    report = Report(__file__, argv)
    report.header("One gateway and a fleet of three on one Redis")
    print()
    settings = {"tiers": {"fast": {"backend": "off"}, "smart": {"backend": "off", "max_in_flight": 64}}}
    off = merged(settings, {"shared_state": {"mode": "off"}})
    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="stratum-fleet-bench-") as tmp, \
            StubBackend(name="zero-delay") as stub:
        stub.set_behaviour(ttft_ms=0, token_interval_ms=0, tokens=4)
        config = redis_config(Path(tmp), server.url)

        def gateway(stratum: dict[str, Any]) -> Gateway:
            return Gateway(stub.api_base, stub.api_base, stratum=stratum, config=config, args=WORKERS,
                           timeout_s=300, wait=False)

        everyone = {"a": gateway(settings), **{f"b{i}": gateway(settings) for i in range(3)},
                    **{f"c{i}": gateway(off) for i in range(3)}}
        began = time.monotonic()
        with started(everyone):
            print(f"Seven gateways of two workers each started side by side in {time.monotonic() - began:.0f} s.\n")
            sets = {SETS[0]: [everyone["a"]], SETS[1]: [everyone[f"b{i}"] for i in range(3)],
                    SETS[2]: [everyone[f"c{i}"] for i in range(3)]}
            asyncio.run(block(list(everyone.values()), 2, 2.0))  # warm every worker
            wait_until(lambda: all(gw.metric("stratum_shared_state_up") == 1 for gw in sets[SETS[1]]), timeout=30)
            results = measure(server, sets, args.clients, args.seconds, args.rounds)
            errors = {name: sum(gw.metric("stratum_internal_errors_total") or 0 for gw in gws)
                      for name, gws in sets.items()}

    base = results[SETS[0]]
    base_rate = base["decisions"] / base["time"]
    print(f"{args.clients} concurrent clients, non-streaming, simple and complex in turn; {args.rounds} blocks of "
          f"{args.seconds:.0f} s per set, the sets taking turns. Latency in milliseconds.\n")
    rows = []
    for name in SETS:
        row = results[name]
        rate = row["decisions"] / row["time"]
        lat = row["latency"]
        per = row["commands"] / max(row["requests"], 1)
        rows.append((name, f"{rate:.1f}", f"{rate / base_rate:.2f}x", f"{statistics.median(lat):.1f}", f"{p90(lat):.1f}",
                     f"{statistics.median(lat) - statistics.median(base['latency']):+.1f}", f"{per:.1f}"))
    report.table(("set", "decisions/s", "÷ 1 replica", "median", "p90", "median − 1 replica",
                  "Redis commands per request"), rows, "lr")
    shared, local = results[SETS[1]], results[SETS[2]]
    report.note(f"\nThe shared state's cost per request at three replicas (shared − shared_state off): median "
          f"{statistics.median(shared['latency']) - statistics.median(local['latency']):+.1f} ms, p90 "
          f"{p90(shared['latency']) - p90(local['latency']):+.1f} ms, "
          f"{shared['commands'] / max(shared['requests'], 1) - local['commands'] / max(local['requests'], 1):+.1f}"
          f" Redis commands. Internal errors: {errors}. Load average {load()} at the end.")
    report.finish(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
