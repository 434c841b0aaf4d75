"""What one capacity check says: pass, block (with the reason), abstain (with why), probe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .decision import Reason

Kind = Literal["pass", "block", "abstain", "probe"]


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    #: What the check read, for people: shown after the kind in the decision's evidence.
    why: str = ""
    #: The reason the decision carries when this verdict decides it (block, probe).
    reason: Reason | None = None
    #: The custom rule that blocked, when ``reason`` is :attr:`Reason.RULE`.
    rule: str | None = None

    @property
    def text(self) -> str:
        """The verdict as the decision's ``evidence["checks"]`` shows it: ``"block: ..."``."""
        return f"{self.kind}: {self.why}" if self.why else self.kind


PASS = Verdict("pass")


def block(reason: Reason, why: str = "", rule: str | None = None) -> Verdict:
    """Hold the smart tier off; the request goes to the fast tier because of ``reason``."""
    return Verdict("block", why, reason, rule)


def abstain(why: str) -> Verdict:
    """The check's signal is unknown: it neither allows nor holds off, and says why."""
    return Verdict("abstain", why)


def probe(why: str) -> Verdict:
    """Let this one request through as the half-open probe of a tier held off by the SLA."""
    return Verdict("probe", why, Reason.SLA_PROBE)
