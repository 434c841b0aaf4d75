#!/usr/bin/env python3
"""Fit the shipped default profile (stratum_litellm/scoring/data/profile.json).

The default profile is the hand-made one (data/weights.json, from scripts/fit_scorer.py)
plus a learned part over the words of the prompt, fitted by the same code as ``stratum
fit`` (stratum_litellm.learning.fit) on the labelled dev prompts. Its strength is chosen by
what the routing-quality harness measures, not by the pooled labels: held-out APGR per
benchmark and mixed (benchmarks weighted equally), over two-way splits of the dev set
(sha256 of seed/id, seeds 0-4, each half held out in turn). Its bias then keeps the
hand-made profile's share of the dev prompts at the default threshold (0.65), so the
default routing share does not move.

    python scripts/fit_profile.py --data ../shared/eval/routellm_dev.jsonl            # choose, fit, write
    python scripts/fit_profile.py --data ../shared/eval/routellm_dev.jsonl --dry-run

Needs numpy and scipy (the ``learn`` extra). Deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fit_scorer import load_harness  # noqa: E402
from stratum_litellm.learning import fit as learning  # noqa: E402
from stratum_litellm.learning.labels import read_file  # noqa: E402
from stratum_litellm.scoring.profile import builtin  # noqa: E402

OUT = ROOT / "stratum_litellm" / "scoring" / "data" / "profile.json"
THRESHOLD = 0.65
MAX_FEATURES = 10_000
SEEDS = (0, 1, 2, 3, 4)
GROUPS = ("gsm8k", "mmlu", "mt_bench", "mixed")


def half(seed: int, row_id: str) -> int:
    return int(hashlib.sha256(f"{seed}/{row_id}".encode()).hexdigest()[:8], 16) % 2


def held_out(harness, items, labels, rows, strength: float | None) -> np.ndarray:
    """Mean held-out APGR (per benchmark, mixed) of a fit at ``strength`` (None: the hand-made profile)."""
    handmade = builtin("handmade")
    results = []
    for seed in SEEDS:
        halves = [half(seed, r["id"]) for r in rows]
        for k in (0, 1):
            train = [labels[i] for i, h in enumerate(halves) if h != k]
            test = [i for i, h in enumerate(halves) if h == k]
            profile = handmade
            if strength is not None:
                X, offset, y, w = learning._design(train, handmade, learning.BITS)
                columns = np.unique(X.indices)
                model = learning._train(X[:, columns], offset, y, w, strength)
                profile = learning._fold(model, columns, handmade, learning.BITS, "cv", MAX_FEATURES)
            scores = np.array([profile.logit(labels[i].example.levels, labels[i].example.hashes) for i in test])
            found = harness.evaluate_all([scores], [items[i] for i in test], 10)
            results.append([found[g]["APGR"] for g in GROUPS])
    return np.mean(results, axis=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "eval" / "routellm_dev.jsonl")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    harness = load_harness(args.data)
    items, _ = harness.load_export(str(args.data))
    rows = [json.loads(line) for line in args.data.open(encoding="utf-8") if line.strip()]
    labels = list(read_file(args.data))
    assert [i.id for i in items] == [r["id"] for r in rows]

    print(f"{len(labels)} labelled prompts; held-out APGR over {2 * len(SEEDS)} halves")
    print(f"{'profile':<22}" + "".join(f"{g:>10}" for g in GROUPS))
    table = {None: held_out(harness, items, labels, rows, None)}
    print(f"{'hand-made (in-sample)':<22}" + "".join(f"{v:>10.3f}" for v in table[None]))
    for strength in learning.STRENGTHS:
        table[strength] = held_out(harness, items, labels, rows, strength)
        print(f"{'learned, ' + str(strength):<22}" + "".join(f"{v:>10.3f}" for v in table[strength]), flush=True)
    chosen = max(learning.STRENGTHS, key=lambda s: (round(table[s][3], 4), -s))
    print(f"chosen strength {chosen}: mixed {table[chosen][3]:.3f} (hand-made, fitted on all of these: "
          f"{table[None][3]:.3f})")

    handmade = builtin("handmade")
    result = learning.fit(labels, handmade, handmade, name="default", keep_share_at=THRESHOLD,
                          strengths=[chosen], max_features=MAX_FEATURES)
    fitted = dict(result.profile.fitted)
    fitted["data_sha256"] = hashlib.sha256(args.data.read_bytes()).hexdigest()
    fitted["held_out_apgr"] = {g: round(float(v), 4) for g, v in zip(GROUPS, table[chosen])}
    fitted["handmade_apgr"] = {g: round(float(v), 4) for g, v in zip(GROUPS, table[None])}
    fitted["by"] = "scripts/fit_profile.py"
    fitted.pop("labels_until", None)  # these labels are not the deployment's: every label of it is newer
    document = result.profile.to_json()
    document["fitted"] = fitted
    share = learning.shares(result.profile, labels, [0.0, THRESHOLD])[1]
    print(f"share at {THRESHOLD}: {share:.1%} (hand-made {learning.shares(handmade, labels, [0.0, THRESHOLD])[1]:.1%}); "
          f"{len(result.profile.text.indices) if result.profile.text else 0} learned features")
    if not args.dry_run:
        OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
