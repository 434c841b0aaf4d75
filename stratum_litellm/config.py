"""The one typed settings model of the router, and how it is loaded and validated.

Operators write the settings in the ``litellm_config.yaml`` their gateway already reads,
under ``callback_settings: stratum:`` (LiteLLM copies ``callback_settings`` to
``litellm.callback_settings`` before it loads any callback, and otherwise leaves the key
alone), or in a file of their own named by the ``STRATUM_CONFIG`` environment variable
(either a whole LiteLLM config or a file holding only the ``stratum`` mapping).

Every key is validated when the file is read: an unknown key, a wrong type or a value out
of range raises :class:`SettingsError` naming the key, the file and what was expected, so
the gateway refuses to start instead of failing at request time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .learning.settings import LearningSettings

#: A tier's name: the operator's key under ``tiers`` (``fast`` and ``smart`` by default).
Tier = str
#: The tier names of the default two-tier ladder, cheapest first.
TIERS: tuple[Tier, Tier] = ("fast", "smart")
#: Tier names are metric label values and header values: short and plain.
TIER_NAME = r"^[A-Za-z0-9_.-]{1,40}$"

#: Where the router's settings sit inside a LiteLLM config file.
SECTION_PATH: tuple[str, str] = ("callback_settings", "stratum")
#: Environment variable naming a settings file that overrides the gateway config.
CONFIG_ENV = "STRATUM_CONFIG"

RulePosition = Literal["first", "capacity", "last"]


#: LiteLLM's convention for a config value read from the environment: ``os.environ/NAME``.
ENV_PREFIX = "os.environ/"


def environment_value(value: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """``value`` itself, or for ``os.environ/NAME`` that variable (None when it is unset)."""
    if not value.startswith(ENV_PREFIX):
        return value
    return environ.get(value.removeprefix(ENV_PREFIX))


class _Strict(BaseModel):
    # Typos must fail loudly, and "2000" must not silently become 2000.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BackendSettings(_Strict):
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


class BudgetSettings(_Strict):
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


class LimitSettings(_Strict):
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


class TierSettings(_Strict):
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
    #: :mod:`stratum_litellm.model_list`; ``off`` (YAML ``off``/``false`` too): not read.
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


class BackendPollingSettings(_Strict):
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


class FairnessSettings(_Strict):
    """Who counts as one user for ``tiers.<tier>.max_in_flight_per_user``."""

    #: ``user``: the request's ``user`` field (Open WebUI can send it), else the gateway
    #: user of the key; ``key``: the API key; ``header:<name>``: a request header, such as
    #: ``header:x-openwebui-user-id``. A request with no such identity is not limited.
    by: str = Field(default="user", pattern=r"^(user|key|header:[A-Za-z0-9_-]{1,64})$")


def _default_tiers() -> dict[str, TierSettings]:
    return {
        "fast": TierSettings(model_group="gemma4-fast"),
        "smart": TierSettings(model_group="gemma4-smart"),
    }


class ComplexitySettings(_Strict):
    #: Requests scoring at or above this go to the second tier (when capacity allows),
    #: unless that tier sets its own ``entry_score``.
    threshold: float = Field(default=0.65, ge=0.0, le=1.0)
    #: Per-dimension weight overrides for the scorer, e.g. ``{code: 1.2}``.
    weights: dict[str, float] = Field(default_factory=dict)
    #: The scoring profile: ``default`` (shipped), ``handmade`` (the dimensions alone), or a
    #: file written by ``stratum fit --out`` (relative to this settings file's folder).
    profile: str | None = Field(default=None, min_length=1)

    @field_validator("weights")
    @classmethod
    def _finite_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        # Which dimensions exist is the scorer's to say, when the policy is built from these
        # settings (at start, on reload and in `stratum check`).
        for name, value in weights.items():
            if not (value >= 0.0 and value < float("inf")):
                raise ValueError(f"weight of {name!r} must be a finite number >= 0, got {value!r}")
        return weights


class GpuSettings(_Strict):
    #: Poll NVML in a background thread; off means the GPU rules always abstain.
    enabled: bool = True
    poll_interval_ms: float = Field(default=15.0, ge=1.0, le=60_000.0)
    #: A snapshot older than this is treated as unknown (the poller is stuck).
    stale_after_ms: float = Field(default=1000.0, ge=10.0, le=600_000.0)
    #: The smart tier needs at least this much free memory on its GPU.
    min_free_gib: float = Field(default=1.5, ge=0.0, le=1024.0)
    #: Utilisation circuit: opens at ``trip_pct``, closes again at ``reset_pct``.
    utilisation_trip_pct: float = Field(default=90.0, gt=0.0, le=100.0)
    utilisation_reset_pct: float = Field(default=75.0, ge=0.0, lt=100.0)

    @model_validator(mode="after")
    def _reset_below_trip(self) -> "GpuSettings":
        if self.utilisation_reset_pct >= self.utilisation_trip_pct:
            raise ValueError(
                "utilisation_reset_pct must be below utilisation_trip_pct "
                f"(got {self.utilisation_reset_pct} >= {self.utilisation_trip_pct})"
            )
        return self


class LatencySettings(_Strict):
    #: Latency target of the smart tier, in milliseconds.
    sla_ms: float = Field(default=2000.0, gt=0.0, le=3_600_000.0)
    #: Which EMA the SLA is measured on: time to first token, or whole-request time.
    measure: Literal["ttft", "total"] = "ttft"
    #: Weight of the newest sample in the exponential moving average.
    ema_alpha: float = Field(default=0.2, gt=0.0, le=1.0)
    #: Starting value of each EMA before any sample (None: unknown until the first one).
    seed_ms: float | None = Field(default=None, ge=0.0)
    #: A tier held off by the SLA gets one probe request after this long without samples,
    #: so it can come back when it is fast again (no permanent lock-out).
    probe_interval_s: float = Field(default=10.0, gt=0.0, le=3600.0)
    #: This many failures in a row mark a tier unhealthy for ``cooldown_s``.
    failure_threshold: int = Field(default=3, ge=1, le=1000)
    cooldown_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    #: In-flight entries older than this are dropped (a request whose callback never came).
    in_flight_timeout_s: float = Field(default=600.0, gt=0.0, le=86_400.0)


class AffinitySettings(_Strict):
    #: Keep a multi-turn conversation on the tier it reached (up, never down).
    enabled: bool = True
    #: How long a conversation is remembered after its last request.
    ttl_s: float = Field(default=1800.0, gt=0.0, le=7 * 86_400.0)
    #: At most this many conversations are remembered (least recently used go first).
    max_conversations: int = Field(default=10_000, ge=1, le=10_000_000)


class SharedStateSettings(_Strict):
    """State shared by every worker and replica of the gateway, in the Redis LiteLLM
    itself is configured with (``router_settings.redis_host``, ``redis_url``, a Redis
    ``cache``, or ``REDIS_HOST``)."""

    #: auto: shared when the gateway has Redis, local otherwise; required: refuse to start
    #: without Redis; off: every process keeps its own state.
    mode: Literal["auto", "required", "off"] = "auto"
    #: How often each process publishes its share and reads the others' (background).
    sync_interval_s: float = Field(default=0.2, ge=0.02, le=10.0)
    #: The longest one request waits on Redis in all (a claim of a limited tier, a
    #: conversation's tier); past it the request is routed from local state, and after a
    #: few in a row no request waits until a background sync succeeds again.
    budget_ms: float = Field(default=50.0, ge=1.0, le=1000.0)
    #: A process's in-flight share vanishes this long after the process stops renewing it
    #: (it died); also how old the shared view may get before the router goes local.
    lease_ttl_s: float = Field(default=2.0, ge=0.2, le=60.0)
    #: The longest a background sync waits on Redis before it counts as failed.
    sync_timeout_s: float = Field(default=1.0, ge=0.01, le=30.0)
    #: A process just started holds its first requests this long at most for its first
    #: sync, so they see the fleet's counts rather than its own empty ones (no wait once
    #: the first sync has reached Redis or failed; Redis down never holds a request longer).
    start_wait_ms: float = Field(default=500.0, ge=0.0, le=10_000.0)
    #: First part of every key (after LiteLLM's own namespace, if it has one).
    key_prefix: str = Field(default="stratum", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")

    @model_validator(mode="after")
    def _renewed_in_time(self) -> "SharedStateSettings":
        if self.lease_ttl_s < 2 * self.sync_interval_s:
            raise ValueError(
                f"lease_ttl_s must be at least twice sync_interval_s (got {self.lease_ttl_s} < "
                f"2 x {self.sync_interval_s}): a lease must outlive a late renewal")
        return self


class ReloadSettings(_Strict):
    #: Watch the settings file and apply valid edits without a restart.
    enabled: bool = True
    interval_s: float = Field(default=2.0, ge=0.1, le=3600.0)


class RuleSettings(_Strict):
    """A routing rule written in the config: a match, then a tier or a score change."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    position: RulePosition = "first"
    #: What the text matchers read: the last user turn, or the whole conversation.
    scope: Literal["last_user", "conversation"] = "last_user"
    keywords: list[str] = Field(default_factory=list)
    #: Matched by RE2 (linear time): no backreferences or lookaround; \w, \d, \b are ASCII.
    pattern: str | None = Field(default=None, min_length=1, max_length=1000)
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=0)
    users: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)
    key_aliases: list[str] = Field(default_factory=list)
    #: Request metadata fields that must equal these values ("*": present at all).
    metadata: dict[str, str] = Field(default_factory=dict)
    #: Request headers (any case) that must equal these values ("*": present at all).
    headers: dict[str, str] = Field(default_factory=dict)
    #: The action: send to a tier, or add to the complexity score (only one of the two).
    route: Tier | None = Field(default=None, min_length=1)
    score_delta: float | None = Field(default=None, ge=-1.0, le=1.0)

    @model_validator(mode="after")
    def _one_action_and_a_match(self) -> "RuleSettings":
        if self.pattern is not None:
            from .routing.patterns import compile_pattern

            try:
                compile_pattern(self.pattern)
            except ValueError as exc:
                raise ValueError(f"rule {self.name!r}: {exc}") from None
        if (self.route is None) == (self.score_delta is None):
            raise ValueError(f"rule {self.name!r} needs exactly one of 'route' or 'score_delta'")
        if self.score_delta is not None and self.position != "first":
            raise ValueError(f"rule {self.name!r}: 'score_delta' only works at position 'first'")
        has_match = (
            bool(self.keywords or self.users or self.teams or self.key_aliases or self.metadata or self.headers)
            or self.pattern is not None
            or self.min_chars is not None
            or self.max_chars is not None
        )
        if not has_match:
            raise ValueError(f"rule {self.name!r} matches nothing: give keywords, pattern, a length bound, users, teams or key_aliases")
        return self


class FitSettings(_Strict):
    """What the ``fit`` check does with a tier the client picked itself (a forced model
    group, an override) that cannot take the request."""

    #: keep: send it there anyway, as asked (the evidence says why it may fail); move: to
    #: the nearest tier that can take it, up the ladder first (reason context_fit, ...).
    forced: Literal["keep", "move"] = "keep"


class OverrideSettings(_Strict):
    """A client may pick the tier of one request itself, if its key is allowed to."""

    #: Request header carrying the tier (fast or smart).
    header: str = Field(default="x-stratum-tier", min_length=1)
    #: Request metadata field carrying the tier.
    metadata_key: str = Field(default="stratum_tier", min_length=1)
    #: Who may override (a key alias, user id or team id listed here); empty: nobody.
    allowed_key_aliases: list[str] = Field(default_factory=list)
    allowed_users: list[str] = Field(default_factory=list)
    allowed_teams: list[str] = Field(default_factory=list)


class PythonRuleSettings(_Strict):
    """A rule written in Python: ``callable`` is ``package.module:function``."""

    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    position: RulePosition = "first"


class StratumSettings(_Strict):
    #: The model name clients ask for to be routed (listed by the gateway's /v1/models).
    routed_model: str = Field(default="gemma4-auto", min_length=1)
    tiers: dict[Tier, TierSettings] = Field(default_factory=_default_tiers)
    #: The tier a routed request gets when the router itself fails: the one it would
    #: get without the plugin (the alias's target in router_settings.model_group_alias).
    #: None: the first tier.
    fallback_tier: Tier | None = None
    complexity: ComplexitySettings = Field(default_factory=ComplexitySettings)
    gpu: GpuSettings = Field(default_factory=GpuSettings)
    backend_polling: BackendPollingSettings = Field(default_factory=BackendPollingSettings)
    latency: LatencySettings = Field(default_factory=LatencySettings)
    affinity: AffinitySettings = Field(default_factory=AffinitySettings)
    reload: ReloadSettings = Field(default_factory=ReloadSettings)
    rules: list[RuleSettings] = Field(default_factory=list)
    override: OverrideSettings = Field(default_factory=OverrideSettings)
    fit: FitSettings = Field(default_factory=FitSettings)
    fairness: FairnessSettings = Field(default_factory=FairnessSettings)
    python_rules: list[PythonRuleSettings] = Field(default_factory=list)
    shared_state: SharedStateSettings = Field(default_factory=SharedStateSettings)
    #: Labels from the deployment (judged samples, Open WebUI's ratings) and their store.
    learning: LearningSettings = Field(default_factory=LearningSettings)
    #: Add x-stratum-tier / -reason / -score headers to routed responses.
    response_headers: bool = True
    #: "shadow": decide and report every request, but leave its model as the client asked
    #: (the alias's own target serves it), to watch the router before letting it route.
    mode: Literal["route", "shadow"] = "route"

    @model_validator(mode="after")
    def _a_ladder(self) -> "StratumSettings":
        _check_ladder(self)
        names = [r.name for r in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("rule names must be unique")
        for index, rule in enumerate(self.rules):
            if rule.route is not None and rule.route not in self.tiers:
                raise ValueError(f"rules.{index}.route: {rule.route!r} is not a tier (tiers: {', '.join(self.tiers)})")
        if self.fallback_tier is not None and self.fallback_tier not in self.tiers:
            raise ValueError(f"fallback_tier: {self.fallback_tier!r} is not a tier (tiers: {', '.join(self.tiers)})")
        _check_judged(self)
        return self

    def model_group(self, tier: Tier) -> str:
        return self.tiers[tier].model_group

    def tier_of_group(self, model_group: str) -> Tier | None:
        for tier, settings in self.tiers.items():
            if settings.model_group == model_group:
                return tier
        return None

    def ladder(self) -> "Ladder":
        """The tiers as a ladder (computed: callers on the request path keep one)."""
        return Ladder.of(self)


class Ladder:
    """The tiers in order, cheapest first: the local rungs with their entry scores, and
    the overflow tier above them if there is one."""

    __slots__ = ("local", "entry", "overflow", "rank", "floor", "fallback")

    def __init__(self, local: tuple[Tier, ...], entry: tuple[float, ...], overflow: Tier | None,
                 fallback: Tier) -> None:
        #: Local tiers, cheapest first; ``local[0]`` is the floor, never held off.
        self.local = local
        #: Entry score of each local tier (``entry[0]`` is 0).
        self.entry = entry
        self.overflow = overflow
        self.floor = local[0]
        self.fallback = fallback
        #: Position of each tier on the ladder (the overflow tier is the highest).
        self.rank: dict[Tier, int] = {tier: i for i, tier in enumerate(local)}
        if overflow is not None:
            self.rank[overflow] = len(local)

    @classmethod
    def of(cls, settings: "StratumSettings") -> "Ladder":
        local = tuple(t for t, s in settings.tiers.items() if not s.overflow)
        overflow = next((t for t, s in settings.tiers.items() if s.overflow), None)
        return cls(local, _entry_scores(settings, local), overflow, settings.fallback_tier or local[0])

    def wanted(self, score: float) -> Tier:
        """The highest local tier whose entry score ``score`` reaches."""
        entry, local = self.entry, self.local
        index = len(entry) - 1
        while index and score < entry[index]:
            index -= 1
        return local[index]


def _check_judged(settings: StratumSettings) -> None:
    """The judged samples' tiers exist, and the weak one is below the strong one."""
    judged = settings.learning.judged
    local = [t for t, s in settings.tiers.items() if not s.overflow]
    for key in ("weak_tier", "strong_tier"):
        tier = getattr(judged, key)
        if tier is not None and tier not in settings.tiers:
            raise ValueError(f"learning.judged.{key}: {tier!r} is not a tier (tiers: {', '.join(settings.tiers)})")
    for key in ("weak_tier", "strong_tier"):
        tier = getattr(judged, key)
        if tier is not None and settings.tiers[tier].overflow:
            raise ValueError(f"learning.judged.{key}: {tier!r} is the overflow tier; samples compare local tiers")
    weak, strong = judged_pair(settings)
    if local.index(weak) >= local.index(strong):
        raise ValueError(f"learning.judged.weak_tier: {weak!r} must be below strong_tier {strong!r} on the ladder")


def judged_pair(settings: StratumSettings) -> tuple[Tier, Tier]:
    """The tier whose answers are judged and the one they are judged against."""
    judged = settings.learning.judged
    local = [t for t, s in settings.tiers.items() if not s.overflow]
    return judged.weak_tier or local[0], judged.strong_tier or local[1]


def judge_of(settings: StratumSettings) -> tuple[Tier | None, str]:
    """Who judges: (its tier, its model group), the tier None for a model group outside the
    ladder. The top local tier unless ``learning.judged.judge`` names another."""
    named = settings.learning.judged.judge
    if named is None:
        named = [t for t, s in settings.tiers.items() if not s.overflow][-1]
    if named in settings.tiers:
        return named, settings.model_group(named)
    tier = settings.tier_of_group(named)
    return tier, named


def _entry_scores(settings: StratumSettings, local: tuple[Tier, ...]) -> tuple[float, ...]:
    scores = [0.0]
    for tier in local[1:]:
        given = settings.tiers[tier].entry_score
        scores.append(settings.complexity.threshold if given is None else given)
    return tuple(scores)


def _check_ladder(settings: StratumSettings) -> None:
    """Refuse a ladder that cannot work, naming the key."""
    tiers = settings.tiers
    for name in tiers:
        if not re.match(TIER_NAME, name):
            raise ValueError(f"tiers: tier name {name!r} must be 1-40 letters, digits, '_', '.' or '-'")
    local = [t for t, s in tiers.items() if not s.overflow]
    overflow = [t for t, s in tiers.items() if s.overflow]
    if len(local) < 2:
        raise ValueError(f"tiers: the ladder needs at least two local (not overflow) tiers, got {len(local)}"
                         + ("" if tiers else " (tiers is empty)"))
    if len(overflow) > 1:
        raise ValueError(f"tiers: at most one overflow tier, got {', '.join(overflow)}")
    if overflow and list(tiers)[-1] != overflow[0]:
        raise ValueError(f"tiers.{overflow[0]}.overflow: the overflow tier must come last (above every local tier)")
    groups: dict[str, str] = {}
    for name, tier in tiers.items():
        if tier.model_group in groups:
            raise ValueError(f"tiers.{name}.model_group: {tier.model_group!r} is already the model group of tier "
                             f"{groups[tier.model_group]!r}; each tier needs its own")
        groups[tier.model_group] = name
        if tier.overflow:
            if tier.entry_score is not None:
                raise ValueError(f"tiers.{name}.entry_score: an overflow tier takes no traffic by score; remove it")
            if tier.budget is None:
                raise ValueError(f"tiers.{name}.budget: an overflow tier needs a budget "
                                 "(requests_per_hour, requests_per_day, spend_per_hour_usd or spend_per_day_usd)")
        elif tier.budget is not None:
            raise ValueError(f"tiers.{name}.budget: only an overflow tier has a budget (set overflow: true)")
    if settings.routed_model in groups:
        raise ValueError(f"routed_model {settings.routed_model!r} must differ from the tiers' model groups")
    first = tiers[local[0]]
    if first.entry_score not in (None, 0.0):
        raise ValueError(f"tiers.{local[0]}.entry_score: the first tier takes every score below the next "
                         f"tier's; leave it out or set 0 (got {first.entry_score})")
    if len(local) > 2:
        missing = [t for t in local[1:] if tiers[t].entry_score is None]
        if missing:
            raise ValueError(f"tiers.{missing[0]}.entry_score: required when the ladder has more than two local tiers")
    scores = _entry_scores(settings, tuple(local))
    for below, above, low, high in zip(local, local[1:], scores, scores[1:]):
        # complexity.threshold may be 0 (everything to the second tier), as it always could.
        if tiers[above].entry_score is not None and high <= low:
            raise ValueError(f"tiers.{above}.entry_score: entry scores must increase up the ladder "
                             f"({above} {high} <= {below} {low})")


class SettingsError(ValueError):
    """A settings file the router refuses, with every problem spelled out."""


def _is_key(part: Any) -> bool:
    # Where pydantic names the member of a union it tried (``function-after[...,
    # BackendSettings]``), that is not a key of the file.
    return part != "" and not str(part).endswith("BackendSettings]")


def _describe(error: Mapping[str, Any], prefix: str) -> str:
    loc = ".".join(str(p) for p in (prefix, *error["loc"]) if _is_key(p))
    message = str(error["msg"]).removeprefix("Value error, ")
    shown = repr(error.get("input"))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    if error["type"] == "extra_forbidden":
        return f"{loc}: unknown key (check its spelling; see the README's configuration reference)"
    if error["type"] == "missing":
        return f"{loc}: required key is missing"
    if not error["loc"]:  # a check across keys: the message starts with the key it names
        key, sep, rest = message.partition(": ")
        if sep and key.split(".")[0] in StratumSettings.model_fields:
            return f"{loc}.{key}: {rest}"
        return f"{loc}: {message}"
    return f"{loc}: {message} (got {shown})"


def parse_settings(raw: Any, source: str = "<settings>", prefix: str = "stratum") -> StratumSettings:
    """Validate a mapping into settings, or raise :class:`SettingsError` naming each bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{source}: {prefix}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return StratumSettings.model_validate(dict(raw))
    except ValidationError as exc:
        # A mapping given for `backend: BackendSettings | "off"` also fails the "off" member.
        errors = [e for e in exc.errors() if not (e["loc"] and str(e["loc"][-1]).startswith("literal["))]
        problems = "\n  ".join(_describe(e, prefix) for e in errors or exc.errors())
        raise SettingsError(f"invalid stratum settings in {source}:\n  {problems}") from None


def extract_section(document: Any) -> tuple[Any, str]:
    """The stratum mapping of a YAML document and its dotted location.

    A LiteLLM config keeps it under ``callback_settings.stratum``; a standalone file may
    hold it under a top-level ``stratum`` key or be the mapping itself.
    """
    if not isinstance(document, Mapping):
        return document, "(top level)"
    callback_settings = document.get(SECTION_PATH[0])
    if isinstance(callback_settings, Mapping) and SECTION_PATH[1] in callback_settings:
        return callback_settings[SECTION_PATH[1]], ".".join(SECTION_PATH)
    if "stratum" in document:
        return document["stratum"], "stratum"
    litellm_keys = {"model_list", "litellm_settings", "router_settings", "general_settings", "callback_settings", "environment_variables"}
    if litellm_keys & set(document):
        return {}, ".".join(SECTION_PATH)  # a gateway config without our section: defaults
    return document, "(top level)"


def load_settings(path: str | os.PathLike[str]) -> StratumSettings:
    """Read and validate the router settings from a YAML file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read stratum settings file {file}: {exc.strerror or exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{file} is not valid YAML: {exc}") from None
    section, where = extract_section(document)
    return parse_settings(section, source=str(file), prefix=where)


def resolve_settings(
    gateway_config: str | os.PathLike[str] | None = None,
    mapping: Any = None,
    environ: Mapping[str, str] = os.environ,
) -> tuple[StratumSettings, str]:
    """The settings in force and where they came from, in order of precedence: the file
    named by ``STRATUM_CONFIG``; the gateway's own config file; a mapping already parsed
    by the host (``litellm.callback_settings['stratum']``); the defaults."""
    named = environ.get(CONFIG_ENV)
    if named:
        return load_settings(named), named
    if gateway_config is not None and Path(gateway_config).is_file():
        return load_settings(gateway_config), str(gateway_config)
    if mapping is not None:
        source = "litellm.callback_settings"
        return parse_settings(mapping, source=source, prefix=".".join(SECTION_PATH)), source
    return StratumSettings(), "defaults"
