"""A tier's settings: its model group, where its backend's load is read, its budget (an
overflow tier), its limits, and how the backends are polled; fairness between users."""

from __future__ import annotations

from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from .base import ENV_PREFIX, Strict, environment_value

class BackendSettings(Strict):
    """Where the router reads a tier's own load signals over HTTP (queue, slots, cache,
    model loaded). The only capacity signal when the gateway is not on the GPU host."""

    #: vllm, llamacpp, llama-swap, or auto (detect from what answers).
    kind: Literal["vllm", "llamacpp", "llama-swap", "auto"] = "auto"
    #: Base URL of the server (a trailing /v1 is fine), or ``os.environ/NAME``.
    url: str = Field(min_length=1)
    #: llama-swap: the model ID whose load state /running reports (and warm-up asks for).
    model: str | None = Field(default=None, min_length=1)
    #: Sent as a bearer token, or ``os.environ/NAME``.
    api_key: str | None = None
    #: KV cache use at or above this counts as saturated (vLLM).
    kv_cache_saturation: float = Field(default=0.95, gt=0.0, le=1.0)

    @field_validator("url", "api_key")
    @classmethod
    def _from_environment(cls, value: str | None) -> str | None:
        if value is None:
            return None
        resolved = environment_value(value)
        if resolved is None:
            raise ValueError(f"environment variable {value.removeprefix(ENV_PREFIX)} is not set")
        return resolved

    @field_validator("url")
    @classmethod
    def _server_url(cls, url: str) -> str:
        # Checked as the poller will read it: LiteLLM's api_base usually ends in /v1, the
        # load signals live at the server's root.
        base = url.strip().rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")].rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"backend url must be http(s)://host[:port], e.g. http://127.0.0.1:8080; got {url!r}")
        try:
            parts.port  # noqa: B018  (raises on a port that is not a number in range)
        except ValueError as exc:
            raise ValueError(f"backend url {url!r} is not a valid URL: {exc}") from None
        return url

    @model_validator(mode="after")
    def _llama_swap_names_its_model(self) -> "BackendSettings":
        if self.kind == "llama-swap" and self.model is None:
            raise ValueError(
                "a llama-swap backend needs `model`: the model ID in llama-swap's config, "
                "so that /running can tell whether that model is loaded"
            )
        return self


class BudgetSettings(Strict):
    """What an overflow tier may take: requests and/or spend per rolling hour and day.

    Spend is LiteLLM's own cost of each call (``response_cost``), in US dollars."""

    requests_per_hour: int | None = Field(default=None, ge=0)
    requests_per_day: int | None = Field(default=None, ge=0)
    spend_per_hour_usd: float | None = Field(default=None, ge=0.0)
    spend_per_day_usd: float | None = Field(default=None, ge=0.0)

    @model_validator(mode="after")
    def _some_limit(self) -> "BudgetSettings":
        if all(v is None for v in (self.requests_per_hour, self.requests_per_day,
                                   self.spend_per_hour_usd, self.spend_per_day_usd)):
            raise ValueError("a budget needs at least one of requests_per_hour, requests_per_day, "
                             "spend_per_hour_usd, spend_per_day_usd")
        return self


class LimitSettings(Strict):
    """What a tier's model can take, when the operator knows better than (or in place of)
    its ``model_info`` in LiteLLM's ``model_list`` and its backend; see
    :mod:`stratum_litellm.signals.limits`. A limit left out is learned from those."""

    #: Tokens one request may fill, its input and its answer together (a llama.cpp slot's
    #: context: ``-c`` divided by ``-np``; vLLM's ``--max-model-len``).
    context_tokens: int | None = Field(default=None, ge=1)
    #: Tokens one request's input may have (LiteLLM's ``max_input_tokens``).
    input_tokens: int | None = Field(default=None, ge=1)
    #: It takes images (LiteLLM's ``supports_vision``).
    vision: bool | None = None
    #: It takes audio input (LiteLLM's ``supports_audio_input``).
    audio: bool | None = None
    #: It takes tool definitions and calls tools (LiteLLM's ``supports_function_calling``).
    tools: bool | None = None


class TierSettings(Strict):
    """One rung of the ladder: the LiteLLM model group it is, and where it runs."""

    model_group: str = Field(min_length=1)
    #: The complexity score at or above which a request wants this tier. The first tier
    #: takes everything below the next one's (0); with two local tiers the second's
    #: defaults to ``complexity.threshold``.
    entry_score: float | None = Field(default=None, ge=0.0, le=1.0)
    #: NVML index of the GPU this tier's backend runs on.
    gpu_index: int = Field(default=0, ge=0, le=63)
    #: Routed requests beyond this many in flight go elsewhere on the ladder. None: the
    #: backend's slot count when its load signals report one, else no limit.
    max_in_flight: int | None = Field(default=None, ge=1)
    #: Where the backend's own load signals are read. None: from the model group's
    #: ``api_base`` in the gateway's ``model_list`` (kind detected), see
    #: :mod:`stratum_litellm.config.model_list`; ``off`` (YAML ``off``/``false`` too): not read.
    backend: BackendSettings | Literal["off"] | None = None
    #: Routed requests one user (``fairness.by``) may have in flight here; beyond it their
    #: next request goes elsewhere on the ladder, so one script cannot take every slot.
    max_in_flight_per_user: int | None = Field(default=None, ge=1)
    #: This tier's latency target in milliseconds (None: ``latency.sla_ms``).
    sla_ms: float | None = Field(default=None, gt=0.0, le=3_600_000.0)
    #: An overflow tier (a hosted API, say) takes a request only when the local tier it
    #: wants has no room, and only within its ``budget``.
    overflow: bool = False
    budget: BudgetSettings | None = None
    #: What this tier's model can take (context window, images, audio, tools). None, and
    #: any limit left out: learned from the group's ``model_info`` in ``model_list``, then
    #: from what its backend reports (llama-server ``/props``, vLLM ``/v1/models``); a limit
    #: nobody knows never holds a request off.
    limits: LimitSettings | None = None

    @field_validator("backend", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` as false.
        if value is False or value == "off":
            return "off"
        if value is None or isinstance(value, (Mapping, BackendSettings)):
            return value
        raise ValueError("expected a mapping (kind, url, ...) or off")

    @property
    def polled(self) -> BackendSettings | None:
        """The backend whose load signals are read, if any."""
        return self.backend if isinstance(self.backend, BackendSettings) else None


class BackendPollingSettings(Strict):
    interval_s: float = Field(default=1.0, ge=0.05, le=600.0)
    timeout_s: float = Field(default=0.5, ge=0.01, le=60.0)
    #: A reading older than this counts as unknown.
    stale_after_s: float = Field(default=5.0, ge=0.1, le=3600.0)
    backoff_max_s: float = Field(default=30.0, ge=0.1, le=3600.0)
    #: Send a one-token request to wake the smart model when it is not loaded (llama-swap
    #: unloads idle models; a reload takes about a minute), rate-limited.
    warm_up_cold_smart: bool = False
    #: Requests that name the smart group directly go to the fast tier while the smart
    #: backend is down or loading (off: they go anyway, and LiteLLM's fallback covers them).
    redirect_forced_when_unavailable: bool = False

    @model_validator(mode="after")
    def _backoff_above_interval(self) -> "BackendPollingSettings":
        if self.backoff_max_s < self.interval_s:
            raise ValueError(f"backoff_max_s ({self.backoff_max_s}) must be >= interval_s ({self.interval_s})")
        return self


class FairnessSettings(Strict):
    """Who counts as one user for ``tiers.<tier>.max_in_flight_per_user``."""

    #: ``user``: the request's ``user`` field (Open WebUI can send it), else the gateway
    #: user of the key; ``key``: the API key; ``header:<name>``: a request header, such as
    #: ``header:x-openwebui-user-id``. A request with no such identity is not limited.
    by: str = Field(default="user", pattern=r"^(user|key|header:[A-Za-z0-9_-]{1,64})$")


def default_tiers() -> dict[str, TierSettings]:
    return {
        "fast": TierSettings(model_group="gemma4-fast"),
        "smart": TierSettings(model_group="gemma4-smart"),
    }

