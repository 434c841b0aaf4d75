"""Each tier's backend read from the gateway's model_list: written once, overridable,
switchable off, and never guessed where it would be wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stratum_litellm.config import BackendSettings, SettingsError, load_settings, parse_settings
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.config.model_list import fill_backends, model_list_of

ROOT = Path(__file__).resolve().parents[2]
ENV = {"STRATUM_FAST_API_BASE": "http://127.0.0.1:8081/v1", "STRATUM_SMART_API_BASE": "http://10.0.0.7:8082/v1"}


def deployment(group: str, api_base: str | None, api_key: str | None = "none") -> dict[str, Any]:
    params: dict[str, Any] = {"model": f"openai/{group}"}
    if api_base is not None:
        params["api_base"] = api_base
    if api_key is not None:
        params["api_key"] = api_key
    return {"model_name": group, "litellm_params": params}


def test_the_shipped_config_reads_both_backends_at_their_api_base() -> None:
    document = yaml.safe_load((ROOT / "litellm_config.yaml").read_text())
    settings = load_settings(ROOT / "litellm_config.yaml")
    assert all(t.backend is None for t in settings.tiers.values())  # nothing written twice
    filled, notes = fill_backends(settings, model_list_of(document), environ=ENV)
    assert filled.tiers["fast"].polled == BackendSettings(kind="auto", url=ENV["STRATUM_FAST_API_BASE"], api_key="none")
    assert filled.tiers["smart"].polled is not None and filled.tiers["smart"].polled.url == ENV["STRATUM_SMART_API_BASE"]
    assert "kind detected" in notes["smart"]


def test_an_explicit_backend_wins_and_off_reads_nothing() -> None:
    settings = parse_settings({"tiers": {
        "fast": {"model_group": "gemma4-fast", "backend": False},  # YAML `backend: off`
        "smart": {"model_group": "gemma4-smart", "backend": {"kind": "llamacpp", "url": "http://gpu-box:9000"}},
    }})
    models = [deployment("gemma4-fast", "http://127.0.0.1:8081/v1"), deployment("gemma4-smart", "http://127.0.0.1:8082")]
    filled, notes = fill_backends(settings, models)
    assert filled.tiers["fast"].backend == "off" and filled.tiers["fast"].polled is None
    assert filled.tiers["smart"].polled == BackendSettings(kind="llamacpp", url="http://gpu-box:9000")
    assert notes["fast"].startswith("off")


@pytest.mark.parametrize("models, why", [
    ([deployment("gemma4-smart", None)], "no api_base"),
    ([], "no api_base"),
    ([deployment("gemma4-smart", "http://a:1"), deployment("gemma4-smart", "http://b:1")], "different api_base"),
    ([deployment("gemma4-smart", "os.environ/STRATUM_NOT_SET_ANYWHERE")], "unset variable"),
    ([deployment("gemma4-smart", "unix:///run/llama.sock")], "http(s)://host[:port]"),
])
def test_no_backend_where_the_model_list_cannot_tell_one(models: list[dict[str, Any]], why: str) -> None:
    filled, notes = fill_backends(parse_settings({}), models, environ={})
    assert filled.tiers["smart"].polled is None
    assert why in notes["smart"]


def test_two_deployments_on_one_server_are_one_backend_and_keys_come_from_the_environment() -> None:
    models = [deployment("gemma4-smart", "http://h:8082/v1", "os.environ/SMART_KEY")] * 2
    filled, _ = fill_backends(parse_settings({}), models, environ={"SMART_KEY": "sk-local"})
    assert filled.tiers["smart"].polled == BackendSettings(kind="auto", url="http://h:8082/v1", api_key="sk-local")


def test_the_overflow_tier_is_never_polled() -> None:
    settings = parse_settings({"tiers": {
        "fast": {"model_group": "gemma4-fast"}, "smart": {"model_group": "gemma4-smart"},
        "cloud": {"model_group": "hosted", "overflow": True, "budget": {"requests_per_hour": 5}},
    }})
    filled, notes = fill_backends(settings, [deployment("hosted", "https://api.example.com/v1")])
    assert filled.tiers["cloud"].polled is None and "overflow" in notes["cloud"]


def test_a_reload_keeps_reading_the_model_lists_backends() -> None:
    models = [deployment("gemma4-fast", "http://127.0.0.1:1/v1"), deployment("gemma4-smart", "http://127.0.0.1:2/v1")]
    engine = RouterEngine.polling(parse_settings({"gpu": {"enabled": False}}), "test", models)
    try:
        assert engine.settings.tiers["smart"].polled is not None
        engine.apply_settings(parse_settings({"gpu": {"enabled": False}, "complexity": {"threshold": 0.7}}))
        assert engine.settings.tiers["smart"].polled is not None
        assert engine.signals.backend_poller is not None
    finally:
        engine.close()


@pytest.mark.parametrize("value", ["on", 3, ["http://x:1"]])
def test_a_backend_that_is_neither_a_mapping_nor_off_is_refused_by_name(tmp_path: Path, value: Any) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"callback_settings": {"stratum": {"tiers": {
        "fast": {"model_group": "gemma4-fast"}, "smart": {"model_group": "gemma4-smart", "backend": value}}}}}))
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert "callback_settings.stratum.tiers.smart.backend: expected a mapping (kind, url, ...) or off" in str(err.value)
