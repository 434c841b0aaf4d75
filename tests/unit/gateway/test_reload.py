"""Live reload of the settings file: valid edits apply, invalid ones are refused."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import SIMPLE_PROMPT
from waiting import wait_until
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.gateway.reload import ConfigWatcher
from stratum_litellm.config import load_settings


def write(path: Path, text: str) -> None:
    path.write_text(text)
    # Make the change visible even within one mtime tick.
    stamp = time.time_ns() + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def test_valid_edits_apply_and_invalid_ones_keep_the_last_good(tmp_path: Path) -> None:
    path = tmp_path / "stratum.yaml"
    write(path, "complexity: {threshold: 0.65}\n")
    engine = RouterEngine(load_settings(path), source=str(path))
    errors: list[str] = []
    watcher = ConfigWatcher(path, engine.apply_settings, errors.append, interval_s=0.05)
    assert watcher.check_once() is None  # unchanged

    body = {"model": "gemma4-auto", "messages": [{"role": "user", "content": SIMPLE_PROMPT}]}
    assert engine.route(dict(body)).tier == "fast"
    write(path, "complexity: {threshold: 0.0}\naffinity: {enabled: false}\n")
    assert watcher.check_once() is True
    assert engine.route(dict(body)).tier == "smart"

    write(path, "complexity: {threshold: 7}\n")
    assert watcher.check_once() is False
    assert "complexity.threshold" in errors[-1] and str(path) in errors[-1]
    assert engine.settings.complexity.threshold == 0.0  # the last good settings stay

    write(path, "python_rules: [{callable: 'no_such_module_here:rule'}]\n")
    assert watcher.check_once() is False and "cannot load" in errors[-1]
    assert engine.settings.complexity.threshold == 0.0


def test_the_watcher_thread_applies_an_edit_within_its_interval(tmp_path: Path) -> None:
    path = tmp_path / "stratum.yaml"
    write(path, "latency: {sla_ms: 2000}\n")
    engine = RouterEngine(load_settings(path), source=str(path))
    engine.watch(str(path))
    try:
        write(path, "latency: {sla_ms: 750}\nreload: {interval_s: 0.1}\n")
        assert wait_until(lambda: engine.settings.latency.sla_ms == 750), "the edit was never applied"
    finally:
        engine.close()


def test_an_edit_of_the_reload_interval_takes_effect(tmp_path: Path) -> None:
    path = tmp_path / "stratum.yaml"
    write(path, "reload: {interval_s: 0.1}\n")
    engine = RouterEngine(load_settings(path), source=str(path))
    engine.watch(str(path))
    try:
        write(path, "reload: {interval_s: 30}\n")
        assert wait_until(lambda: engine.settings.reload.interval_s == 30), "the edit was never applied"
        assert engine._watcher is not None and engine._watcher.interval_s == 30
        # The watcher now looks every 30 s: an edit made now is not seen within a few old intervals.
        write(path, "reload: {interval_s: 30}\nlatency: {sla_ms: 750}\n")
        time.sleep(0.6)
        assert engine.settings.latency.sla_ms == 2000
    finally:
        engine.close()


def test_an_edit_that_turns_reload_off_stops_the_watching(tmp_path: Path) -> None:
    path = tmp_path / "stratum.yaml"
    write(path, "reload: {interval_s: 0.1}\n")
    engine = RouterEngine(load_settings(path), source=str(path))
    engine.watch(str(path))
    try:
        write(path, "reload: {enabled: false, interval_s: 0.1}\n")
        assert wait_until(lambda: not engine.settings.reload.enabled), "the edit was never applied"
        assert wait_until(lambda: engine._watcher is None), "the watcher kept running"
        write(path, "reload: {enabled: false, interval_s: 0.1}\nlatency: {sla_ms: 750}\n")
        time.sleep(0.5)
        assert engine.settings.latency.sla_ms == 2000  # no longer watched, as the setting says
    finally:
        engine.close()
