"""``stratum labels``: what the label store holds, and the operator's hands on it.

    stratum labels stats                          # labels by source and verdict, decisions kept
    stratum labels export [--out FILE]            # JSON lines (with "prompt" where text is kept)
    stratum labels purge --older-than 90 | --source judge | --all
    stratum labels import-openwebui --url http://webui:8080 --key $OPENWEBUI_ADMIN_KEY

The store is the one ``learning.store.path`` names (``--store PATH`` for another).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from ..config import StratumSettings
from ..learning import openwebui
from ..learning.labels import SOURCES
from ..learning.store import Store, StoreError, store_path
from .inputs import EXIT_BAD_CONFIG, EXIT_FAILED, EXIT_OK, settings_for


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("labels", help="the label store: stats, export, purge, import-openwebui")
    actions = parser.add_subparsers(dest="action", required=True)
    for name, helptext in (("stats", "labels by source and verdict, and the decisions kept"),
                           ("export", "every label as JSON lines"),
                           ("purge", "delete labels"),
                           ("import-openwebui", "users' thumbs up/down from Open WebUI, joined to the decisions")):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("--config", help="settings file (default: $STRATUM_CONFIG or ./litellm_config.yaml)")
        action.add_argument("--store", help="the label store (default: learning.store.path)")
        action.set_defaults(run=run)
        if name == "export":
            action.add_argument("--out", help="write here (default: standard output)")
            action.add_argument("--source", choices=SOURCES)
        elif name == "purge":
            action.add_argument("--older-than", type=float, metavar="DAYS")
            action.add_argument("--source", choices=SOURCES)
            action.add_argument("--all", action="store_true", help="every label and decision")
        elif name == "import-openwebui":
            action.add_argument("--url", default=os.environ.get("OPENWEBUI_URL"),
                                help="Open WebUI's address (default: $OPENWEBUI_URL)")
            action.add_argument("--key", default=os.environ.get("OPENWEBUI_API_KEY"),
                                help="an admin's API key (default: $OPENWEBUI_API_KEY)")


def run(args: argparse.Namespace) -> int:
    settings, source = settings_for(args.config)
    path = Path(args.store) if args.store else store_path(settings, source)
    if args.action != "import-openwebui" and not path.is_file():
        print(f"stratum labels: no label store at {path}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        store = Store(path, settings.learning.store.keep_text, settings.learning.store.text_retention_days,
                      settings.learning.store.decision_retention_days)
    except StoreError as exc:
        print(f"stratum labels: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        return {"stats": _stats, "export": _export, "purge": _purge, "import-openwebui": _import}[args.action](
            args, store, settings)
    finally:
        store.close()


def _when(at: float | None) -> str:
    return "-" if at is None else datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _stats(args: argparse.Namespace, store: Store, settings: StratumSettings) -> int:
    stats = store.stats()
    print(f"label store {stats['path']}: {stats['labels']} labels, {stats['with_text']} with text")
    if stats["by"]:
        print(f"\n  {'source':<14}{'verdict':<16}{'labels':>7}   first             last")
        for row in stats["by"]:
            verdict = "needs strong" if row["needs_strong"] else "first enough"
            print(f"  {row['source']:<14}{verdict:<16}{row['count']:>7}   {_when(row['first']):<18}{_when(row['last'])}")
    print(f"\ndecisions kept for Open WebUI's ratings: {stats['decisions']}"
          + (f" ({_when(stats['decisions_first'])} to {_when(stats['decisions_last'])})" if stats["decisions"] else ""))
    return EXIT_OK


def _export(args: argparse.Namespace, store: Store, settings: StratumSettings) -> int:
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    count = 0
    try:
        for label in store.labels(sources=[args.source] if args.source else None):
            record: dict[str, Any] = {"ref": label.ref, "created": label.created, "source": label.source,
                                      "needs_strong": label.needs_strong, "weight": label.weight,
                                      "tier": label.tier, "score": label.score, "profile": label.profile,
                                      "grade": label.grade,
                                      "features": json.loads(label.example.features_json())}
            if label.example.text is not None:
                record["prompt"] = label.example.text
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"exported {count} labels" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return EXIT_OK


def _purge(args: argparse.Namespace, store: Store, settings: StratumSettings) -> int:
    if not (args.all or args.older_than is not None or args.source):
        print("stratum labels purge: say what to delete: --older-than DAYS, --source SOURCE or --all", file=sys.stderr)
        return EXIT_FAILED
    removed = store.purge(None if args.all else args.older_than, None if args.all else args.source)
    print(f"deleted {removed} labels from {store.path}")
    return EXIT_OK


def _import(args: argparse.Namespace, store: Store, settings: StratumSettings) -> int:
    if not args.url or not args.key:
        print("stratum labels import-openwebui: give --url and --key (an admin's API key), or set OPENWEBUI_URL "
              "and OPENWEBUI_API_KEY", file=sys.stderr)
        return EXIT_FAILED
    try:
        ratings = openwebui.fetch_ratings(args.url, args.key)
    except (httpx.HTTPError, PermissionError, ValueError) as exc:
        print(f"stratum labels import-openwebui: {exc}", file=sys.stderr)
        return EXIT_FAILED
    found = openwebui.labels_of(ratings, store.decisions(), time.time())
    store.add(found.labels)
    rated = sum(1 for label in found.labels if label.source == "openwebui")
    print(f"{found.ratings} ratings read from {args.url}: {rated} labels from ratings of first-tier answers, "
          f"{found.regenerations} from regenerated first-tier answers (weight {openwebui.REGENERATION_WEIGHT})")
    print(f"  not joined: {found.unjoined} (no decision recorded for that answer: given before the set-up, or "
          f"older than learning.store.decision_retention_days)")
    print(f"  no label: {found.stronger_tier} (ratings of a stronger tier's answers say nothing of the first tier)")
    if not settings.learning.feedback.enabled:
        print("  note: learning.feedback.enabled is off in these settings: the gateway records no new decisions",
              file=sys.stderr)
    return EXIT_OK
