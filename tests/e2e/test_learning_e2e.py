"""The learning loop through a real gateway: judged samples taken from live traffic, their
labels in the store, a profile fitted on them and put in force by a live reload.

The tiers are real llama-servers (SmolLM2 on the CPU). The judge is the smart tier's real
llama-server (its answers kept to the verdict's JSON by ``response_format``), except in the
test where the router must learn a rule: no real model can be made to follow a rule on
demand, so there the judge is the stub backend grading by one (``tests/support/stub_backend.py``,
``judge``), while both tiers stay real.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import COMPLEX_PROMPT
from fleet import redis_env
from gateway import CONFIG, Gateway
from servers import LlamaServer, StubBackend
from waiting import wait_until

pytestmark = pytest.mark.llama_server

STRATUM = Path(sys.executable).with_name("stratum")
PACKAGE_PROFILE = Path(__file__).resolve().parents[2] / "stratum_litellm" / "scoring" / "data" / "profile.json"
QUESTIONS = ["What is a {}?", "Tell me one fact about the {}.", "Where does the {} live?", "What does a {} eat?",
             "Is the {} a bird?", "How big is a {}?", "Describe a {} in one line.", "Can a {} swim?",
             "Name a colour of the {}.", "Why do people like the {}?"]
ANIMALS = ["otter", "heron", "badger", "walrus", "gecko", "lemur", "ferret", "marmot"]


def learning(store: Path, **judged: Any) -> dict[str, Any]:
    return {"store": {"path": str(store)},
            "judged": {"enabled": True, "share": 1.0, "per_hour": 10_000, "per_day": 100_000, "max_tokens": 8,
                       "timeout_s": 120, **judged}}


async def ask(gw: Gateway, prompt: str, stream: bool = False, max_tokens: int = 8,
              timeout: float = 180.0) -> tuple[str, str]:
    """One chat request through the gateway: the tier and the reason it reports."""
    body = {"model": "gemma4-auto", "stream": stream, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}]}
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {gw.master_key}"}) as client:
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            text = (await r.aread()).decode()
            assert r.status_code == 200, text
            if stream:
                assert text.rstrip().endswith("data: [DONE]"), text[-300:]
            return r.headers["x-stratum-tier"], r.headers["x-stratum-reason"]


def outcomes(gw: Gateway) -> dict[str, float]:
    text = gw.gateway_metrics()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("stratum_samples_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            found[outcome] = found.get(outcome, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def sampled(gw: Gateway) -> float:
    return sum(outcomes(gw).values())


def idle(gw: Gateway) -> bool:
    return gw.metric("stratum_samples_in_progress") == 0


def smart_free(gw: Gateway) -> bool:
    """Nothing in flight on the smart tier, as the gateway counts it and as its backend's
    last polled load says."""
    return (gw.metric("stratum_tier_in_flight", tier="smart") == 0
            and not gw.metric("stratum_backend_requests_running", tier="smart")
            and not gw.metric("stratum_backend_requests_waiting", tier="smart"))


async def settle(gw: Gateway, offered: float, timeout: float = 120.0) -> None:
    """Wait until ``offered`` samples ended (each in exactly one outcome) and none runs."""
    ok = await asyncio.to_thread(wait_until, lambda: sampled(gw) >= offered and idle(gw), timeout, 0.2)
    assert ok, (outcomes(gw), gw.log_tail())


def labels(store: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT source, needs_strong, weight, tier, grade, text FROM labels").fetchall()


def decisions_total(gw: Gateway) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in gw.gateway_metrics().splitlines()
               if line.startswith("stratum_decisions_total{"))


async def test_judged_samples_are_taken_only_with_room_never_recursively_and_land_in_the_store(
        llama_fast: LlamaServer, llama_smart: LlamaServer, tmp_path: Path) -> None:
    store = tmp_path / "labels.db"
    settings = {"learning": learning(store), "latency": {"sla_ms": 600_000},
                "tiers": {"smart": {"max_in_flight": 2}}}
    prompts = [q.format(a) for q, a in zip(QUESTIONS, ANIMALS)][:6]
    with Gateway(llama_fast.api_base, llama_smart.api_base, stratum=settings) as gw:
        # Every routed request whose answer completes is offered (share 1.0), streams too.
        for n, prompt in enumerate(prompts, start=1):
            assert (await ask(gw, prompt, stream=n % 2 == 0))[0] == "fast"
            await settle(gw, n)
        done = outcomes(gw)
        # Each offered once, none of the samples' own calls sampled or routed in turn.
        assert sampled(gw) == len(prompts), done
        assert decisions_total(gw) == len(prompts)
        assert done["labelled"] >= 4, done  # a real small judge may now and then not give a grade
        rows = labels(store)
        assert len(rows) == done["labelled"]
        assert {(source, tier) for source, _, _, tier, _, _ in rows} == {("judge", "fast")}
        assert all(1 <= grade <= 5 for *_, grade, _ in rows)
        assert gw.metric("stratum_learning_calls_total", kind="judge") >= done["labelled"]
        verdicts = sum(gw.metric("stratum_judge_verdicts_total", tier="fast", verdict=v) or 0
                       for v in ("needs_strong", "first_enough"))
        assert verdicts == done["labelled"]

        # The smart tier full (its two places taken by long answers): nothing is sampled.
        before = outcomes(gw)
        held = [asyncio.create_task(ask(gw, "Write a very long essay, at least two thousand words. " + COMPLEX_PROMPT,
                                        stream=True, max_tokens=1500)) for _ in range(2)]
        assert await asyncio.to_thread(
            wait_until, lambda: gw.metric("stratum_tier_in_flight", tier="smart") == 2, 60, 0.05)
        for prompt in ("What is an owl?", "What is a newt?", "What is a crab?"):
            assert (await ask(gw, prompt))[0] == "fast"
        assert await asyncio.to_thread(
            wait_until, lambda: outcomes(gw)["no_room"] >= before["no_room"] + 3, 30, 0.05), outcomes(gw)
        assert not all(task.done() for task in held), "the long answers ended before the check"
        assert outcomes(gw)["labelled"] == before["labelled"]  # no sample started while it was full
        await asyncio.gather(*held)

        # Room again: the next one is sampled (a fast answer, judged).
        # Free by every signal the room check reads: the backend's own load is polled, so
        # it may still show the long answers for a moment after the gateway counted them out.
        assert await asyncio.to_thread(wait_until, lambda: idle(gw) and smart_free(gw), 120, 0.2), outcomes(gw)
        before = outcomes(gw)
        await ask(gw, "What is a moth?")
        await settle(gw, sum(before.values()) + 1)
        after = outcomes(gw)
        assert after["no_room"] == before["no_room"] and sum(after.values()) == sum(before.values()) + 1, after

    # Text off (the default): no prompt and no answer anywhere in the store's files.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("labels.db*"))
    assert raw, "the store's files are empty"
    for prompt in [*prompts, "What is an owl?", "What is a moth?"]:
        assert prompt.encode() not in raw
    assert b"Write a very long essay" not in raw
    assert all(text is None for *_, text in labels(store))


def config_with_judge(tmp_path: Path, judge: StubBackend) -> Path:
    """The repository's gateway config plus a model group for a judge of its own."""
    document = yaml.safe_load(CONFIG.read_text())
    document["model_list"].append({"model_name": "stratum-judge", "litellm_params": {
        "model": "openai/stratum-judge", "api_base": judge.api_base, "api_key": "none"}})
    path = tmp_path / "litellm_config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


async def test_a_rule_the_judge_follows_is_learned_fitted_and_put_in_force_by_a_live_reload(
        llama_fast: LlamaServer, llama_smart: LlamaServer, tmp_path: Path) -> None:
    store, profile = tmp_path / "labels.db", tmp_path / "profile.json"
    shutil.copy(PACKAGE_PROFILE, profile)  # today's profile, in a file the settings name
    with StubBackend(name="judge-stub") as judge:
        # Stub judge (see the module docstring): anything about pelicans needed the strong tier.
        judge.set_behaviour(judge={"needle": "pelican", "match": 1, "otherwise": 5})
        settings = {"learning": learning(store, judge="stratum-judge", max_tokens=4, keep_free=0),
                    "complexity": {"profile": str(profile)}, "reload": {"interval_s": 0.5},
                    "latency": {"sla_ms": 600_000}}
        with Gateway(llama_fast.api_base, llama_smart.api_base, stratum=settings,
                     config=config_with_judge(tmp_path, judge)) as gw:
            sent = 0
            for question in QUESTIONS:
                for animal in ["pelican", "pelican", "pelican", *ANIMALS[:3]]:
                    tier, _ = await ask(gw, question.format(animal))
                    assert tier == "fast"  # what the shipped profile does with every one of them
                    sent += 1
                    await settle(gw, sent)
            done = outcomes(gw)
            assert done["labelled"] == sent, done
            rows = labels(store)
            assert sum(needs for _, needs, *_ in rows) == 30 and sum(not needs for _, needs, *_ in rows) == 30

            reloads = gw.metric("stratum_config_reloads_total", result="ok") or 0
            fitted = subprocess.run([str(STRATUM), "fit", "--config", str(gw.stratum_path), "--out", str(profile)],
                                    capture_output=True, text=True, timeout=600)
            assert fitted.returncode == 0, fitted.stdout + fitted.stderr
            assert "judge" in fitted.stdout and "cross-validated" in fitted.stdout, fitted.stdout
            assert await asyncio.to_thread(
                wait_until, lambda: (gw.metric("stratum_config_reloads_total", result="ok") or 0) > reloads, 30, 0.1)
            info = [line for line in gw.gateway_metrics().splitlines() if line.startswith("stratum_profile_info{")]
            assert any('profile="profile"' in line and 'fitted="never"' not in line for line in info), info

            # Questions it never saw: the one about a pelican goes to the smart tier now.
            tier, reason = await ask(gw, "Is a pelican a good pet for a child?")
            assert (tier, reason) == ("smart", "complex"), fitted.stdout
            assert (await ask(gw, "Is an otter a good pet for a child?"))[0] == "fast"


async def test_two_gateways_on_one_redis_keep_one_sample_budget(
        llama_fast: LlamaServer, llama_smart: LlamaServer, redis_url: str, tmp_path: Path) -> None:
    # keep_free 0: another gateway's sample just ended may still count on the smart tier for a
    # tick (its lease), which is not what this test is about.
    settings = {"learning": learning(tmp_path / "labels.db", per_hour=4, keep_free=0), "latency": {"sla_ms": 600_000}}
    env = redis_env(redis_url)
    a = Gateway(llama_fast.api_base, llama_smart.api_base, stratum=settings, env=env)
    b = Gateway(llama_fast.api_base, llama_smart.api_base, stratum=settings, env=env)
    with a, b:
        for gw in (a, b):  # the first request starts each gateway's shared-state tick
            await ask(gw, "hello")
            await settle(gw, 1)
        assert await asyncio.to_thread(
            wait_until, lambda: all(gw.metric("stratum_shared_state_up") == 1 for gw in (a, b)), 20, 0.1)
        sent = {a: 1, b: 1}
        for n in range(10):
            gw = (a, b)[n % 2]
            await ask(gw, QUESTIONS[n].format(ANIMALS[n % len(ANIMALS)]))
            sent[gw] += 1
            await settle(gw, sent[gw])
        both = [outcomes(a), outcomes(b)]
        # A sample offered before a gateway's shared state is up is dropped: its budget is
        # unknown (never counted locally, which would let each process take a budget of its own).
        unknown = sum(o["budget_unknown"] for o in both)
        spent = sum(o["budget"] for o in both)
        taken = sum(o[k] for o in both for k in ("labelled", "unparsed", "answer_error", "judge_error"))
        # The hour's 4 samples across both gateways (none dropped for another reason here).
        assert taken == 4, [{k: v for k, v in o.items() if v} for o in both]
        assert spent + unknown == sum(sent.values()) - 4, both
        assert all(o["budget"] > 0 for o in both), both  # each gateway saw the shared budget spent
