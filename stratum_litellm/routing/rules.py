"""Custom routing rules: the ones operators write in the config, and Python callables.

A rule reads a :class:`RuleInput` and returns a :class:`RuleOutcome` (send to a tier, or
shift the complexity score) or ``None`` to stay out of it. Rules join the built-in chain at
a stated position and never replace it:

- ``first``: before the complexity rule. A tier decides outright; a score delta shifts the
  score the complexity rule compares with the threshold.
- ``capacity``: after the built-in capacity checks, only when the request would go to the
  smart tier. Returning the fast tier holds it off; anything else is ignored.
- ``last``: after every built-in rule; a tier overrides the decision (for example, a key
  that may never use the smart tier).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..config import PythonRuleSettings, RulePosition, RuleSettings, SettingsError, Tier
from ..scoring.scorer import Score
from ..scoring.view import RequestView
from ..signals.snapshot import SignalSnapshot
from .patterns import compile_pattern


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """Who is asking, from the gateway's auth and the request's metadata."""

    user_id: str | None = None
    team_id: str | None = None
    key_alias: str | None = None
    #: The request body's ``user`` field (the end user an app such as Open WebUI names).
    end_user: str | None = None
    #: The API key, as the gateway identifies it (its hash), never the key itself.
    key: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def owner(meta: RequestMeta, by: str) -> str | None:
    """Who holds a request, for the per-user in-flight limit (``fairness.by``)."""
    if by == "user":
        who = meta.end_user or meta.user_id
    elif by == "key":
        who = meta.key or meta.key_alias
    else:
        who = meta.headers.get(by.removeprefix("header:").lower())
    return who[:200] if isinstance(who, str) and who else None


@dataclass(frozen=True, slots=True)
class RuleInput:
    view: RequestView
    meta: RequestMeta
    score: Score
    #: The signal snapshot the decision reads.
    signals: SignalSnapshot


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    tier: Tier | None = None
    score_delta: float = 0.0


RuleFn = Callable[[RuleInput], "RuleOutcome | None"]


@dataclass(frozen=True, slots=True)
class NamedRule:
    name: str
    position: RulePosition
    fn: RuleFn


def run_rule(rule: NamedRule, inp: RuleInput, evidence: dict[str, Any]) -> RuleOutcome | None:
    """Run a custom rule, noting in ``evidence`` that it matched; a rule that raises or
    returns something else abstains and says so there (it must not take routing down)."""
    try:
        outcome = rule.fn(inp)
    except Exception as exc:
        evidence.setdefault("rule_errors", {})[rule.name] = f"{type(exc).__name__}: {exc}"[:200]
        return None
    if outcome is not None and not isinstance(outcome, RuleOutcome):
        evidence.setdefault("rule_errors", {})[rule.name] = f"returned {type(outcome).__name__}, not RuleOutcome"
        return None
    if outcome is not None:
        evidence.setdefault("rules_matched", []).append(rule.name)
    return outcome


def _keywords_regex(keywords: list[str]) -> re.Pattern[str] | None:
    if not keywords:
        return None
    # Whole words, any case: "contract" matches "Contract" but not "contractor".
    alternatives = "|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def compile_config_rule(rule: RuleSettings) -> NamedRule:
    """Turn a validated config rule into a callable rule."""
    keywords = _keywords_regex(rule.keywords)
    pattern = compile_pattern(rule.pattern) if rule.pattern is not None else None
    users, teams, aliases = frozenset(rule.users), frozenset(rule.teams), frozenset(rule.key_aliases)
    wanted_metadata = tuple(rule.metadata.items())
    wanted_headers = tuple((name.lower(), value) for name, value in rule.headers.items())
    outcome = RuleOutcome(tier=rule.route, score_delta=rule.score_delta or 0.0)

    def matches(inp: RuleInput) -> bool:
        meta, view = inp.meta, inp.view
        if users and meta.user_id not in users:
            return False
        if teams and meta.team_id not in teams:
            return False
        if aliases and meta.key_alias not in aliases:
            return False
        if not _fields_match(meta.metadata, wanted_metadata) or not _fields_match(meta.headers, wanted_headers):
            return False
        if rule.scope == "last_user":
            text = view.last_user
            length = len(text)
        else:
            text = "\n".join(t for t in (view.system, view.history, view.last_user) if t)
            length = view.total_chars
        if rule.min_chars is not None and length < rule.min_chars:
            return False
        if rule.max_chars is not None and length > rule.max_chars:
            return False
        if keywords is not None and keywords.search(text) is None:
            return False
        if pattern is not None and pattern.search(text) is None:
            return False
        return True

    def evaluate(inp: RuleInput) -> RuleOutcome | None:
        return outcome if matches(inp) else None

    return NamedRule(rule.name, rule.position, evaluate)


def _fields_match(fields: Mapping[str, Any], wanted: tuple[tuple[str, str], ...]) -> bool:
    for name, value in wanted:
        present = fields.get(name)
        if present is None or (value != "*" and str(present) != value):
            return False
    return True


def load_python_rule(spec: PythonRuleSettings, source: str = "settings") -> NamedRule:
    """Import ``package.module:function`` named in the config; a bad name stops start-up."""
    module_name, _, attr = spec.callable.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SettingsError(f"{source}: python_rules: cannot load {spec.callable!r}: {exc}") from None
    if not callable(fn):
        raise SettingsError(f"{source}: python_rules: {spec.callable!r} is not callable")
    return NamedRule(getattr(fn, "__name__", attr), spec.position, fn)
