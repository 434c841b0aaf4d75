"""The one typed settings model of the router, and how it is loaded and validated.

Operators write the settings in the ``litellm_config.yaml`` their gateway already reads,
under ``callback_settings: stratum:`` (LiteLLM copies ``callback_settings`` to
``litellm.callback_settings`` before it loads any callback, and otherwise leaves the key
alone), or in a file of their own named by the ``STRATUM_CONFIG`` environment variable
(either a whole LiteLLM config or a file holding only the ``stratum`` mapping).

Every key is validated when the file is read: an unknown key, a wrong type or a value out
of range raises :class:`SettingsError` naming the key, the file and what was expected, so
the gateway refuses to start instead of failing at request time.

One module per concern: ``base`` (tier names, the strict model base), ``tiers`` (a tier's
settings), ``settings`` (the whole model), ``checks`` (rules across keys), ``errors``,
``loading`` (files and precedence), ``model_list`` (what LiteLLM's ``model_list`` tells).
"""

from __future__ import annotations

from .base import ENV_PREFIX, TIER_NAME, TIERS, RulePosition, Strict, Tier, environment_value
from .checks import entry_scores, judge_of, judged_pair
from .errors import SettingsError
from .loading import (
    CONFIG_ENV,
    SECTION_PATH,
    extract_section,
    load_settings,
    parse_settings,
    read_document,
    resolve_settings,
    settings_of,
)
from .settings import (
    AffinitySettings,
    ComplexitySettings,
    FitSettings,
    GpuSettings,
    LatencySettings,
    OverrideSettings,
    PythonRuleSettings,
    ReloadSettings,
    RuleSettings,
    SharedStateSettings,
    StratumSettings,
)
from .tiers import (
    BackendPollingSettings,
    BackendSettings,
    BudgetSettings,
    FairnessSettings,
    LimitSettings,
    TierSettings,
)

__all__ = [
    "CONFIG_ENV", "ENV_PREFIX", "SECTION_PATH", "TIERS", "TIER_NAME", "AffinitySettings", "BackendPollingSettings",
    "BackendSettings", "BudgetSettings", "ComplexitySettings", "FairnessSettings", "FitSettings", "GpuSettings",
    "LatencySettings", "LimitSettings", "OverrideSettings", "PythonRuleSettings", "ReloadSettings", "RulePosition",
    "RuleSettings", "SettingsError", "SharedStateSettings", "StratumSettings", "Strict", "Tier", "TierSettings",
    "entry_scores", "environment_value", "extract_section", "judge_of", "judged_pair", "load_settings",
    "parse_settings", "read_document", "resolve_settings", "settings_of",
]
