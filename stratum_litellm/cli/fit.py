"""``stratum fit``: a profile of your own, from your labels, measured against the one in use.

    stratum fit                                  # the labels in the store the config names
    stratum fit --labels labels.jsonl            # or files of {"prompt"|"messages", "needs_strong"}
    stratum fit --out profiles/mine.json         # write it (refused if worse, unless --force)

Prints the held-out APGR and AUROC of the new profile (cross-validated) and of the current
one on the same folds, and the share of these requests each tier would get at the current
entry scores. Exit 0 (written, or nothing asked), 1 (refused: worse than the current one),
2 (bad input: too few labels, a bad line, an unreadable file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from ..routing.ladder import Ladder
from ..config import StratumSettings
from ..learning.fit import TOLERANCE, Fit, fit, shares
from ..learning.labels import Label, LabelsError, read_file
from ..learning.store import Store, StoreError, store_path
from ..scoring.profile import Profile, ProfileError, load_profile, settings_folder
from .inputs import EXIT_BAD_CONFIG, EXIT_FAILED, EXIT_OK, settings_for


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("fit", help="fit a scoring profile to labels and compare it with the one in use")
    parser.add_argument("--config", help="settings file (default: $STRATUM_CONFIG or ./litellm_config.yaml)")
    parser.add_argument("--labels", action="append", default=[], metavar="FILE",
                        help='JSON lines {"prompt"|"messages", "needs_strong"} (repeatable)')
    parser.add_argument("--store", action="append", default=[], metavar="PATH",
                        help="a label store (repeatable; default: learning.store.path, unless --labels is given)")
    parser.add_argument("--source", action="append", default=[], help="only the store's labels of this source")
    parser.add_argument("--out", metavar="PROFILE", help="write the profile here (JSON)")
    parser.add_argument("--force", action="store_true", help="write it even when it ranks worse than the current one")
    parser.add_argument("--base", default="default",
                        help="the profile to build on: default, handmade, current, or a file (default: default)")
    parser.add_argument("--keep-share", action="store_true",
                        help="keep the current share of these requests above the second tier's entry score "
                             "(default: the score becomes the chance that a request needs the stronger tier)")
    parser.add_argument("--name", help="the profile's name (default: the --out file's name)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings, source = settings_for(args.config)
    started = time.perf_counter()
    try:
        current = load_profile(settings.complexity.profile, settings_folder(source))
        base = current if args.base == "current" else load_profile(args.base, os.getcwd())
        labels = _labels(args, settings, source)
        entries = list(Ladder.of(settings).entry)
        result = fit(labels, current, base, name=args.name or (Path(args.out).stem if args.out else "fitted"),
                     keep_share_at=entries[1] if args.keep_share else None)
    except (LabelsError, ProfileError, StoreError) as exc:
        print(f"stratum fit: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    _report(result, current, labels, settings, time.perf_counter() - started)
    if not args.out:
        return EXIT_OK
    if result.worse and not args.force:
        print(f"\nnot written: the new profile ranks these labels worse than the current one (APGR "
              f"{result.new.apgr:.3f} < {result.current.apgr:.3f} - {TOLERANCE}); --force writes it anyway",
              file=sys.stderr)
        return EXIT_FAILED
    write(result.profile, Path(args.out))
    print(f"\nwrote {args.out}: name it in complexity.profile (a running gateway picks a new file up at its "
          "next reload look)")
    return EXIT_OK


def _labels(args: argparse.Namespace, settings: StratumSettings, source: str) -> list[Label]:
    labels: list[Label] = []
    for file in args.labels:
        labels.extend(read_file(file))
    stores = list(args.store) or ([] if args.labels else [str(store_path(settings, source))])
    for path in stores:
        if not Path(path).is_file():
            raise LabelsError(f"no label store at {path} (learning.store.path); collect labels first, or give --labels")
        store = Store(path)
        try:
            labels.extend(store.labels(sources=args.source or None))
        finally:
            store.close()
    return labels


def _report(result: Fit, current: Profile, labels: list[Label], settings: StratumSettings, seconds: float) -> None:
    sources = ", ".join(f"{name} {count}" for name, count in sorted(result.by_source.items()))
    print(f"{result.labels} labels ({sources}): {result.needs_strong} needs the stronger tier, "
          f"{result.labels - result.needs_strong} first tier enough")
    in_sample = ""
    until = current.fitted.get("labels_until")
    if isinstance(until, (int, float)) and any(label.created and label.created <= until for label in labels):
        in_sample = "  (in-sample: it was fitted on some of these labels)"
    print(f"\n{'':<28}{'APGR':>7}{'AUROC':>8}   held out over {result.folds} folds")
    print(f"{'current (' + current.name + ')':<28}{result.current.apgr:>7.3f}{result.current.auroc:>8.3f}   "
          f"as it is{in_sample}")
    print(f"{'new (' + result.profile.name + ')':<28}{result.new.apgr:>7.3f}{result.new.auroc:>8.3f}   "
          f"cross-validated, strength {result.strength}")
    ladder = Ladder.of(settings)
    entries = list(ladder.entry)
    now, then = shares(current, labels, entries), shares(result.profile, labels, entries)
    print("\nshare of these requests per tier at the current entry scores:")
    print(f"  {'tier':<20}{'entry':>7}{'current':>9}{'new':>8}")
    for tier, entry, a, b in zip(ladder.local, entries, now, then):
        print(f"  {tier:<20}{entry:>7}{a:>9.1%}{b:>8.1%}")
    text = result.profile.text
    print(f"\nlearned part: {len(text.indices) if text else 0} words and word pairs; fitted in {seconds:.1f} s")


def write(profile: Profile, path: Path) -> None:
    """Write a profile atomically: a gateway watching the file never reads half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(profile.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")
    tmp.replace(path)

