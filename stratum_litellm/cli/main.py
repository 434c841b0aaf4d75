"""The ``stratum`` command line: one sub-command per module of this package."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..config import SettingsError
from . import calibrate, check, explain, fit, labels, score
from .inputs import EXIT_BAD_CONFIG, EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stratum", description="stratum-litellm adaptive router tools")
    sub = parser.add_subparsers(dest="command", required=True)

    scoring = sub.add_parser("score", help="score a prompt, or JSON lines on stdin")
    scoring.add_argument("prompt", nargs="?")
    scoring.add_argument("--jsonl", action="store_true", help="read {id, prompt|messages} lines on stdin")
    scoring.add_argument("--config", help="settings file (default: $STRATUM_CONFIG or ./litellm_config.yaml)")
    scoring.add_argument("--profile", help="score with this profile (a file, default or handmade) instead of the "
                                           "settings' complexity.profile")
    scoring.set_defaults(run=score.run)

    explaining = sub.add_parser("explain", help="show each dimension, the decision and the signals it read")
    explaining.add_argument("prompt")
    explaining.add_argument("--config")
    explaining.add_argument("--json", action="store_true")
    explaining.add_argument("--profile", help="explain with this profile instead of the settings' complexity.profile")
    explaining.set_defaults(run=explain.run)

    cal = sub.add_parser("calibrate", help="the threshold that sends a target share of requests to the smart tier")
    cal.add_argument("file", help="JSON lines {id, prompt} or {id, messages} (LiteLLM logging payloads work); - for stdin")
    cal.add_argument("--target-share", type=float, help="two tiers: e.g. 0.10 for 10%% of requests on the smart tier")
    cal.add_argument("--shares", help="a ladder: the share of each local tier, cheapest first, e.g. 80/15/5")
    cal.add_argument("--config")
    cal.add_argument("--write", action="store_true", help="write the threshold into the settings file")
    cal.set_defaults(run=calibrate.run)

    checking = sub.add_parser("check", help="validate a config file without starting anything")
    checking.add_argument("file")
    checking.set_defaults(run=check.run)

    fit.add_parser(sub)
    labels.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_CONFIG
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
