"""The seeded texts the timing benchmarks score and route (realistic mixes of prose, code
and math), and LiteLLM's built-in complexity router to compare with."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

PROSE = [
    "The committee reviewed the proposal in detail and asked for a clearer account of the risks before approving the budget.",
    "Explain why the Roman Republic gave way to the Empire, and compare the roles of Caesar and Augustus in that change.",
    "Our team migrated the billing service last spring; since then, latency has dropped but the error rate doubled at peak hours.",
    "Please summarise the attached meeting notes in five bullet points and list every decision that still needs an owner.",
    "A patient presents with fatigue and shortness of breath; what are the most likely causes, and which tests come first?",
    "Write a short, friendly reply thanking the customer for the feedback and promising a fix in the next release.",
    "If the court finds that the contract was never formed, the plaintiff cannot recover damages for breach, except in restitution.",
]
CODE = [
    "def moving_average(xs, k):\n    out = []\n    for i in range(len(xs) - k + 1):\n        out.append(sum(xs[i:i + k]) / k)\n    return out\n",
    "const fetchUser = async (id) => {\n  const res = await fetch(`/api/users/${id}`);\n  if (!res.ok) throw new Error(res.status);\n  return res.json();\n};\n",
    "SELECT u.name, COUNT(o.id) AS orders\nFROM users u LEFT JOIN orders o ON o.user_id = u.id\nGROUP BY u.name ORDER BY orders DESC;\n",
    "fn parse(line: &str) -> Option<(u32, u32)> {\n    let mut it = line.split(',');\n    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))\n}\n",
    "#include <stdio.h>\nint main(void) {\n    for (int i = 0; i < 10; i++) printf(\"%d\\n\", i * i);\n    return 0;\n}\n",
]
MATH = [
    "Solve for x: 3x + 7 = 22, then compute x^2 - 4x + 4 and explain each step.",
    "Let f(x) = x^3 - 6x^2 + 11x - 6. Find all roots and prove that f has no other real zeros.",
    "A train travels 120 km in 1.5 hours, then 80 km at twice the speed. What is its average speed in km/h?",
    "Show that \\sum_{k=1}^{n} k = n(n+1)/2 by induction, and give the value for n = 100.",
]


def realistic_text(size: int, rng: random.Random) -> str:
    """About 55% prose, 25% code, 20% math, cut at ``size`` characters."""
    parts: list[str] = []
    total = 0
    while total < size:
        kind = rng.random()
        piece = rng.choice(PROSE if kind < 0.55 else CODE if kind < 0.8 else MATH)
        parts.append(piece)
        total += len(piece) + 1
    return "\n".join(parts)[:size]


def litellm_classifier() -> Callable[[str], object]:
    """``ComplexityRouter.classify``: LiteLLM's heuristic scorer (no LLM call)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

    tiers = {"SIMPLE": "fast", "MEDIUM": "fast", "COMPLEX": "smart", "REASONING": "smart"}
    router = ComplexityRouter(model_name="auto", litellm_router_instance=None, complexity_router_config={"tiers": tiers})
    return router.classify
