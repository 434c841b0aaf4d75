"""Real LiteLLM gateways and a Redis for the benchmarks that need them: the test suite's
support (``tests/support``: ``Gateway``, ``StubBackend``, ``RedisServer``...) on
``sys.path``, gateways started side by side, the config with LiteLLM's Redis settings, and
Redis's command counts."""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from harness import ROOT

for _path in (ROOT / "tests", ROOT / "tests" / "support"):  # support first: its gateway.py
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from gateway import CONFIG, MASTER_KEY, Gateway  # noqa: E402
from redis_server import RedisServer  # noqa: E402

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


@contextlib.contextmanager
def started(gateways: dict[str, Gateway]) -> Iterator[dict[str, Gateway]]:
    """Start the gateways side by side (each takes ~10 s to import LiteLLM; made with
    ``wait=False``), wait until every one is ready, stop them all at the end."""
    with contextlib.ExitStack() as stack:
        for gw in gateways.values():
            stack.callback(gw.close)
            gw.start()
        for gw in gateways.values():
            assert gw.process is not None
            gw.process.wait_ready()
        yield gateways


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` laid over it, dictionaries merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def redis_config(directory: Path, redis_url: str) -> Path:
    """The repository's gateway config with LiteLLM's own Redis settings added."""
    config = yaml.safe_load(CONFIG.read_text())
    host, port = redis_url.removeprefix("redis://").split(":")
    config.setdefault("router_settings", {}).update(redis_host=host, redis_port=int(port))
    path = directory / "litellm_config.redis.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def redis_commands(server: RedisServer) -> Counter[str]:
    """Commands Redis has run so far, by name (``INFO commandstats``, less INFO and CONFIG)."""
    with server.client(socket_timeout=5) as c:
        stats = c.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()
                    if not k.startswith(("cmdstat_info", "cmdstat_config"))})


#: The one-turn prompt of the gateway latency benchmarks (it scores simple).
PROMPT = "What is the capital of France? Answer in one word."


def timed_request(client: Any, url: str, stream: bool, prompt: str = PROMPT) -> float:
    """Milliseconds for one chat completion of ``prompt`` to ``gemma4-auto`` on ``url``
    through the ``httpx.Client``, to its last byte when streaming."""
    body = {"model": "gemma4-auto", "max_tokens": 4, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}
    began = time.perf_counter()
    if stream:
        with client.stream("POST", url, json=body) as r:
            r.raise_for_status()
            for _ in r.iter_bytes():
                pass
    else:
        client.post(url, json=body).raise_for_status()
    return (time.perf_counter() - began) * 1000.0
