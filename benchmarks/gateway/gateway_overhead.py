"""Gateway overhead of the router: the LiteLLM proxy with the plugin against the same proxy
without it, in front of the same zero-delay backend, requests alternating between the two.

    .venv/bin/python benchmarks/gateway/gateway_overhead.py --requests 300

Both gateways use the repository's litellm_config.yaml; the baseline's copy only drops the
router from ``litellm_settings.callbacks`` (``gemma4-auto`` then resolves through its alias,
as without the plugin). A third gateway replaces the router with a callback that only
rewrites ``gemma4-auto`` to ``gemma4-fast`` (benchmarks/gateway/rewrite_only_callback.py): what
LiteLLM charges for a model rewritten in the pre-call hook, whoever rewrites it. Prints
median and p99 latency per request, streaming and not, and the differences. Absolute times
depend on the machine; the differences are the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
from harness import Report, json_argument  # noqa: E402
from harness.gateways import CONFIG, MASTER_KEY, Gateway, timed_request  # noqa: E402
from servers import StubBackend  # noqa: E402


def baseline_config(directory: Path) -> Path:
    document = yaml.safe_load(CONFIG.read_text())
    document["litellm_settings"]["callbacks"] = [
        c for c in document["litellm_settings"]["callbacks"] if not str(c).startswith("stratum_litellm")
    ]
    path = directory / "baseline_config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def rewrite_only_config(directory: Path) -> Path:
    document = yaml.safe_load(CONFIG.read_text())
    document["litellm_settings"]["callbacks"] = [
        "rewrite_only_callback.proxy_handler" if str(c).startswith("stratum_litellm") else c
        for c in document["litellm_settings"]["callbacks"]
    ]
    path = directory / "rewrite_only_config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def p99(values: list[float]) -> float:
    # Interpolated (statistics.quantiles), not harness.percentile's nearest rank: the figures
    # in benchmarks/README.md were computed this way.
    return statistics.quantiles(values, n=100)[98]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per gateway and mode")
    parser.add_argument("--warmup", type=int, default=20)
    json_argument(parser)
    args = parser.parse_args()
    report = Report(__file__)

    names = ("baseline", "rewrite-only", "plugin")
    with tempfile.TemporaryDirectory() as tmp, StubBackend(name="zero-delay") as backend:
        backend.set_behaviour(ttft_ms=0, token_interval_ms=0, tokens=4)
        configs = {"baseline": baseline_config(Path(tmp)), "rewrite-only": rewrite_only_config(Path(tmp)), "plugin": CONFIG}
        env = {"PYTHONPATH": str(Path(__file__).resolve().parent)}  # rewrite_only_callback
        with contextlib.ExitStack() as stack:
            gateways = {name: stack.enter_context(Gateway(backend.api_base, backend.api_base, config=configs[name], env=env))
                        for name in names}
            urls = {name: f"{gw.base_url}/v1/chat/completions" for name, gw in gateways.items()}
            rows_by_mode = []
            with httpx.Client(headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30) as client:
                for stream in (False, True):
                    for _ in range(args.warmup):
                        for url in urls.values():
                            timed_request(client, url, stream)
                    times: dict[str, list[float]] = {name: [] for name in names}
                    for i in range(args.requests):
                        # Rotate which goes first so drift hits all alike.
                        for name in names[i % 3:] + names[:i % 3]:
                            times[name].append(timed_request(client, urls[name], stream))
                    rows_by_mode.append((stream, times))

    report.header(f"Gateway overhead, {args.requests} requests each, rotating")
    print()
    rows = []
    for stream, times in rows_by_mode:
        b, r, p = (times[n] for n in names)
        mb, mr, mp = statistics.median(b), statistics.median(r), statistics.median(p)
        rows.append(("streaming" if stream else "non-streaming", f"{mb:.2f}", f"{mr:.2f}", f"{mp:.2f}", f"{mp - mb:+.2f}",
                     f"{mp - mr:+.2f}", f"{p99(b):.2f}", f"{p99(p):.2f}", f"{p99(p) - p99(b):+.2f}"))
    report.table(("mode", "baseline median ms", "rewrite-only median ms", "plugin median ms",
                  "plugin - baseline median ms", "plugin - rewrite-only median ms", "baseline p99 ms", "plugin p99 ms",
                  "plugin - baseline p99 ms"), rows)
    report.finish(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
