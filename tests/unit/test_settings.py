"""Settings: defaults, and every bad value refused with the key, the file and the expectation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings as hsettings, strategies as st

from stratum_litellm.routing.ladder import Ladder
from stratum_litellm.config import (
    SettingsError,
    StratumSettings,
    load_settings,
    parse_settings,
    resolve_settings,
)

REPO = Path(__file__).resolve().parents[2]


def write_gateway_config(tmp_path: Path, stratum: object) -> Path:
    document = yaml.safe_load((REPO / "litellm_config.yaml").read_text())
    document["callback_settings"]["stratum"] = stratum
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_defaults_are_the_documented_ones() -> None:
    s = StratumSettings()
    assert s.routed_model == "gemma4-auto"
    assert s.model_group("fast") == "gemma4-fast" and s.model_group("smart") == "gemma4-smart"
    assert s.complexity.threshold == 0.65
    assert s.gpu.min_free_gib == 1.5
    assert s.gpu.poll_interval_ms == 15
    assert s.gpu.utilisation_trip_pct == 90
    assert s.latency.sla_ms == 2000
    assert s.latency.measure == "ttft"
    assert s.latency.ema_alpha == 0.2
    assert s.fallback_tier is None and Ladder.of(s).fallback == "fast"  # the first tier


def test_the_repository_config_is_valid_and_matches_its_model_list() -> None:
    s = load_settings(REPO / "litellm_config.yaml")
    document = yaml.safe_load((REPO / "litellm_config.yaml").read_text())
    groups = {m["model_name"] for m in document["model_list"]}
    assert {s.model_group("fast"), s.model_group("smart")} == groups
    assert document["router_settings"]["model_group_alias"][s.routed_model] == s.model_group(Ladder.of(s).fallback)
    assert "stratum_litellm.proxy_handler" in document["litellm_settings"]["callbacks"]


@pytest.mark.parametrize(
    ("stratum", "key", "expected"),
    [
        ({"complexity": {"threshold": 1.5}}, "callback_settings.stratum.complexity.threshold", "less than or equal to 1"),
        ({"complexity": {"threshold": "high"}}, "callback_settings.stratum.complexity.threshold", "valid number"),
        ({"latency": {"sla_ms": "2000"}}, "callback_settings.stratum.latency.sla_ms", "valid number"),
        ({"latency": {"sla_msec": 100}}, "callback_settings.stratum.latency.sla_msec", "unknown key"),
        ({"latency": {"measure": "p95"}}, "callback_settings.stratum.latency.measure", "'ttft' or 'total'"),
        ({"gpu": {"utilisation_trip_pct": 80, "utilisation_reset_pct": 85}}, "callback_settings.stratum.gpu", "below"),
        ({"complexity": {"weights": {"math": -1.0}}}, "callback_settings.stratum.complexity.weights", "finite number >= 0"),
        ({"tiers": {"fast": {"model_group": "a"}, "smart": {"model_group": "b", "backend": {"url": "ftp://x"}}}},
         "callback_settings.stratum.tiers.smart.backend.url", "http(s)://host[:port]"),
        ({"tiers": {"fast": {"model_group": "a"}, "smart": {"model_group": "b", "backend": {"url": "http://h:99999"}}}},
         "callback_settings.stratum.tiers.smart.backend.url", "not a valid URL"),
        ({"tiers": {"fast": {"model_group": "a"}, "smart": {"model_group": "b", "backend": {"url": "http://h", "kind": "llama-swap"}}}},
         "callback_settings.stratum.tiers.smart.backend", "needs `model`"),
        ({"backend_polling": {"interval_s": 5, "backoff_max_s": 1}}, "callback_settings.stratum.backend_polling", "must be >= interval_s"),
        ({"tiers": {"fast": {"model_group": "a"}, "smart": {"model_group": "b", "backend": {"url": "http://h", "kind": "tgi"}}}},
         "callback_settings.stratum.tiers.smart.backend.kind", "'vllm', 'llamacpp', 'llama-swap' or 'auto'"),
        ({"tiers": {"fast": {"model_group": "a"}, "smart": {"model_group": "b", "backend": {"url": "  "}}}},
         "callback_settings.stratum.tiers.smart.backend.url", "http(s)://host[:port]"),
        ({"tiers": {"fast": {"model_group": "a"}, "smart": {"model_group": "b", "backend": {"url": "http://h", "model": ""}}}},
         "callback_settings.stratum.tiers.smart.backend.model", "at least 1 character"),
        ({"tiers": {"fast": {"model_group": "a"}, "smart": {"model_group": "b", "backend": {"url": "http://h", "kv_cache_saturation": 0}}}},
         "callback_settings.stratum.tiers.smart.backend.kv_cache_saturation", "greater than 0"),
        ({"tiers": {"fast": {"model_group": "a"}, "smart": {"model_group": "b", "backend": {"url": "http://h", "kv_cache_saturation": 1.5}}}},
         "callback_settings.stratum.tiers.smart.backend.kv_cache_saturation", "less than or equal to 1"),
        ({"backend_polling": {"interval_s": 0}}, "callback_settings.stratum.backend_polling.interval_s", "greater than or equal to 0.05"),
        ({"gpu": {"poll_interval_ms": 0}}, "callback_settings.stratum.gpu.poll_interval_ms", "greater than or equal to 1"),
        ({"gpu": {"utilisation_trip_pct": float("nan")}}, "callback_settings.stratum.gpu.utilisation_trip_pct", "less than or equal to 100"),
        ({"tiers": {"fast": {"model_group": "a"}}}, "callback_settings.stratum", "at least two local (not overflow) tiers, got 1"),
        ({"rules": [{"name": "r", "pattern": "(unclosed", "route": "smart"}]}, "callback_settings.stratum.rules.0", "rule 'r': pattern '(unclosed' refused: missing )"),
        ({"rules": [{"name": "echo", "pattern": r"(\w)\1", "route": "smart"}]}, "callback_settings.stratum.rules.0", "invalid escape sequence: \\1"),
        ({"rules": [{"name": "ahead", "pattern": "x(?=y)", "route": "smart"}]}, "callback_settings.stratum.rules.0", "no backreferences, lookahead or lookbehind"),
        ({"rules": [{"name": "r", "keywords": ["x"]}]}, "callback_settings.stratum.rules.0", "exactly one of"),
        ({"rules": [{"name": "r", "route": "smart"}]}, "callback_settings.stratum.rules.0", "matches nothing"),
        ({"fallback_tier": "medium"}, "callback_settings.stratum.fallback_tier", "'medium' is not a tier (tiers: fast, smart)"),
        ({"python_rules": [{"callable": "no colon"}]}, "callback_settings.stratum.python_rules.0.callable", "pattern"),
    ],
)
def test_bad_values_name_the_key_the_file_and_the_expectation(tmp_path: Path, stratum: dict, key: str, expected: str) -> None:
    path = write_gateway_config(tmp_path, stratum)
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    message = str(err.value)
    assert str(path) in message
    assert key in message
    assert expected in message


def test_a_standalone_file_and_a_stratum_key_are_read(tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text("complexity: {threshold: 0.4}\n")
    assert load_settings(bare).complexity.threshold == 0.4
    keyed = tmp_path / "keyed.yaml"
    keyed.write_text("stratum: {complexity: {threshold: 0.3}}\n")
    assert load_settings(keyed).complexity.threshold == 0.3


def test_unreadable_or_invalid_yaml_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(broken)


def test_the_environment_variable_wins_over_the_gateway_config(tmp_path: Path) -> None:
    own = tmp_path / "own.yaml"
    own.write_text("complexity: {threshold: 0.2}\n")
    settings, source = resolve_settings(REPO / "litellm_config.yaml", environ={"STRATUM_CONFIG": str(own)})
    assert settings.complexity.threshold == 0.2 and source == str(own)
    settings, source = resolve_settings(REPO / "litellm_config.yaml", environ={})
    assert source.endswith("litellm_config.yaml")
    settings, source = resolve_settings(None, {"complexity": {"threshold": 0.5}}, environ={})
    assert settings.complexity.threshold == 0.5 and source == "litellm.callback_settings"
    assert resolve_settings(None, None, environ={})[1] == "defaults"


@hsettings(max_examples=200, deadline=None)
@given(threshold=st.one_of(st.floats(allow_nan=True), st.text(max_size=5), st.none(), st.booleans()))
def test_threshold_is_accepted_exactly_when_it_is_a_number_in_range(threshold: object) -> None:
    ok = isinstance(threshold, float) and 0.0 <= threshold <= 1.0
    if ok:
        assert parse_settings({"complexity": {"threshold": threshold}}).complexity.threshold == threshold
    else:
        with pytest.raises(SettingsError, match="complexity.threshold"):
            parse_settings({"complexity": {"threshold": threshold}})


@pytest.mark.parametrize(("given", "read"), [
    ("http://127.0.0.1:8082/v1", "http://127.0.0.1:8082"),
    ("http://127.0.0.1:8082/v1/", "http://127.0.0.1:8082"),
    (" https://gpu-box:8000/ ", "https://gpu-box:8000"),
])
def test_a_backend_url_may_be_litellms_api_base(given: str, read: str) -> None:
    # The load signals live at the server's root, not under the OpenAI-compatible /v1.
    from stratum_litellm.signals.snapshot import Signals

    s = parse_settings({"tiers": {"fast": {"model_group": "a"},
                                  "smart": {"model_group": "b", "backend": {"url": given}}}})
    signals = Signals.polling(s)
    try:
        assert signals.backend_poller is not None
        assert signals.backend_poller.targets["smart"].url == read
    finally:
        signals.close()


def test_the_settings_module_imports_no_other_part_of_the_router() -> None:
    # The settings are the bottom layer: every part may read them, they read no part.
    import subprocess
    import sys

    code = ("import sys, stratum_litellm.config as c; c.parse_settings({'rules': [{'name': 'r', 'pattern': 'x', "
            "'route': 'smart'}]}); print(sorted(m for m in sys.modules if m.startswith('stratum_litellm.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = eval(out.stdout)
    assert not [m for m in loaded if m.split(".")[1] in ("signals", "scoring", "gateway", "cli")], loaded


def test_an_unknown_weight_dimension_refuses_the_start_naming_the_key_and_file(tmp_path: Path) -> None:
    # The scorer knows its dimensions; the refusal comes when the router is built from the file.
    from stratum_litellm.gateway.engine import RouterEngine

    path = write_gateway_config(tmp_path, {"complexity": {"weights": {"maths": 1.0}}})
    with pytest.raises(SettingsError) as err:
        RouterEngine(load_settings(path), source=str(path))
    message = str(err.value)
    assert str(path) in message and "complexity.weights" in message and "unknown scoring dimension 'maths'" in message
    assert "math" in message.split("the dimensions are:")[1]  # and says what was expected


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, -math.inf, "heavy", None])
def test_bad_weights_are_refused_naming_the_dimension(bad: object) -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings({"complexity": {"weights": {"code": bad}}})
    assert "complexity.weights" in str(err.value) and "code" in str(err.value)
