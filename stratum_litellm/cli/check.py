"""``stratum check``: validate a config file without starting anything (exit 0, or 2)."""

from __future__ import annotations

import argparse
import sys

from ..config import SettingsError, load_settings
from ..routing.policy import Policy
from .inputs import EXIT_BAD_CONFIG, EXIT_OK


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
        Policy(settings, source=args.file)  # loads python_rules too
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_CONFIG
    print(f"ok: {args.file}: routed model {settings.routed_model!r} -> "
          f"{settings.model_group('fast')} / {settings.model_group('smart')}, "
          f"threshold {settings.complexity.threshold}, {len(settings.rules)} config rules")
    return EXIT_OK
