"""Each tier's limits (context window, images, audio, tools): where each is learned, in which
order, and how they reach a snapshot and `stratum check`.

The readers that take a backend's limits from its replies are pinned in
test_backend_readers.py; the real llama-server's in tests/integration/test_backend_signals.py.
"""

from __future__ import annotations

import argparse
import time
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from stratum_litellm.cli import check
from stratum_litellm.config import SettingsError, StratumSettings, parse_settings
from stratum_litellm.signals.backends import BackendLoad, BackendTarget
from stratum_litellm.signals.limits import (
    TierLimits, configured, describe, from_model_info, from_settings, merged, reported)
from stratum_litellm.signals.snapshot import Signals
from stratum_litellm.signals.status import Status

TWO_TIERS = {"gpu": {"enabled": False}}


def deployment(group: str, **info: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"model_name": group, "litellm_params": {"model": f"openai/{group}"}}
    if info:
        entry["model_info"] = info
    return entry


def load(kind: str = "llamacpp", status: str = "ok", **fields: Any) -> BackendLoad:
    base: dict[str, Any] = dict(kind=kind, url="http://h:1", status=status, error=None, requests_running=0,
                                requests_waiting=0, kv_cache_usage=None, slots_total=2, slots_idle=2,
                                model_loaded=True, taken_at=time.monotonic() + 1e9)
    base.update(fields)
    return BackendLoad(**base)


# -- merging -------------------------------------------------------------------------


def test_the_first_layer_that_knows_a_limit_wins_with_its_source() -> None:
    settings = TierLimits(context_tokens=8192, sources={"context_tokens": "tiers.smart.limits"})
    info = TierLimits(context_tokens=4096, vision=False,
                      sources={"context_tokens": "model_info of s", "vision": "model_info of s"})
    backend = TierLimits(context_tokens=512, vision=True, audio=False,
                         sources={"context_tokens": "llama-server /props", "vision": "llama-server /props",
                                  "audio": "llama-server /props"})

    limits = merged(settings, None, info, backend)

    assert (limits.context_tokens, limits.input_tokens, limits.vision, limits.audio, limits.tools) == (
        8192, None, False, False, None)
    assert limits.sources == {"context_tokens": "tiers.smart.limits", "vision": "model_info of s",
                              "audio": "llama-server /props"}
    assert limits.known and not merged().known and not merged(None, TierLimits()).known
    assert merged(TierLimits(vision=False), TierLimits(vision=True)).vision is False  # False is known, not unknown


# -- model_info in model_list ------------------------------------------------------------


def test_model_info_of_one_deployment_in_litellm_names() -> None:
    models = [deployment("gemma4-smart", max_input_tokens=8000, supports_vision=True, supports_audio_input=False,
                         supports_function_calling=True, max_tokens=123, input_cost_per_token=0.0),
              deployment("gemma4-fast", max_input_tokens=2000)]

    limits = from_model_info("gemma4-smart", models)

    assert (limits.context_tokens, limits.input_tokens, limits.vision, limits.audio, limits.tools) == (
        None, 8000, True, False, True)  # max_tokens is not read: output or window, depending on the entry
    assert set(limits.sources.values()) == {"model_info of gemma4-smart"}
    assert set(limits.sources) == {"input_tokens", "vision", "audio", "tools"}


def test_several_deployments_count_a_limit_only_when_all_state_it() -> None:
    models = [
        deployment("smart", max_input_tokens=8000, supports_vision=True, supports_function_calling=True,
                   supports_audio_input=False),
        deployment("smart", max_input_tokens=4000, supports_vision=True, supports_function_calling=False),
        deployment("smart", max_input_tokens=6000, supports_vision=True, supports_function_calling=True),
    ]

    limits = from_model_info("smart", models)

    assert limits.input_tokens == 4000  # the smallest: any deployment may take the request
    assert limits.vision is True  # all agree
    assert limits.tools is None  # they disagree: unknown
    assert limits.audio is None  # stated by one only: unknown
    assert not from_model_info("smart", models + [deployment("smart")]).known  # one says nothing at all


@pytest.mark.parametrize("odd", ["8k", "8192", 0, -1, 8192.5, True, None, [8192]])
def test_odd_token_counts_are_not_stated(odd: Any) -> None:
    assert from_model_info("s", [deployment("s", max_input_tokens=odd)]).input_tokens is None


@pytest.mark.parametrize("odd", ["yes", "true", 1, 0, None, {}])
def test_odd_capabilities_are_not_stated(odd: Any) -> None:
    assert from_model_info("s", [deployment("s", supports_vision=odd)]).vision is None


def test_no_model_list_no_group_or_odd_entries_know_nothing() -> None:
    assert not from_model_info("s", None).known
    assert not from_model_info("s", []).known
    assert not from_model_info("s", [deployment("other", max_input_tokens=10)]).known
    odd = ["not an entry", 42, None, {"model_name": "s", "model_info": "8192"}, {"model_name": "s", "model_info": []}]
    assert not from_model_info("s", odd).known
    assert from_model_info("s", ["not an entry", deployment("s", supports_vision=False)]).vision is False


# -- the settings --------------------------------------------------------------------------


def test_limits_in_the_settings_beat_model_info_and_every_tier_has_an_entry() -> None:
    settings = parse_settings({"tiers": {
        "fast": {"model_group": "gemma4-fast"},
        "smart": {"model_group": "gemma4-smart", "limits": {"context_tokens": 8192, "vision": False}},
        "cloud": {"model_group": "cloud", "overflow": True, "budget": {"requests_per_day": 5},
                  "limits": {"tools": True}},
    }})
    models = [deployment("gemma4-smart", max_input_tokens=6000, supports_vision=True),
              deployment("cloud", supports_vision=True, supports_function_calling=False)]

    limits = configured(settings, models)

    assert set(limits) == {"fast", "smart", "cloud"}
    assert not limits["fast"].known
    smart = limits["smart"]
    assert (smart.context_tokens, smart.input_tokens, smart.vision) == (8192, 6000, False)
    assert smart.sources == {"context_tokens": "tiers.smart.limits", "vision": "tiers.smart.limits",
                             "input_tokens": "model_info of gemma4-smart"}
    cloud = limits["cloud"]
    assert (cloud.tools, cloud.vision) == (True, True)
    assert cloud.sources == {"tools": "tiers.cloud.limits", "vision": "model_info of cloud"}
    assert configured(settings, None)["smart"].input_tokens is None  # a standalone settings file


def test_limit_settings_are_optional_and_strict() -> None:
    settings = parse_settings({"tiers": {"fast": {"model_group": "f"}, "smart": {
        "model_group": "s", "limits": {"context_tokens": 1, "input_tokens": 100, "vision": True, "audio": False,
                                       "tools": False}}}})
    limits = settings.tiers["smart"].limits
    assert limits is not None and (limits.context_tokens, limits.input_tokens, limits.vision, limits.audio,
                                   limits.tools) == (1, 100, True, False, False)
    assert settings.tiers["fast"].limits is None
    assert StratumSettings().tiers["smart"].limits is None
    assert from_settings("fast", None) is from_settings("smart", None)  # nothing said: the shared empty value


@pytest.mark.parametrize(
    ("limits", "complaint"),
    [
        ({"context_tokens": 0}, "stratum.tiers.smart.limits.context_tokens: Input should be greater than or equal to 1"),
        ({"input_tokens": -5}, "stratum.tiers.smart.limits.input_tokens: Input should be greater than or equal to 1"),
        ({"context_tokens": "8192"}, "stratum.tiers.smart.limits.context_tokens: Input should be a valid integer"),
        ({"context_tokens": 8192.0}, "stratum.tiers.smart.limits.context_tokens: Input should be a valid integer"),
        ({"vision": "yes"}, "stratum.tiers.smart.limits.vision: Input should be a valid boolean"),
        ({"tools": 1}, "stratum.tiers.smart.limits.tools: Input should be a valid boolean"),
        ({"max_input_tokens": 8000}, "stratum.tiers.smart.limits.max_input_tokens: unknown key"),
    ],
)
def test_bad_limit_settings_are_refused_naming_the_key(limits: dict[str, Any], complaint: str) -> None:
    raw = {"tiers": {"fast": {"model_group": "f"}, "smart": {"model_group": "s", "limits": limits}}}
    with pytest.raises(SettingsError) as refused:
        parse_settings(raw)
    assert complaint in str(refused.value)


def test_bad_limits_in_a_file_name_the_file_and_the_key(tmp_path: Any) -> None:
    file = tmp_path / "litellm_config.yaml"
    file.write_text(yaml.safe_dump({"callback_settings": {"stratum": {"tiers": {
        "fast": {"model_group": "f"}, "smart": {"model_group": "s", "limits": {"context_tokens": 0}}}}}}))
    assert check.run(argparse.Namespace(file=str(file))) == 2


# -- what the backend reports --------------------------------------------------------------


def test_a_backend_reading_carries_its_limits_and_names_where_they_came_from() -> None:
    limits = reported(load(context_tokens=512, vision=False, audio=False))
    assert limits is not None and (limits.context_tokens, limits.vision, limits.audio) == (512, False, False)
    assert set(limits.sources.values()) == {"llama-server /props"}
    vllm = reported(load("vllm", context_tokens=32768))
    assert vllm is not None and vllm.sources == {"context_tokens": "vLLM /v1/models"}
    assert reported(load()) is None and reported(None) is None


def test_a_reading_gone_unknown_keeps_no_limits() -> None:
    ok = load(context_tokens=512, vision=True, audio=False)
    stale = ok.unknown("no fresh reading for 9.0s")
    assert stale.status is Status.UNKNOWN and (stale.context_tokens, stale.vision, stale.audio) == (None, None, None)
    blank = BackendLoad.blank(BackendTarget("vllm", "http://h:1"), "not polled yet")
    assert (blank.context_tokens, blank.vision, blank.audio) == (None, None, None)
    # Built positionally as before the limits existed: they default to unknown.
    old = BackendLoad("vllm", "http://h:1", "ok", None, 1, 0, 0.2, None, None, True, 1.0)
    assert (old.context_tokens, old.vision, old.audio, old.kv_cache_saturation) == (None, None, None, 0.95)


# -- the snapshot ----------------------------------------------------------------------------


class FakePoller:
    """What Signals reads of a BackendPoller: snapshot() and stop()."""

    def __init__(self, **loads: BackendLoad) -> None:
        self.loads = MappingProxyType(loads)

    def snapshot(self) -> Any:
        return self.loads

    def stop(self, timeout: float = 2.0) -> None:
        pass


def signals_with(poller: FakePoller, models: list[Any] | None = None, **tiers: Any) -> tuple[Signals, StratumSettings]:
    raw: dict[str, Any] = dict(TWO_TIERS)
    if tiers:
        raw["tiers"] = tiers
    settings = parse_settings(raw)
    signals = Signals(settings, backend_poller=poller, limits=configured(settings, models))  # type: ignore[arg-type]
    return signals, settings


def test_configured_limits_beat_the_backends_and_unknown_stays_unknown() -> None:
    poller = FakePoller(smart=load(context_tokens=512, vision=False, audio=False))
    signals, _ = signals_with(
        poller, [deployment("gemma4-smart", supports_vision=True)],
        fast={"model_group": "gemma4-fast"},
        smart={"model_group": "gemma4-smart", "limits": {"context_tokens": 8192}})

    snapshot = signals.snapshot()

    smart = snapshot["smart"].limits
    assert (smart.context_tokens, smart.vision, smart.audio, smart.input_tokens, smart.tools) == (
        8192, True, False, None, None)
    assert smart.sources == {"context_tokens": "tiers.smart.limits", "vision": "model_info of gemma4-smart",
                             "audio": "llama-server /props"}
    fast = snapshot["fast"].limits
    assert not fast.known and fast.sources == {}


def test_the_backends_limits_come_and_go_with_its_reading() -> None:
    poller = FakePoller(smart=load(context_tokens=512, vision=False, audio=False))
    signals, _ = signals_with(poller)
    first = signals.snapshot()["smart"].limits
    assert first.context_tokens == 512 and first.sources["context_tokens"] == "llama-server /props"

    # A new reading with the same limits: the same merged value, no merge per snapshot.
    poller.loads = MappingProxyType({"smart": load(context_tokens=512, vision=False, audio=False, requests_running=1)})
    assert signals.snapshot()["smart"].limits is first

    # The server restarted with a bigger context.
    poller.loads = MappingProxyType({"smart": load(context_tokens=2048, vision=False, audio=False)})
    assert signals.snapshot()["smart"].limits.context_tokens == 2048

    # Stale, down: the backend's limits are gone with its reading.
    poller.loads = MappingProxyType({"smart": poller.loads["smart"].unknown("no fresh reading for 9.0s")})
    assert not signals.snapshot()["smart"].limits.known
    poller.loads = MappingProxyType({"smart": load(status="down")})
    assert not signals.snapshot()["smart"].limits.known


def test_limits_follow_a_reload_and_limit() -> None:
    signals, settings = signals_with(FakePoller())
    assert not signals.snapshot()["smart"].limits.known

    reloaded = parse_settings({**TWO_TIERS, "tiers": {"fast": {"model_group": "gemma4-fast"}, "smart": {
        "model_group": "gemma4-smart", "limits": {"audio": True}}}})
    signals.reconfigure(reloaded, configured(reloaded, None))
    assert signals.snapshot()["smart"].limits.audio is True
    signals.reconfigure(reloaded)  # no limits given: those in force stay
    assert signals.snapshot()["smart"].limits.audio is True

    signals.limit({"fast": TierLimits(tools=False, sources={"tools": "test"})})
    snapshot = signals.snapshot()
    assert snapshot["fast"].limits.tools is False and not snapshot["smart"].limits.known
    assert not Signals(settings).snapshot()["smart"].limits.known  # none given at all


# -- stratum check -------------------------------------------------------------------------------


def test_check_prints_each_tiers_limits_and_where_they_come_from(tmp_path: Any, capsys: Any) -> None:
    file = tmp_path / "litellm_config.yaml"
    file.write_text(yaml.safe_dump({
        "model_list": [
            {"model_name": "gemma4-fast", "litellm_params": {"model": "openai/f", "api_base": "http://127.0.0.1:8080/v1"}},
            {"model_name": "gemma4-smart", "litellm_params": {"model": "openai/s", "api_base": "http://127.0.0.1:8081/v1"},
             "model_info": {"supports_vision": False, "max_input_tokens": 6000}},
            {"model_name": "gemma4-big", "litellm_params": {"model": "openai/b", "api_base": "http://127.0.0.1:8082"}},
            {"model_name": "cloud", "litellm_params": {"model": "openai/gpt-4o-mini"}},
        ],
        "callback_settings": {"stratum": {"tiers": {
            "fast": {"model_group": "gemma4-fast", "backend": {"kind": "vllm", "url": "http://127.0.0.1:8080"}},
            "smart": {"model_group": "gemma4-smart", "entry_score": 0.5, "limits": {"context_tokens": 8192}},
            "big": {"model_group": "gemma4-big", "entry_score": 0.9, "backend": "off"},
            "cloud": {"model_group": "cloud", "overflow": True, "budget": {"requests_per_day": 5},
                      "limits": {"context_tokens": 128000, "vision": True, "audio": False, "tools": True}},
        }}},
    }, sort_keys=False))

    assert check.run(argparse.Namespace(file=str(file))) == 0

    lines = {line.split(" limits: ")[0].strip(): line.split(" limits: ")[1]
             for line in capsys.readouterr().out.splitlines() if " limits: " in line}
    assert lines == {
        "fast": "none configured; from its backend at run time (http://127.0.0.1:8080): context (vLLM /v1/models)",
        "smart": "context 8192 tokens (tiers.smart.limits), input 6000 tokens (model_info of gemma4-smart), "
                 "vision no (model_info of gemma4-smart); from its backend at run time (http://127.0.0.1:8081, "
                 "kind detected): audio if llama-server (/props)",
        "big": "none known (tiers.big.limits, or model_info of gemma4-big in model_list, can say them)",
        "cloud": "context 128000 tokens (tiers.cloud.limits), vision yes (tiers.cloud.limits), "
                 "audio no (tiers.cloud.limits), tools yes (tiers.cloud.limits)",
    }


def test_describe_reads_as_check_prints_it() -> None:
    limits = TierLimits(context_tokens=512, audio=False, sources={"context_tokens": "llama-server /props"})
    assert describe(limits) == "context 512 tokens (llama-server /props), audio no"
    assert describe(TierLimits()) == ""


def test_check_says_what_each_kind_of_backend_will_add() -> None:
    from stratum_litellm.config import BackendSettings

    auto = BackendSettings(kind="auto", url="http://gpu:8000/v1")
    assert check.limits_line("smart", "s", TierLimits(), auto) == (
        "none configured; from its backend at run time (http://gpu:8000, kind detected): "
        "context, vision, audio if llama-server (/props), context if vLLM (/v1/models)")
    swap = BackendSettings(kind="llama-swap", url="http://gpu:9292", model="smart")
    assert check.limits_line("smart", "s", TierLimits(), swap) == (
        "none configured; none from its backend (llama-swap at http://gpu:9292 reports none)")
    everything = TierLimits(context_tokens=4096, vision=False, audio=False, sources={"context_tokens": "x"})
    assert check.limits_line("smart", "s", everything, auto) == (
        "context 4096 tokens (x), vision no, audio no")  # the backend has nothing left to add
