"""Gateway overhead of the router: the LiteLLM proxy with the plugin against the same proxy
without it, in front of the same zero-delay backend, requests alternating between the two.

    .venv/bin/python benchmarks/gateway_overhead.py --requests 300

Both gateways use the repository's litellm_config.yaml; the baseline's copy only drops the
router from ``litellm_settings.callbacks`` (``gemma4-auto`` then resolves through its alias,
as without the plugin). Prints median and p99 latency per request, streaming and not, and
the difference. Absolute times depend on the machine; the difference is the figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from backends import StubBackend  # noqa: E402
from gateway import CONFIG, MASTER_KEY, Gateway  # noqa: E402

PROMPT = "What is the capital of France? Answer in one word."


def baseline_config(directory: Path) -> Path:
    document = yaml.safe_load(CONFIG.read_text())
    document["litellm_settings"]["callbacks"] = [
        c for c in document["litellm_settings"]["callbacks"] if not str(c).startswith("stratum_litellm")
    ]
    path = directory / "baseline_config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def one_request(client: httpx.Client, url: str, stream: bool) -> float:
    body = {"model": "gemma4-auto", "max_tokens": 4, "stream": stream,
            "messages": [{"role": "user", "content": PROMPT}]}
    started = time.perf_counter()
    if stream:
        with client.stream("POST", url, json=body) as r:
            r.raise_for_status()
            for _ in r.iter_bytes():
                pass
    else:
        client.post(url, json=body).raise_for_status()
    return (time.perf_counter() - started) * 1000.0


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per gateway and mode")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, StubBackend(name="zero-delay") as backend:
        backend.set_behaviour(ttft_ms=0, token_interval_ms=0, tokens=4)
        base_cfg = baseline_config(Path(tmp))
        with Gateway(backend.api_base, backend.api_base) as plugin_gw, \
             Gateway(backend.api_base, backend.api_base, config=base_cfg) as base_gw:
            headers = {"Authorization": f"Bearer {MASTER_KEY}"}
            rows = []
            with httpx.Client(headers=headers, timeout=30) as client:
                for stream in (False, True):
                    urls = {"plugin": f"{plugin_gw.base_url}/v1/chat/completions",
                            "baseline": f"{base_gw.base_url}/v1/chat/completions"}
                    for _ in range(args.warmup):
                        for url in urls.values():
                            one_request(client, url, stream)
                    times: dict[str, list[float]] = {"plugin": [], "baseline": []}
                    for i in range(args.requests):
                        # Alternate which goes first so drift hits both alike.
                        order = ("plugin", "baseline") if i % 2 == 0 else ("baseline", "plugin")
                        for name in order:
                            times[name].append(one_request(client, urls[name], stream))
                    rows.append((stream, times))

    print(f"gateway overhead, {args.requests} requests each, alternating (command: "
          f"python benchmarks/gateway_overhead.py --requests {args.requests})\n")
    print("| mode | baseline median ms | plugin median ms | added median ms | baseline p99 ms | plugin p99 ms | added p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for stream, times in rows:
        b, p = times["baseline"], times["plugin"]
        print(f"| {'streaming' if stream else 'non-streaming'} | {statistics.median(b):.2f} | {statistics.median(p):.2f} | "
              f"{statistics.median(p) - statistics.median(b):+.2f} | {p99(b):.2f} | {p99(p):.2f} | {p99(p) - p99(b):+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
