"""Reliability of the router inside a real LiteLLM gateway: odd bodies, many streams, a
backend killed and restarted, clients that leave early, NVML faults, a long soak, and
hostile rule patterns. Prints one Markdown table ``| probe | figure |``.

    .venv/bin/python benchmarks/gateway/reliability.py
    .venv/bin/python benchmarks/gateway/reliability.py --fuzz 2000 --streams 200 --soak 100000

Every gateway is ``litellm --config litellm_config.yaml`` with the plugin (tests/support/
gateway.py). Stub backends stand in where speed or an injected behaviour matters; the
kill/restart probe uses real llama-servers; the NVML probe uses the fake NVML library of
tests/support/nvml_fake read by the real pynvml in the gateway; the Redis probe runs two
gateways on one real redis-server (tests/support/redis_server.py) that it pauses and kills. The soak runs the router's
engine in this process, since HTTP would measure LiteLLM rather than the router's memory.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "tests"))

import nvml_fake  # noqa: E402
from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT  # noqa: E402
from gateway import CONFIG, Gateway, project_stratum_settings  # noqa: E402
from process import ManagedProcess  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from servers import LlamaServer, StubBackend  # noqa: E402
from waiting import wait_until  # noqa: E402

Row = tuple[str, str]


def headers(gw: Gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.master_key}"}


def post(gw: Gateway, body: Any, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/v1/chat/completions", json=body, timeout=timeout, headers=headers(gw))


def complex_body(max_tokens: int = 4) -> dict[str, Any]:
    return {"model": "gemma4-auto", "max_tokens": max_tokens, "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}


def metric0(gw: Gateway, name: str, **labels: str) -> float:
    # An absent sample means the counter was never touched: zero.
    return gw.metric(name, **labels) or 0.0


def in_flight_zero_after(gw: Gateway, tiers: tuple[str, ...], timeout_s: float = 30.0) -> float | None:
    """Seconds until every tier's in-flight gauge reads 0, or None if it never did."""
    started = time.perf_counter()
    ok = wait_until(lambda: all(metric0(gw, "stratum_tier_in_flight", tier=t) == 0 for t in tiers),
                    timeout=timeout_s, interval=0.1)
    return time.perf_counter() - started if ok else None


def decision_buckets(gw: Gateway) -> dict[float, float]:
    """Cumulative counts of stratum_decision_seconds by upper bound (summed over labels)."""
    out: dict[float, float] = collections.defaultdict(float)
    for line in gw.gateway_metrics().splitlines():
        if not line.startswith("stratum_decision_seconds_bucket"):
            continue
        head, _, value = line.rpartition(" ")
        le = head.split('le="', 1)[1].split('"', 1)[0]
        out[float("inf") if le == "+Inf" else float(le)] += float(value)
    return out


def quantile_bound(before: dict[float, float], after: dict[float, float], q: float) -> str:
    """The smallest bucket bound holding the q-quantile of the observations between two reads."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    if total <= 0:
        return "no decisions recorded"
    lower = 0.0
    for b in bounds:
        if after[b] - before.get(b, 0.0) >= q * total:
            if b == float("inf"):
                return f"> {lower * 1000:g} ms (of {total:g} decisions)"
            return f"{lower * 1000:g}-{b * 1000:g} ms (of {total:g} decisions)"
        lower = b
    return "?"


# -- 1. fuzz ---------------------------------------------------------------------------------


def fuzz_bodies(rng: random.Random, n: int, model: str) -> list[Any]:
    """n odd request bodies, drawn from a fixed menu by a seeded generator."""
    texts = [SIMPLE_PROMPT, COMPLEX_PROMPT, "x" * 100_000, "请证明素数有无穷多个，并给出完整推导。",
             "Докажите, что корень из двух иррационален.", "🙂" * 500, "", " ", "\u0000\ufffe"]

    def message() -> Any:
        pick = rng.randrange(14)
        text = rng.choice(texts)
        if pick == 0:
            return {"role": "user", "content": rng.randrange(-10, 10**6)}
        if pick == 1:
            return {"role": "user", "content": None}
        if pick == 2:
            return {"role": "user", "content": {"text": text}}
        if pick == 3:
            return {"role": "user", "content": [[{"type": "text", "text": text}]]}
        if pick == 4:
            return {"role": rng.choice(["wizard", "", None, 7, "SYSTEM"]), "content": text}
        if pick == 5:
            return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                                               {"type": "text", "text": text}]}
        if pick == 6:
            return {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}
        if pick == 7:
            return {"role": "tool", "tool_call_id": "call_1", "content": text}
        if pick == 8:
            return {"role": "user", "content": [{"type": rng.choice(["text", "audio", None]), "text": rng.choice([text, 5, None])}]}
        if pick == 9:
            return "just a string"
        if pick == 10:
            return {"content": text}
        return {"role": "user", "content": text}

    bodies: list[Any] = []
    for _ in range(n):
        kind = rng.randrange(12)
        body: Any = {"model": model}
        if kind == 0:
            pass  # no messages at all
        elif kind == 1:
            body["messages"] = []
        elif kind == 2:
            body["messages"] = rng.choice([None, "hello", 5, {"role": "user", "content": "hi"}, [None], [[]]])
        elif kind == 3:
            body["messages"] = [{"role": "user", "content": COMPLEX_PROMPT}, {"role": "user", "content": 5}]
        elif kind == 4:
            body["messages"] = [message()]
            body["max_tokens"] = rng.choice(["ten", -1, 0, 1.5, None, [], {"n": 1}, 10**12, True])
        elif kind == 5:
            body["messages"] = [{"role": "user", "content": rng.choice(texts)}]
            body["tools"] = rng.choice([[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                                        "tools", [5], [{"type": "function"}]])
        elif kind == 6:
            body = rng.choice([[], "body", 5, None, {"model": None, "messages": [{"role": "user", "content": "hi"}]}])
        elif kind == 7:
            body["messages"] = [{"role": "system", "content": rng.choice(texts)}] + [message() for _ in range(rng.randrange(1, 4))]
        else:
            body["messages"] = [message() for _ in range(rng.randrange(1, 5))]
        if isinstance(body, dict) and rng.random() < 0.2:
            body["stream"] = rng.choice([True, "yes", 1])
        bodies.append(body)
    return bodies


async def send_all(gw: Gateway, bodies: list[Any], concurrency: int = 8,
                   causes: collections.Counter[str] | None = None) -> collections.Counter[str]:
    """Status codes of every body; the start of each 500's error message goes to ``causes``."""
    statuses: collections.Counter[str] = collections.Counter()
    queue = list(enumerate(bodies))
    url = f"{gw.base_url}/v1/chat/completions"

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            _, body = queue.pop()
            try:
                r = await client.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"})
                statuses[str(r.status_code)] += 1
                if r.status_code == 500 and causes is not None:
                    try:
                        message = str(r.json()["error"]["message"])
                    except (ValueError, KeyError, TypeError):
                        message = r.text
                    causes[" ".join(message.split())[:110]] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1

    async with httpx.AsyncClient(headers=headers(gw), timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return statuses


def probe_fuzz(n: int) -> list[Row]:
    rng = random.Random(0)
    bodies = fuzz_bodies(rng, n, "gemma4-auto") + fuzz_bodies(rng, n // 2, "gemma4-smart")
    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart, \
            Gateway(fast.api_base, smart.api_base, stratum={}) as gw:
        fast.set_behaviour(tokens=4)
        smart.set_behaviour(tokens=4)
        before = metric0(gw, "stratum_internal_errors_total")
        started = time.perf_counter()
        causes: collections.Counter[str] = collections.Counter()
        statuses = asyncio.run(send_all(gw, bodies, causes=causes))
        elapsed = time.perf_counter() - started
        errors = metric0(gw, "stratum_internal_errors_total") - before
        r = post(gw, complex_body())
        reason = r.headers.get("x-stratum-reason")
    histogram = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    top = "; ".join(f"{n}x `{m.strip()}`" for m, n in causes.most_common(3))
    return [
        (f"fuzz: {n} odd bodies to gemma4-auto + {n // 2} to gemma4-smart ({elapsed:.0f} s)",
         f"stratum_internal_errors_total +{errors:g}; statuses {histogram}"),
        ("fuzz: commonest 500 messages", top or "none"),
        ("fuzz: complex request afterwards",
         f"{r.status_code}, x-stratum-reason: {reason} ({'health unchanged' if reason == 'complex' else 'CHANGED'})"),
    ]


# -- 2. concurrent streams ---------------------------------------------------------------------


async def one_stream(client: httpx.AsyncClient, url: str, prompt: str) -> bool:
    body = {"model": "gemma4-auto", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    try:
        async with client.stream("POST", url, json=body) as r:
            if r.status_code != 200:
                return False
            last = ""
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    last = line.removeprefix("data:").strip()
            return last == "[DONE]"
    except httpx.HTTPError:
        return False


def probe_streams(m: int) -> list[Row]:
    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart, \
            Gateway(fast.api_base, smart.api_base, stratum={"latency": {"sla_ms": 120_000}}) as gw:
        for b in (fast, smart):
            b.set_behaviour(ttft_ms=20, token_interval_ms=20, tokens=10)
        before = decision_buckets(gw)
        url = f"{gw.base_url}/v1/chat/completions"

        async def run() -> list[bool]:
            limits = httpx.Limits(max_connections=m + 10, max_keepalive_connections=m + 10)
            async with httpx.AsyncClient(headers=headers(gw), timeout=120, limits=limits) as client:
                return await asyncio.gather(*(one_stream(client, url, COMPLEX_PROMPT if i % 2 else SIMPLE_PROMPT)
                                              for i in range(m)))

        started = time.perf_counter()
        done = asyncio.run(run())
        elapsed = time.perf_counter() - started
        settle = in_flight_zero_after(gw, ("fast", "smart"))
        after = decision_buckets(gw)
    lost = done.count(False)
    return [
        (f"concurrent streams: {m} at once, half complex ({elapsed:.1f} s)",
         f"lost {lost} (non-200 or no [DONE])"),
        ("concurrent streams: in-flight back to 0 (both tiers)",
         f"yes, {settle:.1f} s after the last stream" if settle is not None else "NO within 30 s"),
        ("concurrent streams: decision p99 (histogram bucket)", quantile_bound(before, after, 0.99)),
    ]


# -- 3. smart backend killed and restarted ------------------------------------------------------


def probe_kill_restart(dead_s: float, recover_cap_s: float) -> list[Row]:
    with LlamaServer(alias="gemma4-fast", slots=2) as fast_srv, LlamaServer(alias="gemma4-smart", slots=2) as smart_srv, \
            Gateway(fast_srv.api_base, smart_srv.api_base, stratum={"latency": {"sla_ms": 120_000}}) as gw:
        before = post(gw, complex_body())
        port = smart_srv.port
        assert smart_srv.process is not None and smart_srv.process.popen is not None
        os.kill(smart_srv.process.popen.pid, signal.SIGKILL)
        killed_at = time.perf_counter()
        seen: dict[str, dict[str, collections.Counter[str]]] = {
            phase: {"status": collections.Counter(), "decision": collections.Counter(), "group": collections.Counter()}
            for phase in ("dead", "restart")}

        def one(phase: str) -> str:
            r = post(gw, complex_body(), timeout=120)
            tier = r.headers.get("x-stratum-tier", "?")
            counts = seen[phase]
            counts["status"][str(r.status_code)] += 1
            # The header is the router's decision; the answering model group shows a fallback.
            counts["decision"][f"{tier}/{r.headers.get('x-stratum-reason', '?')}"] += 1
            counts["group"][str(r.headers.get("x-litellm-model-group", "?"))] += 1
            return tier

        while time.perf_counter() - killed_at < dead_s:
            one("dead")
        # A new llama-server on the port the gateway was given (servers.py picks a free port
        # itself, so the process is spawned here with the same command on the old port).
        again = LlamaServer(alias="gemma4-smart", slots=2)
        again.port = port
        again.process = ManagedProcess(again.command(port), f"{again.base_url}/health", name=again.name,
                                       ready_timeout_s=again.ready_timeout)
        restarted_at = time.perf_counter()
        again.process.start()
        ready_s = time.perf_counter() - restarted_at
        back_s: float | None = None
        try:
            while time.perf_counter() - restarted_at < recover_cap_s:
                if one("restart") == "smart":
                    back_s = time.perf_counter() - restarted_at
                    break
                time.sleep(0.2)
        finally:
            again.stop()

    def show(phase: str) -> str:
        c = seen[phase]
        n = sum(c["status"].values())
        errors = n - c["status"]["200"]
        return (f"{n} complex requests, client-visible errors {errors}; decision {dict(c['decision'])}; "
                f"x-litellm-model-group {dict(c['group'])}")

    return [
        (f"kill smart llama-server (SIGKILL), {dead_s:g} s of traffic while dead",
         f"{show('dead')} (before the kill: tier {before.headers.get('x-stratum-tier')})"),
        ("kill smart llama-server: restarted on the same port",
         show("restart") + "; " + (f"smart again {back_s:.1f} s after the restart began (server ready after {ready_s:.1f} s)"
                                   if back_s is not None else
                                   f"smart NOT again within {recover_cap_s:.0f} s (server ready after {ready_s:.1f} s)")),
    ]


# -- 4. disconnects and client timeouts ---------------------------------------------------------


async def leave_before_first_chunk(client: httpx.AsyncClient, url: str) -> None:
    body = {"model": "gemma4-auto", "stream": True, "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}

    async def read() -> None:
        async with client.stream("POST", url, json=body) as r:
            async for _ in r.aiter_lines():
                pass

    # Cancelled at 100 ms, before the backend's 300 ms first token.
    try:
        await asyncio.wait_for(read(), timeout=0.1)
    except (asyncio.TimeoutError, httpx.HTTPError):
        pass


async def leave_after_first_chunk(client: httpx.AsyncClient, url: str) -> None:
    body = {"model": "gemma4-auto", "stream": True, "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}
    async with client.stream("POST", url, json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                break


async def time_out(client: httpx.AsyncClient, url: str) -> None:
    try:
        await client.post(url, json=complex_body(max_tokens=64), timeout=0.05)
    except httpx.TimeoutException:
        pass


def probe_disconnects(k: int) -> list[Row]:
    rows: list[Row] = []
    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart, \
            Gateway(fast.api_base, smart.api_base, stratum={"latency": {"sla_ms": 120_000}}) as gw:
        smart.set_behaviour(ttft_ms=300, token_interval_ms=200, tokens=10)
        url = f"{gw.base_url}/v1/chat/completions"
        kinds: list[tuple[str, Callable[[httpx.AsyncClient, str], Any]]] = [
            ("disconnect before first chunk", leave_before_first_chunk),
            ("disconnect after first chunk", leave_after_first_chunk),
            ("client timeout 0.05 s", time_out),
        ]
        for name, action in kinds:
            async def run() -> None:
                async with httpx.AsyncClient(headers=headers(gw), timeout=30) as client:
                    await asyncio.gather(*(action(client, url) for _ in range(k)))

            asyncio.run(run())
            settle = in_flight_zero_after(gw, ("smart",), timeout_s=60)
            rows.append((f"{name}: {k} clients (backend ttft 300 ms, 200 ms/token, 10 tokens)",
                         f"smart in-flight back to 0 after {settle:.1f} s" if settle is not None
                         else "smart in-flight NOT back to 0 within 60 s"))
        rows.append(("disconnects: complex request afterwards", f"x-stratum-reason: {post(gw, complex_body()).headers.get('x-stratum-reason')}"))
    return rows


# -- 5. NVML faults ------------------------------------------------------------------------------


def probe_nvml() -> list[Row]:
    gib = 1024**3
    healthy = [nvml_fake.FakeGpu("Test GPU 16GB", total=16 * gib, free=8 * gib, used=8 * gib, util=20)]
    library = nvml_fake.build()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        fake = nvml_fake.FakeNvml(None, Path(tmp) / "nvml.state")  # type: ignore[arg-type]
        fake.set_gpus(healthy)
        env = {"LD_LIBRARY_PATH": str(library.parent), nvml_fake.STATE_ENV: str(fake.state_path)}
        faults: list[tuple[str, Callable[[], None]]] = [
            ("no GPU (device count 0)", lambda: fake.set_gpus([])),
            ("init failure (nvmlInit DRIVER_NOT_LOADED, reads UNINITIALIZED)",
             lambda: (fake.fail("nvmlInitWithFlags", "DRIVER_NOT_LOADED"), fake.fail("nvmlDeviceGetMemoryInfo", "UNINITIALIZED"))),
            ("driver error mid-run (memory info DRIVER_NOT_LOADED)",
             lambda: fake.fail("nvmlDeviceGetMemoryInfo", "DRIVER_NOT_LOADED")),
            ("GPU lost (memory info GPU_IS_LOST)", lambda: fake.fail("nvmlDeviceGetMemoryInfo", "GPU_IS_LOST")),
            ("driver hung (utilisation call blocks)", lambda: fake.hang("nvmlDeviceGetUtilizationRates")),
        ]
        with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart, \
                Gateway(fast.api_base, smart.api_base, stratum={"latency": {"sla_ms": 120_000}}, env=env) as gw:
            # The GPU poller starts with the first routed request, so read before and after one.
            idle = gw.metric("stratum_gpu_known")
            post(gw, complex_body(), timeout=30)
            started = time.perf_counter()
            start_known = wait_until(lambda: gw.metric("stratum_gpu_known") == 1, timeout=15, interval=0.1)
            rows.append(("NVML: healthy fake GPU at start",
                         f"stratum_gpu_known {idle if idle is not None else 'absent'} before any request; "
                         + (f"1 within {time.perf_counter() - started:.1f} s of the first" if start_known
                            else f"{gw.metric('stratum_gpu_known')} 15 s after the first")))
            for name, apply in faults:
                apply()
                time.sleep(1.0)  # the poller runs every 15 ms; give it many rounds
                codes = collections.Counter(post(gw, b, timeout=30).status_code for b in
                                            [complex_body(), {"model": "gemma4-auto", "messages": [{"role": "user", "content": SIMPLE_PROMPT}]}] * 5)
                during = gw.metric("stratum_gpu_known")
                fake.release()
                fake.clear_failures()
                fake.set_gpus(healthy)
                started = time.perf_counter()
                back = wait_until(lambda: gw.metric("stratum_gpu_known") == 1, timeout=30, interval=0.1)
                rows.append((f"NVML fault: {name}",
                             f"10 requests: {dict(codes)}; stratum_gpu_known during {during if during is not None else 'absent'}; "
                             + (f"back to 1 after {time.perf_counter() - started:.1f} s" if back else "NOT back to 1 within 30 s")))
    return rows


# -- 6. Redis paused, killed and restarted ----------------------------------------------------


def redis_config(directory: Path, redis: RedisServer) -> Path:
    """The repository's gateway config with LiteLLM's own Redis (``router_settings``) set to
    ``redis``, as tests/e2e/test_shared_state_e2e.py does."""
    config = yaml.safe_load(CONFIG.read_text())
    config.setdefault("router_settings", {}).update(redis_host=redis.host, redis_port=redis.port)
    path = directory / "litellm_config.redis.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Traffic:
    """Clients sending simple and complex requests in a loop through each gateway, from an
    event loop of their own in a thread; every request is kept as (start, end, gateway,
    kind, outcome, tier), the times on ``time.perf_counter``."""

    def __init__(self, gws: list[Gateway], per_kind: int) -> None:
        self.gws = gws
        self.per_kind = per_kind
        self.log: list[tuple[float, float, int, str, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _client(self, client: httpx.AsyncClient, index: int, kind: str) -> None:
        gw = self.gws[index]
        body = {"model": "gemma4-auto", "max_tokens": 4,
                "messages": [{"role": "user", "content": SIMPLE_PROMPT if kind == "simple" else COMPLEX_PROMPT}]}
        while not self._stop.is_set():
            started = time.perf_counter()
            tier = "?"
            try:
                r = await client.post(f"{gw.base_url}/v1/chat/completions", json=body)
                outcome = str(r.status_code)
                tier = r.headers.get("x-stratum-tier", "none")
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            self.log.append((started, time.perf_counter(), index, kind, outcome, tier))

    async def _run(self) -> None:
        async with httpx.AsyncClient(headers=headers(self.gws[0]), timeout=60) as client:
            await asyncio.gather(*(self._client(client, i, kind) for i in range(len(self.gws))
                                   for kind in ("simple", "complex") for _ in range(self.per_kind)))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=90)

    def started_in(self, t0: float, t1: float) -> list[tuple[float, float, int, str, str, str]]:
        return [r for r in self.log if t0 <= r[0] < t1]

    def overlapping(self, t0: float, t1: float) -> list[tuple[float, float, int, str, str, str]]:
        return [r for r in self.log if r[0] < t1 and r[1] > t0]


def counters(gw: Gateway) -> dict[str, float]:
    """The shared state's counters on one gateway, and the router's internal errors."""
    out = {f"errors{{op={op}}}": metric0(gw, "stratum_shared_state_errors_total", op=op)
           for op in ("connect", "sync", "claim", "recall")}
    out["local_decisions"] = metric0(gw, "stratum_shared_state_local_decisions_total")
    out["internal_errors"] = metric0(gw, "stratum_internal_errors_total")
    return out


def wait_buckets(gw: Gateway) -> dict[float, float]:
    """Cumulative counts of stratum_shared_state_wait_seconds by upper bound."""
    out: dict[float, float] = collections.defaultdict(float)
    for line in gw.gateway_metrics().splitlines():
        if line.startswith("stratum_shared_state_wait_seconds_bucket"):
            head, _, value = line.rpartition(" ")
            le = head.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] += float(value)
    return out


def largest_bucket(before: dict[float, float], after: dict[float, float]) -> str:
    """The bucket holding the longest observation between two reads of a histogram."""
    bounds = sorted(after)
    if not bounds or after[bounds[-1]] - before.get(bounds[-1], 0.0) <= 0:
        return "none recorded"
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    lower = 0.0
    for b in bounds:
        if after[b] - before.get(b, 0.0) >= total:
            return (f"> {lower * 1000:g} ms" if b == float("inf") else f"{lower * 1000:g}-{b * 1000:g} ms") \
                + f" (of {total:g} waits)"
        lower = b
    return "?"


def probe_redis(pause_s: float, dead_s: float, breaker_s: int | None, per_kind: int) -> list[Row]:
    """Two gateways sharing one redis-server under traffic: Redis hung (SIGSTOP) then
    continued, then SIGKILLed and restarted empty on the same port. ``breaker_s`` is
    LiteLLM's REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT (None: its default, 60 s)."""
    env = {} if breaker_s is None else {"REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": str(breaker_s)}
    breaker = "LiteLLM's default breaker, 60 s" if breaker_s is None else f"REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT={breaker_s}"
    cap_s = 30.0 if breaker_s is not None and breaker_s <= 10 else 100.0
    settings = {"latency": {"sla_ms": 120_000}, "tiers": {"smart": {"max_in_flight": 8, "backend": "off"}}}
    budget_ms = parse_settings_budget_ms()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stratum-redis-probe-")))
        redis = stack.enter_context(RedisServer())
        fast = stack.enter_context(StubBackend(name="fast-stub"))
        smart = stack.enter_context(StubBackend(name="smart-stub"))
        for b in (fast, smart):
            b.set_behaviour(ttft_ms=10, token_interval_ms=5, tokens=4)
        config = redis_config(tmp, redis)
        gws = [Gateway(fast.api_base, smart.api_base, stratum=settings, config=config, env=env, wait=False)
               for _ in range(2)]
        for gw in gws:
            stack.enter_context(gw)  # both start at once; wait for both below
        for gw in gws:
            assert gw.process is not None
            gw.process.wait_ready()
        for gw in gws:
            post(gw, complex_body())  # the first request starts each gateway's tick
        if not wait_until(lambda: all(gw.metric("stratum_shared_state_up") == 1 for gw in gws), timeout=20, interval=0.1):
            return [("Redis paused and restarted", "stratum_shared_state_up never read 1 on both gateways: "
                     + ", ".join(str(gw.metric("stratum_shared_state_up")) for gw in gws))]

        def reads(value: int, since: float, cap: float) -> list[float | None]:
            """Seconds since ``since`` until each gateway's stratum_shared_state_up reads ``value``."""
            seen: list[float | None] = [None] * len(gws)
            while time.perf_counter() - since < cap and None in seen:
                for i, gw in enumerate(gws):
                    if seen[i] is None and gw.metric("stratum_shared_state_up") == value:
                        seen[i] = time.perf_counter() - since
                time.sleep(0.05)
            return seen

        traffic = Traffic(gws, per_kind)
        stack.callback(traffic.stop)
        traffic.start()
        time.sleep(1.0)
        warm_waits = [wait_buckets(gw) for gw in gws]
        time.sleep(4.0)  # warm: the baseline latency and Redis waits
        start_counts = [counters(gw) for gw in gws]
        start_waits = [wait_buckets(gw) for gw in gws]
        paused_at = time.perf_counter()
        redis.pause()
        down_pause = reads(0, paused_at, pause_s)
        time.sleep(max(0.0, pause_s - (time.perf_counter() - paused_at)))
        resumed_at = time.perf_counter()
        redis.resume()
        up_resume = reads(1, resumed_at, cap_s)
        mid_counts = [counters(gw) for gw in gws]
        mid_waits = [wait_buckets(gw) for gw in gws]
        time.sleep(2.0)
        killed_at = time.perf_counter()
        redis.kill()
        down_kill = reads(0, killed_at, dead_s)
        time.sleep(max(0.0, dead_s - (time.perf_counter() - killed_at)))
        restarted_at = time.perf_counter()
        redis.restart()  # empty, on the same port
        up_restart = reads(1, restarted_at, cap_s)
        time.sleep(1.0)
        ended_at = time.perf_counter()
        traffic.stop()
        end_counts = [counters(gw) for gw in gws]
        end_waits = [wait_buckets(gw) for gw in gws]

    def secs(values: list[float | None], cap: float) -> str:
        return " and ".join(f"{v:.1f} s" if v is not None else f"not within {cap:.0f} s" for v in values)

    def delta(before: list[dict[str, float]], after: list[dict[str, float]]) -> str:
        parts = []
        for i, (b, a) in enumerate(zip(before, after)):
            d = {k: a[k] - b[k] for k in a}
            parts.append(f"gateway {'AB'[i]}: " + ", ".join(f"{k} +{v:g}" for k, v in d.items() if v or k == "internal_errors"))
        return "; ".join(parts)

    def traffic_in(t0: float, t1: float) -> str:
        rows = traffic.started_in(t0, t1)
        bad = [r for r in rows if r[4] != "200" or r[5] in ("?", "none")]
        tiers = collections.Counter(r[5] for r in rows)
        return f"{len(rows)} requests, client-visible errors {len(bad)}, tiers {dict(sorted(tiers.items()))}"

    before = [r[1] - r[0] for r in traffic.started_in(0.0, paused_at) if r[0] > paused_at - 4.0]
    median_ms = statistics.median(before) * 1000 if before else float("nan")
    hung = traffic.overlapping(paused_at, resumed_at)
    hung_max_ms = max((r[1] - r[0] for r in hung), default=0.0) * 1000
    hung_slow = sum(1 for r in hung if r[1] - r[0] > 1.0)
    hung_median_ms = statistics.median([r[1] - r[0] for r in hung]) * 1000 if hung else float("nan")
    after_hung = traffic.overlapping(resumed_at, resumed_at + (max((v or cap_s) for v in up_resume)))
    after_hung_max_ms = max((r[1] - r[0] for r in after_hung), default=0.0) * 1000
    dead = traffic.overlapping(killed_at, ended_at)
    dead_max_ms = max((r[1] - r[0] for r in dead), default=0.0) * 1000
    all_rows = traffic.log
    all_bad = [r for r in all_rows if r[4] != "200" or r[5] in ("?", "none")]
    outcomes = collections.Counter(r[4] for r in all_bad)
    clients = 2 * 2 * per_kind
    return [
        (f"Redis: traffic ({breaker}; {clients} clients, {per_kind} simple + {per_kind} complex per gateway, "
         f"2 gateways, stub backends)",
         f"{len(all_rows)} requests in {ended_at - traffic.log[0][0]:.0f} s, client-visible errors {len(all_bad)}"
         + (f" ({dict(outcomes)})" if outcomes else "") + f"; median latency before the faults {median_ms:.0f} ms"),
        (f"Redis hung (SIGSTOP {pause_s:g} s, then SIGCONT)",
         f"during the hang: {traffic_in(paused_at, resumed_at)}; requests overlapping it: median {hung_median_ms:.0f} ms, "
         f"longest {hung_max_ms:.0f} ms, {hung_slow} over 1 s (budget_ms {budget_ms:g}); stratum_shared_state_up 0 after {secs(down_pause, pause_s)} (A and B); "
         f"1 again {secs(up_resume, cap_s)} after SIGCONT; from SIGCONT until up: {traffic_in(resumed_at, resumed_at + max((v or cap_s) for v in up_resume))}, "
         f"longest {after_hung_max_ms:.0f} ms"),
        ("Redis hung: counters from the pause until up again",
         delta(start_counts, mid_counts) + "; longest Redis wait of a request (histogram bucket, A and B): "
         + " and ".join(largest_bucket(b, a) for b, a in zip(start_waits, mid_waits)) + "; in the 4 s before the pause "
         + " and ".join(largest_bucket(b, a) for b, a in zip(warm_waits, start_waits))),
        (f"Redis killed (SIGKILL), {dead_s:g} s dead, restarted empty on the same port",
         f"dead: {traffic_in(killed_at, restarted_at)}; restart until up: {traffic_in(restarted_at, ended_at)}; "
         f"longest request {dead_max_ms:.0f} ms; stratum_shared_state_up 0 after {secs(down_kill, dead_s)}; "
         f"1 again {secs(up_restart, cap_s)} after the restart"),
        ("Redis killed: counters from the kill until the end",
         delta(mid_counts, end_counts) + "; longest Redis wait of a request (histogram bucket, A and B): "
         + " and ".join(largest_bucket(b, a) for b, a in zip(mid_waits, end_waits))),
    ]


def parse_settings_budget_ms() -> float:
    from stratum_litellm.config import parse_settings

    return parse_settings(project_stratum_settings()).shared_state.budget_ms



# -- 7. soak ---------------------------------------------------------------------------------


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def probe_soak(s: int) -> list[Row]:
    from stratum_litellm.config import parse_settings
    from stratum_litellm.gateway.engine import RouterEngine

    engine = RouterEngine(parse_settings({"gpu": {"enabled": False}}))
    bound = engine.settings.affinity.max_conversations
    marks: dict[str, tuple[int, int]] = {}
    largest = 0
    started = time.perf_counter()
    for i in range(s):
        engine.route({"model": "gemma4-auto", "litellm_call_id": f"c{i}",
                      "messages": [{"role": "user", "content": f"conversation {i}: what is {i} plus {i * 7}?"}]})
        engine.observe({"litellm_call_id": f"c{i}", "standard_logging_object": {"model_group": "gemma4-fast"}},
                       0.0, 0.1, ok=True)
        if i % 1000 == 0:
            largest = max(largest, len(engine.affinity))
        if i + 1 == max(1, s // 10):
            marks["10%"] = (rss_kib(), len(engine.affinity))
    marks["100%"] = (rss_kib(), len(engine.affinity))
    largest = max(largest, marks["100%"][1])
    elapsed = time.perf_counter() - started
    (r10, n10), (r100, n100) = marks["10%"], marks["100%"]
    return [
        (f"soak: {s} conversations routed in process ({elapsed:.0f} s)",
         f"RSS {r10 / 1024:.1f} MiB at 10% -> {r100 / 1024:.1f} MiB at 100% ({(r100 - r10) / 1024:+.1f} MiB)"),
        ("soak: affinity store size vs max_conversations",
         f"{n10} at 10%, {n100} at 100%, largest seen {largest}; bound {bound} "
         f"({'within' if largest <= bound else 'EXCEEDED'})"),
    ]


# -- 8. hostile patterns by live reload ---------------------------------------------------------


def liveness_while(gw: Gateway, seconds: float, during: Callable[[], Any] | None) -> tuple[float, Any]:
    """Max /health/liveliness latency (ms) while ``during`` runs in this thread, and its result."""
    worst = 0.0
    stop = threading.Event()

    def poll() -> None:
        nonlocal worst
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                t = time.perf_counter()
                client.get(f"{gw.base_url}/health/liveliness")
                worst = max(worst, (time.perf_counter() - t) * 1000)
                time.sleep(0.01)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    started = time.perf_counter()
    time.sleep(0.3)
    result = during() if during else None
    time.sleep(max(0.0, seconds - (time.perf_counter() - started)))
    stop.set()
    thread.join()
    return worst, result


def probe_hostile() -> list[Row]:
    cases = [("(a|aa)+$", "a" * 33 + "!"), (r"(\w+\s?){1,100}$", "word " * 2000 + "!"), (".*.*.*=x", "=" * 5000 + "y")]
    rows: list[Row] = []
    reload = {"interval_s": 0.5}

    def send(gw: Gateway, text: str) -> tuple[float, httpx.Response]:
        t = time.perf_counter()
        r = post(gw, {"model": "gemma4-auto", "max_tokens": 4, "messages": [{"role": "user", "content": text}]})
        return (time.perf_counter() - t) * 1000, r

    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart, \
            Gateway(fast.api_base, smart.api_base, stratum={"reload": reload}) as gw:
        send(gw, SIMPLE_PROMPT)  # the first request of a gateway pays for imports and the GPU poller
        base_worst, _ = liveness_while(gw, 3.0, lambda: [send(gw, SIMPLE_PROMPT) for _ in range(3)])
        rows.append(("hostile patterns: liveness max during 3 plain requests, no rule (baseline)", f"{base_worst:.1f} ms"))
        # The same prompts with no rule: what LiteLLM and the scorer cost on them, before any pattern.
        for _, prompt in cases:
            worst, results = liveness_while(gw, 3.0, lambda: [send(gw, prompt) for _ in range(3)])
            rows.append((f"hostile prompt of {len(prompt)} chars, no rule (control)",
                         f"liveness max {worst:.1f} ms; requests {', '.join(f'{ms:.0f}' for ms, _ in results)} ms"))
        for pattern, prompt in cases:
            before = metric0(gw, "stratum_config_reloads_total", result="ok")
            gw.write_stratum({"rules": [{"name": "hostile", "pattern": pattern, "route": "smart"}], "reload": reload})
            loaded = wait_until(lambda: metric0(gw, "stratum_config_reloads_total", result="ok") > before,
                                timeout=20, interval=0.1)
            if not loaded:
                rows.append((f"hostile pattern `{pattern}`", "reload NOT applied within 20 s (errors "
                             f"{metric0(gw, 'stratum_config_reloads_total', result='error'):g})"))
                continue
            # The first request after a reload is measured on its own (a plain prompt), so
            # what a reload costs is not blamed on the pattern.
            first_worst, (first_ms, _) = liveness_while(gw, 2.0, lambda: send(gw, SIMPLE_PROMPT))
            worst, results = liveness_while(gw, 3.0, lambda: [send(gw, prompt) for _ in range(3)])
            own = ", ".join(f"{ms:.0f}" for ms, _ in results)
            r = results[-1][1]
            rows.append((f"hostile pattern `{pattern}`, 3 requests of {len(prompt)} chars",
                         f"liveness max {worst:.1f} ms ({'under' if worst < 50 else 'OVER'} 50 ms); requests {own} ms, "
                         f"{r.status_code}, tier {r.headers.get('x-stratum-tier')}, reason {r.headers.get('x-stratum-reason')}; "
                         f"first plain request after the reload {first_ms:.0f} ms, liveness max {first_worst:.1f} ms"))
    return rows


# -- main ------------------------------------------------------------------------------------


def guarded(name: str, probe: Callable[[], list[Row]]) -> list[Row]:
    """Run a probe; a probe that cannot run becomes a row saying so, not a crash of the run."""
    started = time.perf_counter()
    try:
        rows = probe()
    except Exception as exc:  # noqa: BLE001 - the table reports it
        rows = [(name, f"FAILED TO RUN: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")]
    print(f"[{name}: {time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fuzz", type=int, default=600, help="odd bodies to gemma4-auto (half as many to gemma4-smart)")
    parser.add_argument("--streams", type=int, default=200, help="concurrent streams")
    parser.add_argument("--disconnects", type=int, default=20, help="clients of each leaving kind")
    parser.add_argument("--soak", type=int, default=20_000, help="conversations routed in process")
    parser.add_argument("--dead-s", type=float, default=5.0, help="seconds of traffic with the smart server dead")
    parser.add_argument("--recover-cap-s", type=float, default=90.0, help="give up waiting for smart after this")
    parser.add_argument("--redis-pause-s", type=float, default=5.0, help="seconds Redis stays SIGSTOPped")
    parser.add_argument("--redis-dead-s", type=float, default=3.0, help="seconds Redis stays dead after SIGKILL")
    parser.add_argument("--redis-clients", type=int, default=2, help="clients of each kind (simple, complex) per gateway")
    parser.add_argument("--redis-breaker-s", default="2,default",
                        help="REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT values to run the Redis probe with, comma-separated "
                             "('default': unset, LiteLLM's 60 s)")
    parser.add_argument("--only", default="", help="comma-separated probe names to run (fuzz,streams,kill,disconnects,nvml,redis,soak,hostile)")
    args = parser.parse_args()

    probes: list[tuple[str, Callable[[], list[Row]]]] = [
        ("fuzz", lambda: probe_fuzz(args.fuzz)),
        ("streams", lambda: probe_streams(args.streams)),
        ("kill", lambda: probe_kill_restart(args.dead_s, args.recover_cap_s)),
        ("disconnects", lambda: probe_disconnects(args.disconnects)),
        ("nvml", probe_nvml),
        ("redis", lambda: [row for b in args.redis_breaker_s.split(",") if b
                           for row in probe_redis(args.redis_pause_s, args.redis_dead_s,
                                                  None if b == "default" else int(b), args.redis_clients)]),
        ("soak", lambda: probe_soak(args.soak)),
        ("hostile", probe_hostile),
    ]
    only = {p for p in args.only.split(",") if p}
    started = time.perf_counter()
    rows: list[Row] = []
    for name, probe in probes:
        if not only or name in only:
            rows += guarded(name, probe)
    print("| probe | figure |")
    print("|---|---|")
    for probe_name, figure in rows:
        print(f"| {probe_name} | {figure.replace('|', '/')} |")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
