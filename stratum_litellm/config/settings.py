"""The router's settings: one typed model, the tiers and every other section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..learning.settings import LearningSettings
from ..routing.patterns import compile_pattern
from .base import RulePosition, Strict, Tier
from .checks import check_judged, check_ladder
from .tiers import BackendPollingSettings, FairnessSettings, TierSettings, default_tiers

class ComplexitySettings(Strict):
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


class GpuSettings(Strict):
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


class LatencySettings(Strict):
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


class AffinitySettings(Strict):
    #: Keep a multi-turn conversation on the tier it reached (up, never down).
    enabled: bool = True
    #: How long a conversation is remembered after its last request.
    ttl_s: float = Field(default=1800.0, gt=0.0, le=7 * 86_400.0)
    #: At most this many conversations are remembered (least recently used go first).
    max_conversations: int = Field(default=10_000, ge=1, le=10_000_000)


class SharedStateSettings(Strict):
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


class ReloadSettings(Strict):
    #: Watch the settings file and apply valid edits without a restart.
    enabled: bool = True
    interval_s: float = Field(default=2.0, ge=0.1, le=3600.0)


class RuleSettings(Strict):
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


class FitSettings(Strict):
    """What the ``fit`` check does with a tier the client picked itself (a forced model
    group, an override) that cannot take the request."""

    #: keep: send it there anyway, as asked (the evidence says why it may fail); move: to
    #: the nearest tier that can take it, up the ladder first (reason context_fit, ...).
    forced: Literal["keep", "move"] = "keep"


class OverrideSettings(Strict):
    """A client may pick the tier of one request itself, if its key is allowed to."""

    #: Request header carrying the tier (fast or smart).
    header: str = Field(default="x-stratum-tier", min_length=1)
    #: Request metadata field carrying the tier.
    metadata_key: str = Field(default="stratum_tier", min_length=1)
    #: Who may override (a key alias, user id or team id listed here); empty: nobody.
    allowed_key_aliases: list[str] = Field(default_factory=list)
    allowed_users: list[str] = Field(default_factory=list)
    allowed_teams: list[str] = Field(default_factory=list)


class PythonRuleSettings(Strict):
    """A rule written in Python: ``callable`` is ``package.module:function``."""

    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    position: RulePosition = "first"


class StratumSettings(Strict):
    #: The model name clients ask for to be routed (listed by the gateway's /v1/models).
    routed_model: str = Field(default="gemma4-auto", min_length=1)
    tiers: dict[Tier, TierSettings] = Field(default_factory=default_tiers)
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
        check_ladder(self)
        names = [r.name for r in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("rule names must be unique")
        for index, rule in enumerate(self.rules):
            if rule.route is not None and rule.route not in self.tiers:
                raise ValueError(f"rules.{index}.route: {rule.route!r} is not a tier (tiers: {', '.join(self.tiers)})")
        if self.fallback_tier is not None and self.fallback_tier not in self.tiers:
            raise ValueError(f"fallback_tier: {self.fallback_tier!r} is not a tier (tiers: {', '.join(self.tiers)})")
        check_judged(self)
        return self

    def model_group(self, tier: Tier) -> str:
        return self.tiers[tier].model_group

    def tier_of_group(self, model_group: str) -> Tier | None:
        for tier, settings in self.tiers.items():
            if settings.model_group == model_group:
                return tier
        return None
