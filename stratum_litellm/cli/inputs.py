"""What every command reads: the settings in force, an offline snapshot, requests from JSON."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ..config import CONFIG_ENV, StratumSettings, load_settings, resolve_settings
from ..routing.decision import Decision
from ..routing.policy import Policy
from ..scoring.view import RequestView
from ..signals.snapshot import Signals, SignalSnapshot

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


def settings_for(config: str | None) -> tuple[StratumSettings, str]:
    """``--config FILE``, else ``$STRATUM_CONFIG``, else ./litellm_config.yaml, else the defaults."""
    if config:
        return load_settings(config), config
    if not os.environ.get(CONFIG_ENV) and Path("litellm_config.yaml").is_file():
        return load_settings("litellm_config.yaml"), "litellm_config.yaml"
    return resolve_settings()


def policy_for(settings: StratumSettings, source: str, profile: str | None = None) -> Policy:
    """The policy of these settings, with ``--profile`` in place of ``complexity.profile``
    when given (read from the working directory)."""
    if profile is not None:
        settings = settings.model_copy(update={"complexity": settings.complexity.model_copy(update={"profile": str(
            Path(profile).resolve()) if profile not in ("default", "handmade") else profile})})
    return Policy(settings, source=source)


def offline_snapshot(settings: StratumSettings) -> SignalSnapshot:
    # Scoring offline reads no live signal: every capacity rule abstains.
    return Signals(settings).snapshot()


def decide(policy: Policy, view: RequestView, snapshot: SignalSnapshot) -> Decision:
    decision = policy.decide(view, policy.settings.routed_model, snapshot)
    assert decision is not None  # the routed alias always gets a decision
    return decision


def view_of(record: Any) -> RequestView:
    """The request of one JSON line: ``{"prompt": ...}`` or ``{"messages": [...]}``."""
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    if "messages" in record:
        return RequestView.from_request({"messages": record["messages"], "tools": record.get("tools")})
    prompt = record.get("prompt")
    if not isinstance(prompt, str):
        raise ValueError("each line needs a string 'prompt' or a 'messages' list")
    return RequestView.from_prompt(prompt)


def read_views(path: str, command: str) -> list[RequestView]:
    """Every request of a JSON-lines file (``-``: stdin); a bad line is skipped, and said so."""
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    views = []
    with stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                views.append(view_of(json.loads(line)))
            except (ValueError, TypeError) as exc:
                print(f"stratum {command}: skipping line {number}: {exc}", file=sys.stderr)
    return views
