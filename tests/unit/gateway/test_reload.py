"""Live reload of the settings file: valid edits apply, invalid ones are refused."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def watched(path: Path, first: str) -> Iterator[RouterEngine]:
    """An engine started on ``path`` (written with ``first``) and watching it; closed after."""
    write(path, first)
    engine = RouterEngine(load_settings(path), source=str(path))
    engine.watch(str(path))
    try:
        yield engine
    finally:
        engine.close()


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
    with watched(path, "latency: {sla_ms: 2000}\n") as engine:
        write(path, "latency: {sla_ms: 750}\nreload: {interval_s: 0.1}\n")
        assert wait_until(lambda: engine.settings.latency.sla_ms == 750), "the edit was never applied"


def test_an_edit_of_the_reload_interval_takes_effect(tmp_path: Path) -> None:
    path = tmp_path / "stratum.yaml"
    with watched(path, "reload: {interval_s: 0.1}\n") as engine:
        watcher = engine._watcher
        assert watcher is not None
        write(path, "reload: {interval_s: 30}\n")
        assert wait_until(lambda: engine.settings.reload.interval_s == 30), "the edit was never applied"
        # The watcher's thread now waits 30 s between two looks.
        assert wait_until(lambda: watcher.waiting_s == 30), f"the watcher waits {watcher.waiting_s} s"


def test_an_edit_that_turns_reload_off_stops_the_watching(tmp_path: Path) -> None:
    path = tmp_path / "stratum.yaml"
    with watched(path, "reload: {interval_s: 0.1}\n") as engine:
        watcher = engine._watcher
        assert watcher is not None and watcher._thread is not None
        thread = watcher._thread
        write(path, "reload: {enabled: false, interval_s: 0.1}\n")
        assert wait_until(lambda: not engine.settings.reload.enabled), "the edit was never applied"
        assert wait_until(lambda: engine._watcher is None), "the watcher kept running"
        assert wait_until(lambda: not thread.is_alive()), "the watching thread kept running"


def test_an_error_no_one_expected_is_refused_and_counted_like_a_bad_value(tmp_path: Path) -> None:
    path = tmp_path / "stratum.yaml"
    write(path, "latency: {sla_ms: 2000}\n")
    engine = RouterEngine(load_settings(path), source=str(path))
    errors: list[str] = []

    def broken(settings: object) -> None:
        raise RuntimeError("disk on fire")

    watcher = ConfigWatcher(path, broken, errors.append)
    write(path, "latency: {sla_ms: 750}\n")
    assert watcher.check_once() is False
    assert errors and str(path) in errors[-1] and "unexpected RuntimeError" in errors[-1] and "disk on fire" in errors[-1]
    assert engine.settings.latency.sla_ms == 2000


def test_a_file_gone_or_cut_short_mid_write_keeps_the_running_settings(tmp_path: Path) -> None:
    path = tmp_path / "stratum.yaml"
    write(path, "latency: {sla_ms: 2000}\n")
    engine = RouterEngine(load_settings(path), source=str(path))
    errors: list[str] = []
    watcher = ConfigWatcher(path, engine.apply_settings, errors.append)
    write(path, "latency: {sla_ms: 75")  # an editor's save seen half-way
    assert watcher.check_once() is False and "not valid YAML" in errors[-1]
    path.unlink()  # between an editor's delete and its write: nothing to read, nothing changes
    assert watcher.check_once() is None and len(errors) == 1
    write(path, "latency: {sla_ms: 750}\n")
    assert watcher.check_once() is True and engine.settings.latency.sla_ms == 750


def test_a_key_read_only_at_start_is_named_as_needing_a_restart(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "stratum.yaml"
    with watched(path, "shared_state: {mode: auto}\nreload: {interval_s: 0.1}\n") as engine:
        with caplog.at_level(logging.WARNING, logger="stratum_litellm"):
            write(path, "shared_state: {mode: 'off'}\nreload: {interval_s: 0.1}\nlatency: {sla_ms: 750}\n")
            assert wait_until(lambda: engine.settings.latency.sla_ms == 750), "the edit was never applied"
            # Named once the new settings are in force (the watcher's thread logs it after).
            assert wait_until(lambda: any("shared_state.mode changed" in r.getMessage()
                                          and "restarts" in r.getMessage() for r in caplog.records)), \
                [r.getMessage() for r in caplog.records]
        assert engine.settings.shared_state.mode == "auto"  # the running value, as it runs
