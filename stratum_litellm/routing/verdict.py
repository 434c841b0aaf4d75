"""What one capacity check says: pass, block (with the reason), abstain (with why), probe."""

from __future__ import annotations

from typing import Literal, NamedTuple

from .decision import Reason

Kind = Literal["pass", "block", "abstain", "probe"]


class Verdict(NamedTuple):
    """A tuple, so the few made per decision are cheap to build and to read."""

    kind: Kind
    #: As the decision's ``evidence["checks"]`` shows it: the kind, then what the check read.
    text: str
    #: The reason the decision carries when this verdict decides it (block, probe).
    reason: Reason | None = None
    #: The custom rule that blocked, when ``reason`` is :attr:`Reason.RULE`.
    rule: str | None = None


PASS = Verdict("pass", "pass")


def block(reason: Reason, why: str = "", rule: str | None = None) -> Verdict:
    """Hold the smart tier off; the request goes to the fast tier because of ``reason``."""
    return Verdict("block", f"block: {why}" if why else "block", reason, rule)


def abstain(why: str) -> Verdict:
    """The check's signal is unknown: it neither allows nor holds off, and says why."""
    return Verdict("abstain", f"abstain: {why}")


def probe(why: str) -> Verdict:
    """Let this one request through as the half-open probe of a tier held off by the SLA."""
    return Verdict("probe", f"probe: {why}", Reason.SLA_PROBE)
