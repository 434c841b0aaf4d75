"""Shadow mode end to end: a real LiteLLM gateway and real llama.cpp servers. The alias
(gemma4-auto) has a deployment of its own here, as in a gateway that already served that
name before the router came; in shadow it keeps serving every request while the router's
decisions are reported, and a live reload to ``mode: route`` hands the requests over."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from gateway import CONFIG, Gateway
from servers import LlamaServer
from test_gateway_e2e import ROUTING_ONLY, ask, processed_tokens


def config_with_own_alias(tmp_path: Path, alias_api_base: str) -> Path:
    """The repository's config, with gemma4-auto served by its own deployment instead of
    ``router_settings.model_group_alias``."""
    config = yaml.safe_load(CONFIG.read_text())
    config["model_list"].append({"model_name": "gemma4-auto", "litellm_params": {
        "model": "openai/gemma4-auto", "api_base": alias_api_base, "api_key": "none"}})
    config["router_settings"].pop("model_group_alias")
    path = tmp_path / "litellm_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_shadow_reports_smart_while_the_alias_serves_then_a_reload_routes_to_smart(
    tmp_path: Path, llama_fast: LlamaServer, llama_smart: LlamaServer
) -> None:
    shadow = {"mode": "shadow", "reload": {"interval_s": 0.5}, **ROUTING_ONLY}
    with LlamaServer(alias="gemma4-auto", slots=1) as own, Gateway(
        llama_fast.api_base, llama_smart.api_base, stratum=shadow, config=config_with_own_alias(tmp_path, own.api_base)
    ) as gw:
        own_before, smart_before = processed_tokens(own), processed_tokens(llama_smart)
        headers, reply = ask(gw, COMPLEX_PROMPT)
        # Reported as the smart tier's ...
        assert (headers["x-stratum-tier"], headers["x-stratum-reason"], headers["x-stratum-mode"]) == (
            "smart", "complex", "shadow")
        # ... but served by the alias's own deployment, not by the smart server.
        assert headers["x-litellm-model-group"] == "gemma4-auto"
        assert reply.choices[0].message.content
        assert processed_tokens(own) > own_before
        assert processed_tokens(llama_smart) == smart_before
        assert gw.metric("stratum_shadow_decisions_total", tier="smart", reason="complex") == 1.0
        assert not gw.metric("stratum_decisions_total", tier="smart", reason="complex")
        headers, _ = ask(gw, SIMPLE_PROMPT)
        assert (headers["x-stratum-tier"], headers["x-litellm-model-group"]) == ("fast", "gemma4-auto")

        # The operator switches to routing with an edit of the settings file: no restart.
        pid = gw.process.pid
        gw.write_stratum({**shadow, "mode": "route"})
        deadline = time.monotonic() + 20
        while (headers := ask(gw, COMPLEX_PROMPT)[0])["x-litellm-model-group"] != "gemma4-smart":
            assert time.monotonic() < deadline, "the switch to route never took effect"
            time.sleep(0.2)
        assert headers["x-stratum-tier"] == "smart" and "x-stratum-mode" not in headers
        assert processed_tokens(llama_smart) > smart_before
        assert gw.metric("stratum_decisions_total", tier="smart", reason="complex") >= 1.0
        assert gw.metric("stratum_config_reloads_total", result="ok") == 1.0
        assert gw.process.pid == pid


def test_shadow_with_the_shipped_alias_is_served_by_the_alias_target(
    llama_fast: LlamaServer, llama_smart: LlamaServer
) -> None:
    # The shipped config maps gemma4-auto to gemma4-fast (router_settings.model_group_alias):
    # in shadow that target serves every routed request.
    with Gateway(llama_fast.api_base, llama_smart.api_base, stratum={"mode": "shadow", **ROUTING_ONLY}) as gw:
        fast_before, smart_before = processed_tokens(llama_fast), processed_tokens(llama_smart)
        headers, reply = ask(gw, COMPLEX_PROMPT)
        assert (headers["x-stratum-tier"], headers["x-stratum-mode"]) == ("smart", "shadow")
        assert headers["x-litellm-model-group"] in ("gemma4-auto", "gemma4-fast")
        assert reply.choices[0].message.content
        assert processed_tokens(llama_fast) > fast_before
        assert processed_tokens(llama_smart) == smart_before
