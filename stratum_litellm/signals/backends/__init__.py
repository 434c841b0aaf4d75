"""Backend load signals: what the serving engines say about their own queues, read in the background.

NVML memory barely moves with load (vLLM pre-allocates its KV cache), so the honest answer
to "is this tier busy?" comes from the engines themselves. One daemon thread polls every
tier's backend over HTTP and publishes an immutable mapping ``tier -> BackendLoad``;
:meth:`BackendPoller.snapshot` is a single attribute read (no lock, no I/O), so a routing
decision never waits on a backend.

What is read, per kind (formats checked against the sources named in each reader):

* ``vllm``: ``/health`` (200 = serving; vLLM does not listen before its model is loaded)
  and ``/metrics`` (``vllm:num_requests_running`` / ``vllm:num_requests_waiting`` summed
  over label sets, ``vllm:kv_cache_usage_perc`` or the older ``vllm:gpu_cache_usage_perc``).
* ``llamacpp``: ``/health`` (503 while the model loads; llama-server then answers 503 on
  *every* path), ``/props`` (``total_slots``, ``is_sleeping``) and ``/metrics``
  (``llamacpp:requests_processing``, ``llamacpp:requests_deferred``; needs ``--metrics``).
  ``/slots`` is read only as a fallback, and never while the server sleeps: llama-server
  treats a ``/slots`` read as activity (it wakes a server started with
  ``--sleep-idle-seconds`` and resets its idle timer), whereas ``/health``, ``/props`` and
  ``/metrics`` are answered without waking it. Reading ``/metrics`` does reset llama.cpp's
  two throughput gauges (``*_tokens_seconds`` are averaged "between two scrapes"); the
  counters another Prometheus scrapes are untouched.
* ``llama-swap``: ``/running`` only (``{"running": [{"model": id, "state": "ready", ...}]}``).
  Its ``/upstream/<model>/...`` pass-through is deliberately not used: every proxied request
  starts the model if it is not loaded and restarts its ``ttl`` countdown, so polling through
  it would load the smart model and keep it resident for ever.
* ``auto``: detected from what answers (``/running`` -> llama-swap, ``/metrics`` names,
  ``/props`` -> llama.cpp) and re-detected after an outage.

Unknown is never invented: an unreachable or erroring backend is ``"down"`` with the reason
and no numbers; a reading that could not be taken is ``None``; an entry not refreshed within
``stale_after_s`` comes back ``"unknown"``. Failing targets are retried with per-target
exponential back-off and recover by themselves; each distinct problem is logged once.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ..thread import PollerThread

__all__ = [
    "KINDS",
    "MAX_BODY_BYTES",
    "STATUS_DOWN",
    "STATUS_LOADING",
    "STATUS_OK",
    "STATUS_UNKNOWN",
    "BackendLoad",
    "BackendPoller",
    "BackendTarget",
]

logger = logging.getLogger("stratum_litellm.backends")

STATUS_OK = "ok"
STATUS_LOADING = "loading"
STATUS_DOWN = "down"
STATUS_UNKNOWN = "unknown"

KINDS: tuple[str, ...] = ("vllm", "llamacpp", "llama-swap", "auto")

#: No backend reply is read beyond this many (decoded) bytes: a misconfigured URL pointing
#: at a file server or a log stream must not cost memory.
MAX_BODY_BYTES = 1 << 20

# Bound on remembered error texts per target, so a varying error cannot grow memory.
_MAX_REMEMBERED_ERRORS = 64

_VLLM_RUNNING = "vllm:num_requests_running"
_VLLM_WAITING = "vllm:num_requests_waiting"
_VLLM_KV = "vllm:kv_cache_usage_perc"
_VLLM_KV_OLD = "vllm:gpu_cache_usage_perc"  # vLLM v0 / early v1 name of the same gauge
_VLLM_SLEEP = "vllm:engine_sleep_state"  # {sleep_state="awake"} 0 = sleeping (--enable-sleep-mode)
_LLAMA_PROCESSING = "llamacpp:requests_processing"
_LLAMA_DEFERRED = "llamacpp:requests_deferred"
_LLAMA_KV = "llamacpp:kv_cache_usage_ratio"  # only some llama.cpp releases expose it
_WANTED_METRICS = frozenset(
    {_VLLM_RUNNING, _VLLM_WAITING, _VLLM_KV, _VLLM_KV_OLD, _VLLM_SLEEP, _LLAMA_PROCESSING, _LLAMA_DEFERRED, _LLAMA_KV}
)
# metric name -> one (labels, value) per label set
_Metrics = Mapping[str, list[tuple[Mapping[str, str], float]]]


@dataclass(frozen=True, slots=True)
class BackendTarget:
    """One tier's backend and how to read it.

    ``url`` is the server's base URL (``http://host:port``); a trailing ``/v1`` (what
    LiteLLM calls ``api_base``) is accepted and dropped. ``model`` is required for
    ``llama-swap`` (the model ID of llama-swap's config, as ``/running`` lists it) and is
    what :meth:`BackendPoller.warm_up` asks for. ``api_key`` is sent as a bearer token
    (llama-server needs it for ``/props``, ``/metrics``, ``/slots`` when started with
    ``--api-key``; llama-swap for ``/running`` when it has ``apiKeys``).
    """

    kind: str
    url: str
    model: str | None = None
    api_key: str | None = None
    kv_cache_saturation: float = 0.95

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"backend kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if not isinstance(self.url, str) or not self.url.strip():
            raise ValueError(f"backend url must be a non-empty string like http://127.0.0.1:8080; got {self.url!r}")
        url = self.url.strip().rstrip("/")
        if url.endswith("/v1"):
            url = url[: -len("/v1")].rstrip("/")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"backend url {self.url!r} is not a valid URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"backend url must be http(s)://host[:port]; got {self.url!r}")
        object.__setattr__(self, "url", url)
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ValueError(f"backend model must be a non-empty string or None; got {self.model!r}")
        if self.kind == "llama-swap" and self.model is None:
            raise ValueError(
                "a llama-swap target needs `model`: the model ID in llama-swap's config, "
                "so that /running can tell whether that model is loaded"
            )
        sat = self.kv_cache_saturation
        if isinstance(sat, bool) or not isinstance(sat, (int, float)) or not (math.isfinite(sat) and 0 < sat <= 1):
            raise ValueError(f"kv_cache_saturation must be a number in (0, 1]; got {sat!r}")


@dataclass(frozen=True, slots=True)
class BackendLoad:
    """One backend as read in one poll; ``None`` always means "could not be read".

    ``status``: ``"ok"`` (serving), ``"loading"`` (model loading, or not loaded: llama-swap
    has it unloaded, llama-server sleeps), ``"down"`` (unreachable or erroring; ``error``
    says why) or ``"unknown"`` (never polled, stale, or not a backend this module knows).
    An ``"ok"`` entry may still carry an ``error`` naming a reading that failed
    (e.g. ``/metrics`` disabled); the matching fields are then ``None``.
    """

    kind: str  # "vllm" | "llamacpp" | "llama-swap" ("auto" until detected)
    url: str
    status: str
    error: str | None
    requests_running: int | None
    requests_waiting: int | None
    kv_cache_usage: float | None  # 0..1
    slots_total: int | None
    slots_idle: int | None
    model_loaded: bool | None
    taken_at: float  # clock() when the reading finished; 0.0 if never polled
    #: Copied from the target so that :attr:`saturated` needs nothing else.
    kv_cache_saturation: float = 0.95

    @property
    def saturated(self) -> bool | None:
        """Would a new request queue here? ``None`` when there is no evidence either way.

        True if any reading says so (requests waiting, KV cache at or above the target's
        ``kv_cache_saturation``, no idle slot); False only if at least one of those was
        read and none says so; ``None`` when the backend is not ``"ok"`` or nothing was read.
        """
        if self.status != STATUS_OK:
            return None
        known = False
        if self.requests_waiting is not None:
            if self.requests_waiting > 0:
                return True
            known = True
        if self.kv_cache_usage is not None:
            if self.kv_cache_usage >= self.kv_cache_saturation:
                return True
            known = True
        if self.slots_idle is not None:
            if self.slots_idle <= 0:
                return True
            known = True
        return False if known else None


class _FetchError(Exception):
    """A request failed in a way that says the backend is unreachable or broken."""


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one poll of one target found, before it is stamped into a BackendLoad."""

    status: str
    error: str | None = None
    requests_running: int | None = None
    requests_waiting: int | None = None
    kv_cache_usage: float | None = None
    slots_total: int | None = None
    slots_idle: int | None = None
    model_loaded: bool | None = None


def _asleep_or_serving(asleep: str | None, problems: list[str], **load: Any) -> _Reading:
    """A backend that answered: asleep (``asleep`` says why; its model is not loaded) or serving."""
    if asleep is not None:
        return _Reading(STATUS_LOADING, asleep, model_loaded=False, **load)
    return _Reading(STATUS_OK, "; ".join(problems) or None, model_loaded=True, **load)


@dataclass(slots=True)
class _TargetState:
    """Mutable per-target bookkeeping; touched only under the poll lock (or as noted)."""

    target: BackendTarget
    kind: str  # resolved kind; "auto" until detection succeeds
    next_due: float = 0.0
    failures: int = 0
    logged_errors: set[str] = field(default_factory=set)
    # Set by warm_up() on any thread (one attribute store), consumed by the poller.
    warm_requested: bool = False
    warm_last: float | None = None
    warm_thread: threading.Thread | None = None


class BackendPoller(PollerThread):
    """Polls each tier's backend in the ``stratum-backends`` daemon thread.

    ``targets`` is keyed by tier name (``"fast"``, ``"smart"``). Healthy and loading
    targets are polled every ``interval_s``; a target that is down (or unrecognised) is
    retried after ``interval_s * 2**n`` for its n-th failure in a row, capped at
    ``backoff_max_s``, and back to ``interval_s`` once it answers. Every request has a
    ``timeout_s`` budget and reads at most :data:`MAX_BODY_BYTES`.
    """

    def __init__(
        self,
        targets: Mapping[str, BackendTarget],
        interval_s: float = 1.0,
        timeout_s: float = 0.5,
        stale_after_s: float = 5.0,
        backoff_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        warm_up_min_interval_s: float = 30.0,
        warm_up_timeout_s: float = 300.0,
    ) -> None:
        for label, value in (
            ("interval_s", interval_s),
            ("timeout_s", timeout_s),
            ("stale_after_s", stale_after_s),
            ("backoff_max_s", backoff_max_s),
            ("warm_up_min_interval_s", warm_up_min_interval_s),
            ("warm_up_timeout_s", warm_up_timeout_s),
        ):
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{label} must be a positive number, got {value!r}")
        if backoff_max_s < interval_s:
            raise ValueError(f"backoff_max_s ({backoff_max_s}) must be >= interval_s ({interval_s})")
        for tier, target in targets.items():
            if not isinstance(target, BackendTarget):
                raise TypeError(f"target of tier {tier!r} must be a BackendTarget, got {type(target).__name__}")
        self._interval_s = float(interval_s)
        self._timeout_s = float(timeout_s)
        self._stale_after_s = float(stale_after_s)
        self._backoff_max_s = float(backoff_max_s)
        self._warm_up_min_interval_s = float(warm_up_min_interval_s)
        self._warm_up_timeout_s = float(warm_up_timeout_s)
        self._clock = clock

        self._targets: Mapping[str, BackendTarget] = MappingProxyType(dict(targets))
        self._states = {tier: _TargetState(target, target.kind) for tier, target in targets.items()}
        # Published mapping: replaced wholesale, never mutated, so snapshot() needs no lock.
        self._loads: Mapping[str, BackendLoad] = MappingProxyType(
            {tier: self._blank(target, "not polled yet") for tier, target in targets.items()}
        )
        self._global_errors: set[str] = set()

        # Serialises polls (thread, tests, CLI) and guards _states and the HTTP client.
        self._poll_lock = threading.Lock()
        self._client: httpx.Client | None = None

        super().__init__()
        self._wake = threading.Event()  # cuts the thread's sleep short (warm-up, stop)

    _thread_name = "stratum-backends"

    def _on_stop_requested(self) -> None:
        self._wake.set()

    # -- public API ----------------------------------------------------------
    @property
    def targets(self) -> Mapping[str, BackendTarget]:
        return self._targets

    def stop(self, timeout: float = 2.0) -> None:
        """Stop and join the ``stratum-backends`` thread, then close its HTTP client.
        Warm-ups in flight are left to finish (daemon threads with their own client)."""
        self._stop_thread(timeout)
        if self._poll_lock.acquire(timeout=max(timeout, 0.0)):
            try:
                if self._client is not None:
                    self._client.close()
                    self._client = None
            finally:
                self._poll_lock.release()

    def snapshot(self) -> Mapping[str, BackendLoad]:
        """Latest loads per tier; an ``"ok"``/``"loading"`` entry older than ``stale_after_s``
        comes back ``"unknown"`` with no numbers.

        ``"down"`` entries do not go stale: under back-off they are legitimately old, and
        their reason says more than "stale" would.
        """
        loads = self._loads  # one reference read: atomic, no lock needed
        now = self._clock()
        stale = [
            tier
            for tier, load in loads.items()
            if load.status in (STATUS_OK, STATUS_LOADING) and now - load.taken_at > self._stale_after_s
        ]
        if not stale:
            return loads
        fresh = dict(loads)
        for tier in stale:
            load = loads[tier]
            fresh[tier] = replace(
                load,
                status=STATUS_UNKNOWN,
                error=f"no fresh reading for {now - load.taken_at:.1f}s (poller stalled?)",
                requests_running=None,
                requests_waiting=None,
                kv_cache_usage=None,
                slots_total=None,
                slots_idle=None,
                model_loaded=None,
            )
        return MappingProxyType(fresh)

    def poll_once(self) -> Mapping[str, BackendLoad]:
        """Poll every target now (back-off ignored), publish and return the result.

        Also starts any warm-up asked for since the last poll. Never raises ``Exception``.
        """
        with self._poll_lock:
            for tier in self._states:
                self._poll_tier(tier)
            self._dispatch_warm_ups()
            return self._loads

    def next_poll_in(self, tier: str) -> float:
        """Seconds until the thread polls ``tier`` again (``interval_s`` or its back-off)."""
        return max(0.0, self._states[tier].next_due - self._clock())

    def warm_up(self, tier: str) -> None:
        """Ask for a one-token completion to load a cold model (llama-swap, sleeping llama-server).

        Returns at once on the caller's thread: it only sets a flag. The poller thread (or
        the next :meth:`poll_once`) sends the request from a helper daemon thread, so a
        60 s model load delays neither the caller nor the polling that will see the model
        come up. Rate-limited to one per ``warm_up_min_interval_s`` per tier and never two
        at once; skipped when the latest reading already shows the model loaded, or the
        backend down. An unknown tier is ignored (there is nothing to warm).
        """
        state = self._states.get(tier)
        if state is None:
            return
        state.warm_requested = True
        self._wake.set()

    # -- the thread ----------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            delay = self._interval_s
            try:
                with self._poll_lock:
                    if stop.is_set():
                        return
                    now = self._clock()
                    for tier, state in self._states.items():
                        if state.next_due <= now:
                            self._poll_tier(tier)
                    self._dispatch_warm_ups()
                    if self._states:
                        delay = min(state.next_due for state in self._states.values()) - self._clock()
            except BaseException as exc:  # noqa: BLE001 - the thread must never die
                self._log_once_global(f"backend poller error: {type(exc).__name__}: {exc}")
            self._wake.wait(min(max(delay, 0.0), self._backoff_max_s))
            self._wake.clear()

    # -- polling ---------------------------------------------------------------
    def _http(self) -> httpx.Client:
        # One pooled client, created lazily under the poll lock and closed by stop().
        if self._client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self._timeout_s),
                follow_redirects=True,  # some /metrics mounts redirect to /metrics/
                max_redirects=3,
                headers={"User-Agent": "stratum-litellm-backend-poller"},
            )
        return self._client

    def _poll_tier(self, tier: str) -> None:
        # Called with _poll_lock held.
        state = self._states[tier]
        target = state.target
        try:
            reading = self._read(state)
        except _FetchError as exc:
            reading = _Reading(STATUS_DOWN, str(exc))
        except Exception as exc:  # a bug or a very odd reply: report it, never escape
            reading = _Reading(STATUS_UNKNOWN, f"internal error reading backend: {type(exc).__name__}: {exc}")
        load = BackendLoad(
            kind=state.kind,
            url=target.url,
            status=reading.status,
            error=reading.error,
            requests_running=reading.requests_running,
            requests_waiting=reading.requests_waiting,
            kv_cache_usage=reading.kv_cache_usage,
            slots_total=reading.slots_total,
            slots_idle=reading.slots_idle,
            model_loaded=reading.model_loaded,
            taken_at=self._clock(),
            kv_cache_saturation=target.kv_cache_saturation,
        )
        self._schedule(state, load)
        self._log_transition(tier, state, load)
        loads = dict(self._loads)
        loads[tier] = load
        self._loads = MappingProxyType(loads)  # atomic reference swap

    def _schedule(self, state: _TargetState, load: BackendLoad) -> None:
        if load.status in (STATUS_DOWN, STATUS_UNKNOWN):
            # Capped count: 2.0**n overflows a float after ~1000 failures (hours of outage).
            state.failures = min(state.failures + 1, 64)
            delay = min(self._interval_s * 2.0**state.failures, self._backoff_max_s)
            # After an outage the thing on that port may be another server: detect again.
            state.kind = state.target.kind
        else:
            state.failures = 0
            delay = self._interval_s
        state.next_due = load.taken_at + delay

    def _read(self, state: _TargetState) -> _Reading:
        client = self._http()
        target = state.target
        if state.kind == "auto":
            detected = self._detect(client, target)
            if detected is None:
                return _Reading(
                    STATUS_UNKNOWN,
                    "could not tell what serves here (no llama-swap /running, no vLLM or llama.cpp"
                    " /metrics, no llama.cpp /props); set the backend kind explicitly",
                )
            state.kind = detected
        if state.kind == "vllm":
            return self._read_vllm(client, target)
        if state.kind == "llamacpp":
            return self._read_llamacpp(client, target)
        return self._read_llama_swap(client, target)

    def _get(self, client: httpx.Client, target: BackendTarget, path: str) -> _Reply:
        """GET with a whole-request deadline and a body cap; transport trouble -> _FetchError."""
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else None
        # The per-phase timeout does not bound a server that trickles bytes; this does.
        deadline = time.monotonic() + 2.0 * self._timeout_s
        try:
            with client.stream("GET", target.url + path, headers=headers) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise _FetchError(f"GET {path}: reply larger than {MAX_BODY_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise _FetchError(f"GET {path}: reply too slow (over {2.0 * self._timeout_s:.1f}s)")
                    chunks.append(chunk)
                return _Reply(response.status_code, b"".join(chunks))
        except httpx.TimeoutException:
            raise _FetchError(f"GET {path}: timed out after {self._timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise _FetchError(f"GET {path}: {type(exc).__name__}: {exc}") from None

    def _optional(
        self, client: httpx.Client, target: BackendTarget, path: str, problems: list[str], hint: str = ""
    ) -> _Reply | None:
        """A secondary reading: its failure is noted in ``problems``, not a reason for "down"."""
        try:
            reply = self._get(client, target, path)
        except _FetchError as exc:
            problems.append(str(exc))
            return None
        if reply.status != 200:
            extra = ""
            if reply.status in (404, 501) and hint:
                extra = f" ({hint})"
            elif reply.status in (401, 403):
                extra = " (check the target's api_key)"
            problems.append(f"GET {path}: HTTP {reply.status}{extra}")
            return None
        return reply

    def _optional_metrics(
        self, client: httpx.Client, target: BackendTarget, problems: list[str], hint: str
    ) -> _Metrics | None:
        reply = self._optional(client, target, "/metrics", problems, hint)
        if reply is None:
            return None
        try:
            return _parse_metrics(reply.text())
        except Exception as exc:  # the parser raises more than ValueError on odd input
            problems.append(f"GET /metrics: not Prometheus text ({type(exc).__name__}: {exc})")
            return None

    def _optional_json(
        self, client: httpx.Client, target: BackendTarget, path: str, problems: list[str], hint: str = ""
    ) -> Any:
        reply = self._optional(client, target, path, problems, hint)
        if reply is None:
            return None
        try:
            return reply.json()
        except ValueError:
            problems.append(f"GET {path}: reply is not JSON")
            return None

    # -- vLLM ------------------------------------------------------------------
    def _read_vllm(self, client: httpx.Client, target: BackendTarget) -> _Reading:
        # vllm/entrypoints/openai/api_server.py: /health is 200 while the engine is alive
        # and an error once it is dead; before the model is loaded nothing listens at all.
        health = self._get(client, target, "/health")
        if health.status != 200:
            raise _FetchError(f"GET /health: HTTP {health.status}")
        problems: list[str] = []
        metrics = self._optional_metrics(client, target, problems, "vLLM serves /metrics unless disabled")
        running = waiting = None
        kv = None
        if metrics is not None:
            running = _count(metrics, _VLLM_RUNNING)
            waiting = _count(metrics, _VLLM_WAITING)
            # Several engines (data parallel) each report one value: take the fullest.
            kv = _fraction(metrics, _VLLM_KV)
            if kv is None:
                kv = _fraction(metrics, _VLLM_KV_OLD)
            missing = [name for name, value in ((_VLLM_RUNNING, running), (_VLLM_WAITING, waiting)) if value is None]
            if missing:
                problems.append(f"GET /metrics: no {', '.join(missing)}")
            # Sleep mode (weights offloaded) is vLLM's "not loaded": a completion fails
            # until someone POSTs /wake_up, so routing there would only buy errors.
            if any(labels.get("sleep_state") == "awake" and value == 0 for labels, value in metrics.get(_VLLM_SLEEP, ())):
                return _asleep_or_serving(
                    "vLLM engine is sleeping (weights offloaded; POST /wake_up wakes it)", problems,
                    requests_running=running, requests_waiting=waiting, kv_cache_usage=kv,
                )
        return _asleep_or_serving(None, problems, requests_running=running, requests_waiting=waiting, kv_cache_usage=kv)

    # -- llama.cpp -------------------------------------------------------------
    def _read_llamacpp(self, client: httpx.Client, target: BackendTarget) -> _Reading:
        # tools/server/server-http.cpp: until the model is loaded every path, /health too,
        # answers 503 {"error": {"message": "Loading model", ...}}.
        health = self._get(client, target, "/health")
        if health.status == 503:
            return _Reading(STATUS_LOADING, "llama-server is loading its model (/health 503)", model_loaded=False)
        if health.status != 200:
            raise _FetchError(f"GET /health: HTTP {health.status}")

        problems: list[str] = []
        total: int | None = None
        sleeping: bool | None = None
        # /props also says which endpoints are enabled: skip requests bound to fail.
        has_metrics: bool | None = None
        has_slots: bool | None = None
        props = self._optional_json(client, target, "/props", problems)
        if isinstance(props, dict):
            total = _non_negative_int(props.get("total_slots"))
            if isinstance(props.get("is_sleeping"), bool):
                sleeping = props["is_sleeping"]
            if isinstance(props.get("endpoint_metrics"), bool):
                has_metrics = props["endpoint_metrics"]
            if isinstance(props.get("endpoint_slots"), bool):
                has_slots = props["endpoint_slots"]

        running = waiting = None
        kv = None
        metrics = None
        if has_metrics is False:
            problems.append("llama-server runs without --metrics: requests_waiting is unknown")
        else:
            metrics = self._optional_metrics(client, target, problems, "start llama-server with --metrics")
        if metrics is not None:
            running = _count(metrics, _LLAMA_PROCESSING)
            waiting = _count(metrics, _LLAMA_DEFERRED)
            kv = _fraction(metrics, _LLAMA_KV)

        idle: int | None = None
        # /slots only when /metrics or /props left a gap, and never on a sleeping server:
        # a /slots read wakes it (reloads the model) and restarts its idle countdown.
        if (running is None or total is None) and sleeping is not True and has_slots is not False:
            slots = self._optional_json(client, target, "/slots", problems, "start llama-server with --slots")
            counted = _count_slots(slots)
            if counted is not None:
                slot_total, slot_idle = counted
                idle = slot_idle
                if total is None:
                    total = slot_total
                if running is None:
                    running = slot_total - slot_idle
            elif slots is not None:
                problems.append("GET /slots: unexpected shape (want a list of slots with is_processing)")
        if idle is None and total is not None and running is not None:
            idle = max(total - running, 0)

        return _asleep_or_serving(
            "llama-server is sleeping (model unloaded after idling; the next request reloads it)" if sleeping else None,
            problems, requests_running=running, requests_waiting=waiting, kv_cache_usage=kv, slots_total=total,
            slots_idle=idle,
        )

    # -- llama-swap ------------------------------------------------------------
    def _read_llama_swap(self, client: httpx.Client, target: BackendTarget) -> _Reading:
        # proxy/proxymanager.go listRunningProcessesHandler: {"running": [{"model": id,
        # "state": "ready", ...}]}; current releases list only ready processes, early ones
        # listed starting/stopping ones too, with their state.
        reply = self._get(client, target, "/running")
        if reply.status != 200:
            hint = " (check the target's api_key)" if reply.status in (401, 403) else ""
            raise _FetchError(f"GET /running: HTTP {reply.status}{hint}")
        try:
            body = reply.json()
        except ValueError:
            raise _FetchError("GET /running: reply is not JSON (is this llama-swap?)") from None
        entries = body.get("running") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise _FetchError("GET /running: reply has no 'running' list (is this llama-swap?)")
        model = target.model
        if model is None:  # only reachable through kind "auto"
            return _Reading(STATUS_OK, "no model set for this llama-swap target; cannot tell if it is loaded")
        match = next((e for e in entries if isinstance(e, dict) and e.get("model") == model), None)
        if match is None:
            return _Reading(
                STATUS_LOADING,
                f"model {model!r} is not loaded in llama-swap (the next request loads it)",
                model_loaded=False,
            )
        state = match.get("state", "ready")  # listed without a state: only ready ones are listed
        if state != "ready":
            return _Reading(STATUS_LOADING, f"model {model!r} is {state!s:.40} in llama-swap", model_loaded=False)
        return _Reading(STATUS_OK, None, model_loaded=True)

    # -- detection ---------------------------------------------------------------
    def _detect(self, client: httpx.Client, target: BackendTarget) -> str | None:
        # A transport error here propagates: nothing answers, the target is down.
        running = self._get(client, target, "/running")
        if running.status == 503 and b"Loading model" in running.body:
            return "llamacpp"  # llama-server answers 503 on every path while it loads
        if running.status == 200:
            try:
                body = running.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("running"), list):
                return "llama-swap"
        metrics = self._get(client, target, "/metrics")
        if metrics.status == 200:
            text = metrics.text()
            if "vllm:" in text:
                return "vllm"
            if "llamacpp:" in text:
                return "llamacpp"
        props = self._get(client, target, "/props")
        if props.status == 200:
            try:
                body = props.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and ("total_slots" in body or "default_generation_settings" in body):
                return "llamacpp"
        return None

    # -- warm-up -----------------------------------------------------------------
    def _dispatch_warm_ups(self) -> None:
        # Called with _poll_lock held, on the poller thread or in poll_once().
        for tier, state in self._states.items():
            if not state.warm_requested:
                continue
            state.warm_requested = False
            if state.warm_thread is not None and state.warm_thread.is_alive():
                continue
            now = self._clock()
            if state.warm_last is not None and now - state.warm_last < self._warm_up_min_interval_s:
                continue
            load = self._loads.get(tier)
            if load is not None and load.status == STATUS_DOWN:
                continue  # nothing listens; a request would only fail
            if load is not None and load.status == STATUS_OK and load.model_loaded is True:
                continue  # already warm
            if state.kind == "vllm":
                continue  # loaded whenever it listens; a sleeping engine needs /wake_up, not a request
            state.warm_last = now
            state.warm_thread = threading.Thread(
                target=self._warm, args=(tier, state.target), name="stratum-warmup", daemon=True
            )
            state.warm_thread.start()

    def _warm(self, tier: str, target: BackendTarget) -> None:
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 1,
            "stream": False,
        }
        if target.model is not None:
            body["model"] = target.model
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else None
        started = time.monotonic()
        # The reply only comes once the model is loaded: a long read timeout, on purpose.
        timeout = httpx.Timeout(self._warm_up_timeout_s, connect=self._timeout_s)
        try:
            with httpx.Client(timeout=timeout) as client:
                response = client.post(f"{target.url}/v1/chat/completions", json=body, headers=headers)
            if response.status_code == 200:
                logger.info("warm-up of tier %s (%s) done in %.1fs", tier, target.url, time.monotonic() - started)
            else:
                logger.warning("warm-up of tier %s (%s) got HTTP %d", tier, target.url, response.status_code)
        except httpx.HTTPError as exc:
            logger.warning("warm-up of tier %s (%s) failed: %s: %s", tier, target.url, type(exc).__name__, exc)
        except Exception:  # noqa: BLE001 - a helper thread must not die noisily
            logger.exception("warm-up of tier %s failed", tier)
        finally:
            # Poll this tier again soon so the loaded model shows up without waiting a cycle
            # (a lone float store; the poller thread only ever moves it forward).
            self._states[tier].next_due = 0.0
            self._wake.set()

    # -- helpers -----------------------------------------------------------------
    def _blank(self, target: BackendTarget, reason: str) -> BackendLoad:
        return BackendLoad(
            kind=target.kind,
            url=target.url,
            status=STATUS_UNKNOWN,
            error=reason,
            requests_running=None,
            requests_waiting=None,
            kv_cache_usage=None,
            slots_total=None,
            slots_idle=None,
            model_loaded=None,
            taken_at=0.0,
            kv_cache_saturation=target.kv_cache_saturation,
        )

    def _log_transition(self, tier: str, state: _TargetState, load: BackendLoad) -> None:
        # Once per distinct reason per episode, not once per poll.
        if load.error is None:
            if state.logged_errors:
                state.logged_errors.clear()
                logger.info("backend of tier %s (%s) is %s again", tier, load.url, load.status)
            return
        if load.error in state.logged_errors or len(state.logged_errors) >= _MAX_REMEMBERED_ERRORS:
            return
        state.logged_errors.add(load.error)
        if load.status == STATUS_LOADING:
            logger.info("backend of tier %s (%s) not ready: %s", tier, load.url, load.error)
        elif load.status == STATUS_OK:
            logger.warning("backend of tier %s (%s) partly readable: %s", tier, load.url, load.error)
        else:
            logger.warning(
                "backend of tier %s (%s) is %s: %s (retrying with back-off)", tier, load.url, load.status, load.error
            )

    def _log_once_global(self, message: str) -> None:
        if message not in self._global_errors and len(self._global_errors) < _MAX_REMEMBERED_ERRORS:
            self._global_errors.add(message)
            logger.error(message)


def _parse_metrics(text: str) -> _Metrics:
    """Values of the metrics this module reads, one per label set; other metrics are skipped.

    Only the wanted families are handed to the Prometheus parser: cheaper on vLLM's large
    histogram output, and a malformed line elsewhere cannot spoil the reading.
    """
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            parts = stripped.split(None, 3)
            name = parts[2] if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") else ""
        else:
            name = stripped.split("{", 1)[0].split(None, 1)[0]
        if name in _WANTED_METRICS:
            kept.append(stripped)
    samples: dict[str, list[tuple[Mapping[str, str], float]]] = {}
    if not kept:
        return samples
    for family in text_string_to_metric_families("\n".join(kept) + "\n"):
        for sample in family.samples:
            if sample.name in _WANTED_METRICS:
                value = float(sample.value)
                if math.isfinite(value):
                    samples.setdefault(sample.name, []).append((sample.labels, value))
    return samples


def _count(metrics: _Metrics, name: str) -> int | None:
    """Sum over label sets (engines), as a count; None if absent or nonsensical (< 0)."""
    values = [value for _, value in metrics.get(name, ())]
    if not values:
        return None
    total = sum(values)
    if total < 0:
        return None
    return int(round(total))


def _fraction(metrics: _Metrics, name: str) -> float | None:
    """The highest 0..1 value over label sets; values outside 0..1 are not trusted."""
    values = [value for _, value in metrics.get(name, ()) if 0.0 <= value <= 1.0]
    return max(values) if values else None


def _non_negative_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _count_slots(slots: Any) -> tuple[int, int] | None:
    """(total, idle) from llama-server's /slots list; None unless every slot says is_processing."""
    if not isinstance(slots, list) or not slots:
        return None
    idle = 0
    for slot in slots:
        if not isinstance(slot, dict) or not isinstance(slot.get("is_processing"), bool):
            return None
        if not slot["is_processing"]:
            idle += 1
    return len(slots), idle
