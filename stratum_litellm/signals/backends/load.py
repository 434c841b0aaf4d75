"""One backend as configured (:class:`BackendTarget`) and as last read (:class:`BackendLoad`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..status import Status


@dataclass(frozen=True, slots=True)
class BackendTarget:
    """One tier's backend and how to read it (values are validated by the settings).

    ``url`` is the server's base URL (``http://host:port``); a trailing ``/v1`` (what
    LiteLLM calls ``api_base``) is accepted and dropped. ``model`` is required for
    ``llama-swap`` (the model ID of llama-swap's config, as ``/running`` lists it) and is
    what :meth:`BackendPoller.warm_up` asks for. ``api_key`` is sent as a bearer token
    (llama-server needs it for ``/props``, ``/metrics``, ``/slots`` when started with
    ``--api-key``; llama-swap for ``/running`` when it has ``apiKeys``).
    """

    kind: str  # "vllm" | "llamacpp" | "llama-swap" | "auto" (detected from what answers)
    url: str
    model: str | None = None
    api_key: str | None = None
    kv_cache_saturation: float = 0.95

    def __post_init__(self) -> None:
        # Every path is appended to the bare base URL, so "/v1" and a trailing "/" go.
        url = self.url.strip().rstrip("/")
        if url.endswith("/v1"):
            url = url[: -len("/v1")].rstrip("/")
        object.__setattr__(self, "url", url)


@dataclass(frozen=True, slots=True)
class BackendLoad:
    """One backend as read in one poll; ``None`` always means "could not be read".

    ``status``: ``ok`` (serving), ``loading`` (model loading, or not loaded: llama-swap
    has it unloaded, llama-server or vLLM sleeps), ``down`` (unreachable or erroring;
    ``error`` says why) or ``unknown`` (never polled, stale, or not a backend the poller
    knows). An ``ok`` entry may still carry an ``error`` naming a reading that failed
    (e.g. ``/metrics`` disabled); the matching fields are then ``None``. The model's
    limits (``context_tokens``, ``vision``, ``audio``) come with a reading and go with it:
    a ``down`` or ``unknown`` entry has none.
    """

    kind: str  # "vllm" | "llamacpp" | "llama-swap" ("auto" until detected)
    url: str
    status: Status
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
    #: What the model can take, as the backend says: tokens one request may fill (prompt
    #: and answer: a llama.cpp slot's context, vLLM's ``max_model_len``), and whether it
    #: takes images and audio (llama.cpp's ``modalities``). None: not said, or not read.
    context_tokens: int | None = None
    vision: bool | None = None
    audio: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # "ok" given as text is Status.OK

    @classmethod
    def blank(cls, target: BackendTarget, reason: str) -> BackendLoad:
        """An ``unknown`` entry with no numbers and no limits: the target has not been read yet."""
        return cls(kind=target.kind, url=target.url, status=Status.UNKNOWN, error=reason, requests_running=None,
                   requests_waiting=None, kv_cache_usage=None, slots_total=None, slots_idle=None,
                   model_loaded=None, taken_at=0.0, kv_cache_saturation=target.kv_cache_saturation)

    def unknown(self, reason: str) -> BackendLoad:
        """This entry, no longer trusted: ``unknown`` with the reason, its numbers and the
        model's limits dropped (the server may have restarted with another model)."""
        return replace(self, status=Status.UNKNOWN, error=reason, requests_running=None, requests_waiting=None,
                       kv_cache_usage=None, slots_total=None, slots_idle=None, model_loaded=None,
                       context_tokens=None, vision=None, audio=None)

    @property
    def saturated(self) -> bool | None:
        """Would a new request queue here? ``None`` when there is no evidence either way.

        True if any reading says so (requests waiting, KV cache at or above the target's
        ``kv_cache_saturation``, no idle slot); False only if at least one of those was
        read and none says so; ``None`` when the backend is not ``ok`` or nothing was read.
        """
        if self.status != Status.OK:
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
