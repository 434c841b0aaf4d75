"""The learning loop inside the engine: the profile file a live reload watches, the notes a
routed request gets, the decisions kept for Open WebUI's ratings, and the judged samples'
own calls kept out of the router's signals."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from stratum_litellm.config import SettingsError, load_settings, parse_settings
from stratum_litellm.gateway import metrics
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.gateway.reload import ConfigWatcher
from stratum_litellm.learning.sampler import SAMPLE_KEY, Reply
from stratum_litellm.routing.rules import RequestMeta
from stratum_litellm.scoring.profile import builtin

PACKAGE_PROFILE = Path(__file__).resolve().parents[3] / "stratum_litellm" / "scoring" / "data" / "profile.json"


def touch(path: Path) -> None:
    stamp = time.time_ns() + 1_000_000_000  # visible within one mtime tick
    os.utime(path, ns=(stamp, stamp))


def renamed(profile: Path, name: str) -> None:
    document = json.loads(profile.read_text())
    document["name"] = name
    profile.write_text(json.dumps(document))
    touch(profile)


def test_a_rewritten_profile_is_reloaded_and_a_broken_or_missing_one_is_refused(tmp_path: Path) -> None:
    shutil.copy(PACKAGE_PROFILE, tmp_path / "mine.json")
    settings_file = tmp_path / "stratum.yaml"
    settings_file.write_text("complexity: {profile: mine.json}\n")  # beside the settings file
    engine = RouterEngine(load_settings(settings_file), source=str(settings_file))
    errors: list[str] = []
    watcher = ConfigWatcher(settings_file, engine.apply_settings, errors.append, interval_s=0.05,
                            also=engine._profile_files)
    assert engine.policy.scorer.profile.name == "default"
    assert watcher.check_once() is None

    renamed(tmp_path / "mine.json", "week-2")  # `stratum fit --out mine.json` over it
    assert watcher.check_once() is True
    assert engine.policy.scorer.profile.name == "week-2"

    (tmp_path / "mine.json").write_text("{not json")
    touch(tmp_path / "mine.json")
    assert watcher.check_once() is False
    assert "complexity.profile" in errors[-1] and str(tmp_path / "mine.json") in errors[-1]
    assert engine.policy.scorer.profile.name == "week-2"  # the running profile stays

    (tmp_path / "mine.json").unlink()
    assert watcher.check_once() is False
    assert "cannot read profile" in errors[-1] and "mine.json" in errors[-1]
    assert engine.policy.scorer.profile.name == "week-2"


def test_a_missing_profile_at_start_is_refused_with_the_key_and_the_file(tmp_path: Path) -> None:
    settings_file = tmp_path / "stratum.yaml"
    settings_file.write_text("complexity: {profile: profiles/none.json}\n")
    with pytest.raises(SettingsError) as refused:
        RouterEngine(load_settings(settings_file), source=str(settings_file))
    assert "complexity.profile" in str(refused.value) and str(tmp_path / "profiles" / "none.json") in str(refused.value)


def test_a_label_store_that_cannot_be_opened_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    settings = parse_settings({"learning": {"feedback": {"enabled": True},
                                            "store": {"path": str(tmp_path / "a-file" / "labels.db")}}})
    with pytest.raises(SettingsError) as refused:
        RouterEngine(settings, source="stratum.yaml")
    assert "learning.store.path" in str(refused.value) and "a-file" in str(refused.value)


def body(prompt: str, call_id: str) -> dict[str, Any]:
    return {"model": "gemma4-auto", "litellm_call_id": call_id, "messages": [{"role": "user", "content": prompt}]}


def served(call_id: str, group: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"litellm_call_id": call_id, "standard_logging_object": {"model_group": group},
            "litellm_params": {"metadata": metadata or {}}}


OPEN_WEBUI = {"x-openwebui-message-id": "m-1", "x-openwebui-chat-id": "c-1", "x-openwebui-user-message-id": "u-1",
              "x-openwebui-task": ""}


def test_decisions_of_open_webui_answers_are_kept_and_its_own_tasks_are_not(tmp_path: Path) -> None:
    store = tmp_path / "labels.db"
    engine = RouterEngine(parse_settings({"learning": {"feedback": {"enabled": True}, "store": {"path": str(store)}}}),
                          source="test")
    try:
        engine.route(body(SIMPLE_PROMPT, "a"), RequestMeta(headers=OPEN_WEBUI))
        engine.route(body(COMPLEX_PROMPT, "b"), RequestMeta(headers={**OPEN_WEBUI, "x-openwebui-message-id": "m-2"}))
        engine.route(body("Title this chat", "c"), RequestMeta(headers={**OPEN_WEBUI, "x-openwebui-message-id": "m-3",
                                                                        "x-openwebui-task": "title_generation"}))
        engine.route(body(SIMPLE_PROMPT, "d"))  # no Open WebUI at all
        for call_id, group in (("a", "gemma4-fast"), ("b", "gemma4-smart"), ("c", "gemma4-fast"), ("d", "gemma4-fast")):
            engine.observe(served(call_id, group), 0.0, 1.0, ok=True, answer="an answer")
        assert engine.learning.writer is not None and engine.learning.writer.flush()
        with sqlite3.connect(store) as db:
            rows = db.execute("SELECT message_id, chat_id, user_message_id, tier, first_tier, text FROM decisions "
                              "ORDER BY message_id").fetchall()
        assert rows == [("m-1", "c-1", "u-1", "fast", 1, None), ("m-2", "c-1", "u-1", "smart", 0, None)]
    finally:
        engine.close()


async def test_only_chosen_requests_are_sampled_and_the_samples_own_calls_touch_no_signal(tmp_path: Path) -> None:
    # The judged sample's calls go through a stand-in of the gateway's router (the real one
    # is LiteLLM's, exercised by tests/e2e/test_learning_e2e.py); everything else is real.
    calls: list[tuple[str, dict[str, Any]]] = []

    async def complete(group: str, messages: list[Any], metadata: dict[str, Any], params: dict[str, Any]) -> Reply:
        calls.append((group, metadata))
        return Reply('{"rating": 2, "reason": "worse"}' if group == "gemma4-smart" and "response_format" in params
                     else "the other tier's answer", 0.0, group)

    settings = parse_settings({"learning": {"judged": {"enabled": True, "share": 0.5, "keep_free": 0},
                                            "store": {"path": str(tmp_path / "labels.db")}}})
    engine = RouterEngine(settings, source="test")
    engine.learning.attach(complete)
    draws = iter([0.9, 0.1])  # the first request is not drawn, the second is
    engine.learning._sampler._draw = lambda: next(draws)
    try:
        for call_id in ("not-drawn", "drawn"):
            engine.route(body(SIMPLE_PROMPT, call_id))
            engine.observe(served(call_id, "gemma4-fast"), 0.0, 1.0, ok=True, answer="the fast answer")
        while engine.learning.in_progress:
            await asyncio.sleep(0.01)
        assert [group for group, _ in calls] == ["gemma4-smart", "gemma4-smart"]  # the answer, then the judge
        assert all(meta[SAMPLE_KEY]["parent"] == "drawn" for _, meta in calls)

        # The sample's own calls come back through the same callbacks: they change no signal.
        samples_before = engine.signals.latency.tier("smart").samples
        for n, (group, meta) in enumerate(calls):
            assert engine.observe(served(f"sample-{n}", group, meta), 0.0, 9.0, ok=True, answer="x") is None
            assert engine.observe(served(f"sample-{n}", group, meta), 0.0, 9.0, ok=False) is None
        assert engine.signals.latency.tier("smart").samples == samples_before
        assert engine.signals.latency.tier("smart").consecutive_failures == 0
        assert engine.signals.latency.in_flight("smart") == 0

        assert engine.learning.writer is not None and engine.learning.writer.flush()
        with sqlite3.connect(tmp_path / "labels.db") as db:
            assert db.execute("SELECT source, needs_strong, grade, tier FROM labels").fetchall() == [
                ("judge", 1, 2, "fast")]
    finally:
        engine.close()


def test_the_profile_in_use_and_its_fit_are_metrics(tmp_path: Path) -> None:
    engine = RouterEngine(parse_settings({}), source="test")
    families = {family.name: family for family in metrics.gauges(engine.stats())}
    info = families["stratum_profile_info"].samples
    assert [(s.labels["profile"], s.value) for s in info] == [("default", 1)]
    assert families["stratum_profile_labels"].samples[0].value == builtin("default").labels > 0
    assert "stratum_profile_fitted_timestamp_seconds" in families
    engine.close()
