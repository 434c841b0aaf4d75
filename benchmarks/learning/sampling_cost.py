#!/usr/bin/env python3
"""What judged sampling costs the request path: sampling on (share 1.0: every request) against
off, in process and through real gateways.

    .venv/bin/python benchmarks/learning/sampling_cost.py                      # both parts, about 8 minutes
    .venv/bin/python benchmarks/learning/sampling_cost.py --only engine --calls 20000
    .venv/bin/python benchmarks/learning/sampling_cost.py --only gateway --requests 300 --json /tmp/sampling.json
    .venv/bin/python benchmarks/learning/sampling_cost.py --only gateway --judge-stub   # the stub grades: samples end labelled

(a) In process: ``RouterEngine.route(body)`` (what the pre-call hook runs) for engines built
from ``parse_settings``: learning off; ``learning.judged.enabled`` with ``share: 1.0`` (every
routed request is drawn and gets a note); and the shipped share (0.02). The sampling engines
have a sampler attached (as the LiteLLM glue attaches one; its model calls are never made
here) and their label store in a temp dir. Bodies carry a ``litellm_call_id`` as LiteLLM's
do, so that a note is kept; after each call (untimed) the request is forgotten and its
in-flight place released, as the failure callback would. Interleaved in short blocks, CPU
time of the calling thread, medians and p99, ratios to "off".

(b) Through real gateways: three LiteLLM gateways (tests/support launchers, as
benchmarks/gateway/gateway_overhead.py starts them) in front of one zero-delay stub backend: "off",
a second "off" (two identical gateways differ by some noise on this machine: that
difference is the floor a real one must clear) and "on". Router settings come from a
``STRATUM_CONFIG`` file each: the project's ``stratum`` section; the "on" one adds
``learning.judged`` with share 1.0, the hour's and day's sample budgets raised so that they
never run out, and its store in a temp dir; everything else as shipped (``max_concurrent:
1``: a sample still in progress makes the next one ``busy``). Requests rotate between the
three, one at a time, streaming and not, first back to back (a sample runs beside the next
requests), then paced (``--gap-ms`` of rest after each round, so each sample has ended
before the next request: what is left is the request path itself). Client-observed
latency, median and p99, and the differences. Each sample makes two calls of its own (the
other tier's answer, the judge's grade) through the same gateway, off the request path. The
stub answers the judge with its fixed text, so samples end ``unparsed`` unless
``--judge-stub`` makes it answer every completion with a grade (then they end ``labelled``
and the store's writer thread writes them). ``stratum_samples_total`` by outcome and
``stratum_learning_calls_total`` are read from the on-gateway's /metrics around each pass.

The machine has 2 cores shared with other work: read the ratios and differences, not the
absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
from harness import percentile  # noqa: E402
from harness.gateways import timed_request as one_request  # noqa: E402
from harness.texts import realistic_text  # noqa: E402
from stratum_litellm.config import parse_settings  # noqa: E402
from stratum_litellm.gateway.engine import RouterEngine  # noqa: E402
from stratum_litellm.learning.sampler import Reply  # noqa: E402

BIG_BUDGET = {"per_hour": 1_000_000, "per_day": 10_000_000}


# ----------------------------------------------------------------------------- (a) in process


async def _never(group: str, messages: list[Any], metadata: dict[str, Any], params: dict[str, Any]) -> Reply:
    raise AssertionError("no sample is run in process")


def engines(directory: Path) -> dict[str, RouterEngine]:
    base = {"gpu": {"enabled": False}}
    out = {"off": RouterEngine(parse_settings(base))}
    for name, share in (("on, share 1.0", 1.0), ("on, share 0.02", 0.02)):
        settings = parse_settings({**base, "learning": {
            "judged": {"enabled": True, "share": share, **BIG_BUDGET},
            "store": {"path": str(directory / f"labels-{share}.db")}}})
        engine = RouterEngine(settings)
        engine.learning.attach(_never)
        out[name] = engine
    return out


def engine_part(calls: int, block: int) -> dict[str, Any]:
    rng = random.Random(7)
    texts = [realistic_text(size, rng) for size in (200, 2000) for _ in range(50)]
    with tempfile.TemporaryDirectory(prefix="stratum-sampling-") as tmp:
        runs = engines(Path(tmp))
        timed: dict[str, list[float]] = {name: [] for name in runs}
        kept: dict[str, int] = {name: 0 for name in runs}

        def one(engine: RouterEngine, text: str) -> tuple[float, bool]:
            call_id = uuid.uuid4().hex
            body: dict[str, Any] = {"model": "gemma4-auto", "litellm_call_id": call_id,
                                    "messages": [{"role": "user", "content": text}]}
            c0 = time.thread_time_ns()
            engine.route(body)
            spent = (time.thread_time_ns() - c0) / 1000
            noted = call_id in engine.learning._notes  # noqa: SLF001 - the benchmark checks the note was kept
            engine.learning.forget(call_id)
            engine.signals.latency.release(call_id)
            return spent, noted

        for name, engine in runs.items():  # warm-up
            for text in texts:
                one(engine, text)
        start = 0
        while start < calls:
            for name, engine in runs.items():
                for i in range(start, start + block):
                    spent, noted = one(engine, texts[i % len(texts)])
                    timed[name].append(spent)
                    kept[name] += noted
            start += block
        for engine in runs.values():
            engine.close()
    base_m, base_p = statistics.median(timed["off"]), percentile(timed["off"], 0.99)
    rows = {}
    for name, values in timed.items():
        m, p = statistics.median(values), percentile(values, 0.99)
        rows[name] = {"median_us": m, "p99_us": p, "median_ratio": m / base_m, "p99_ratio": p / base_p,
                      "notes": kept[name], "calls": len(values)}
    return rows


def print_engine(rows: dict[str, Any], calls: int, load: tuple[float, float]) -> None:
    print(f"(a) RouterEngine.route(body), {calls:,} calls per engine, bodies of 200 and 2,000 characters, "
          f"interleaved in blocks, CPU time of the calling thread (load average {load[0]:.1f} before / "
          f"{load[1]:.1f} after; 2 cores shared with other work)\n")
    print("| engine | median us | p99 us | median / off | p99 / off | requests noted |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_us']:.1f} | {r['p99_us']:.1f} | {r['median_ratio']:.3f} | {r['p99_ratio']:.3f} | "
              f"{r['notes']:,} of {r['calls']:,} |")
    print()


# ----------------------------------------------------------------------------- (b) gateways


def gateway_part(requests: int, warmup: int, judge_stub: bool, gap_ms: float) -> dict[str, Any]:
    import httpx
    from clients import parse_metric
    from gateway import MASTER_KEY, Gateway
    from servers import StubBackend

    from stratum_litellm.learning.sampler import OUTCOMES

    def counts(text: str) -> dict[str, int]:
        found = {o: int(parse_metric(text, "stratum_samples_total", outcome=o) or 0) for o in OUTCOMES}
        for kind in ("answer", "judge"):
            found[f"{kind} calls"] = int(parse_metric(text, "stratum_learning_calls_total", kind=kind) or 0)
        return found

    names = ("off", "off 2", "on")
    passes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="stratum-sampling-") as tmp, StubBackend(name="zero-delay") as backend:
        backend.set_behaviour(ttft_ms=0, token_interval_ms=0, tokens=4)
        if judge_stub:  # every completion is a grade: the judge's parses (5: the first tier was enough)
            backend.set_behaviour(judge={"needle": "no-such-needle-here", "match": 1, "otherwise": 5})
        overrides = {
            "off": {},
            "off 2": {},
            "on": {"learning": {"judged": {"enabled": True, "share": 1.0, **BIG_BUDGET},
                                "store": {"path": str(Path(tmp) / "labels.db")}}},
        }
        with contextlib.ExitStack() as stack:
            gateways = {name: stack.enter_context(Gateway(backend.api_base, backend.api_base, stratum=overrides[name]))
                        for name in names}
            urls = {name: f"{gw.base_url}/v1/chat/completions" for name, gw in gateways.items()}
            with httpx.Client(headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30) as client:
                for stream in (False, True):
                    for _ in range(warmup):
                        for url in urls.values():
                            one_request(client, url, stream)
                time.sleep(1.0)
                for gap in (0.0, gap_ms):
                    for stream in (False, True):
                        before = counts(gateways["on"].gateway_metrics())
                        times: dict[str, list[float]] = {name: [] for name in names}
                        for i in range(requests):
                            for name in names[i % 3:] + names[:i % 3]:  # rotate who goes first
                                times[name].append(one_request(client, urls[name], stream))
                            if gap:
                                time.sleep(gap / 1000)
                        time.sleep(1.0)  # let the last samples end
                        after = counts(gateways["on"].gateway_metrics())
                        passes.append({"gap_ms": gap, "stream": stream, "times": times,
                                       "samples": {k: after[k] - before[k] for k in after if after[k] - before[k]}})
            total = counts(gateways["on"].gateway_metrics())
            off_samples = sum(int(parse_metric(gateways[n].gateway_metrics(), "stratum_samples_total") or 0) for n in ("off", "off 2"))
            received = len(backend.requests())
    out: dict[str, Any] = {"passes": [], "total": {k: v for k, v in total.items() if v}, "off_samples": off_samples,
                           "backend_requests": received, "requests": requests, "warmup": warmup,
                           "judge_stub": judge_stub, "gap_ms": gap_ms}
    for p in passes:
        off, off2, on = p["times"]["off"], p["times"]["off 2"], p["times"]["on"]
        out["passes"].append({
            "gap_ms": p["gap_ms"], "mode": "streaming" if p["stream"] else "non-streaming", "samples": p["samples"],
            "off_median_ms": statistics.median(off), "off2_median_ms": statistics.median(off2),
            "on_median_ms": statistics.median(on),
            "off_p99_ms": percentile(off, 0.99), "off2_p99_ms": percentile(off2, 0.99), "on_p99_ms": percentile(on, 0.99),
            "off_mean_ms": statistics.mean(off), "off2_mean_ms": statistics.mean(off2), "on_mean_ms": statistics.mean(on)})
    return out


def print_gateway(found: dict[str, Any], load: tuple[float, float]) -> None:
    print(f"(b) three LiteLLM gateways (off, a second off for the noise floor, on) in front of one zero-delay stub, {found['requests']} requests per gateway, mode "
          f"and pacing after {found['warmup']} warm-up, rotating one at a time, client-observed milliseconds "
          f"(load average {load[0]:.1f} before / {load[1]:.1f} after; 2 cores shared with other work; "
          f"{'the stub grades every completion' if found['judge_stub'] else 'the stub answers the judge with fixed text'}). "
          f"'back to back': the next pair of requests goes as soon as the last is answered, so the on-gateway's "
          f"samples (two calls each) run beside the next requests; 'paced': {found['gap_ms']:g} ms of rest after each round, so a "
          f"sample has ended before the next request\n")
    print("| pacing | mode | off median | off 2 median | on median | on − off median | off 2 − off median (noise) "
          "| off p99 | on p99 | on − off p99 | off 2 − off p99 (noise) | on / off mean | on-gateway samples in this pass |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for m in found["passes"]:
        pacing = "back to back" if not m["gap_ms"] else f"paced ({m['gap_ms']:g} ms)"
        samples = ", ".join(f"{k} {v:,}" for k, v in m["samples"].items())
        print(f"| {pacing} | {m['mode']} | {m['off_median_ms']:.2f} | {m['off2_median_ms']:.2f} | {m['on_median_ms']:.2f} | "
              f"{m['on_median_ms'] - m['off_median_ms']:+.2f} | {m['off2_median_ms'] - m['off_median_ms']:+.2f} | "
              f"{m['off_p99_ms']:.2f} | {m['on_p99_ms']:.2f} | {m['on_p99_ms'] - m['off_p99_ms']:+.2f} | "
              f"{m['off2_p99_ms'] - m['off_p99_ms']:+.2f} | {m['on_mean_ms'] / m['off_mean_ms']:.3f} | {samples} |")
    total = found["total"]
    print(f"\nOn-gateway /metrics at the end (warm-up included): stratum_samples_total "
          + ", ".join(f"{k} {v:,}" for k, v in total.items() if not k.endswith("calls"))
          + f"; stratum_learning_calls_total answer {total.get('answer calls', 0):,}, judge "
          f"{total.get('judge calls', 0):,}. Off-gateways' samples: {found['off_samples']}. The stub received "
          f"{found['backend_requests']:,} chat requests in all.")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("engine", "gateway"))
    parser.add_argument("--calls", type=int, default=20_000, help="(a) timed calls per engine")
    parser.add_argument("--block", type=int, default=200, help="(a) calls per engine per turn")
    parser.add_argument("--requests", type=int, default=300, help="(b) requests per gateway and mode")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--judge-stub", action="store_true", help="(b) the stub answers every completion with a grade")
    parser.add_argument("--gap-ms", type=float, default=100.0, help="(b) rest after each round in the paced passes")
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args(argv)
    found: dict[str, Any] = {}
    if args.only in (None, "engine"):
        before = os.getloadavg()[0]
        found["engine"] = engine_part(args.calls, args.block)
        print_engine(found["engine"], args.calls, (before, os.getloadavg()[0]))
    if args.only in (None, "gateway"):
        before = os.getloadavg()[0]
        found["gateway"] = gateway_part(args.requests, args.warmup, args.judge_stub, args.gap_ms)
        print_gateway(found["gateway"], (before, os.getloadavg()[0]))
    if args.json:
        args.json.write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
