"""Python rules the end-to-end tests load into a real gateway through ``python_rules``."""

from __future__ import annotations

from stratum_litellm.routing.rules import RuleInput, RuleOutcome

BREAK_WORD = "BREAK-THE-ROUTER-STATE"


def sabotage(inp: RuleInput) -> RuleOutcome | None:
    """Corrupts the running router's state on request, so the next decisions fail inside
    the router: the way to show that a broken router still serves every request."""
    if BREAK_WORD in inp.view.last_user:
        import stratum_litellm.gateway.plugin as plugin

        handler = plugin.__getattr__("proxy_handler")
        handler.engine.signals = None  # every later snapshot() now raises AttributeError
    return None
