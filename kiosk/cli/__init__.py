"""The `kiosk` command: a thin dispatcher. Each command group lives in its own module under
kiosk/cli/ and exposes `register(subparsers)`; the commands only wire pipeline stages."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from kiosk import KioskError, __version__

#: Command modules, in the order their commands appear in --help.
COMMAND_MODULES = (
    "kiosk.cli.query",     # ask, search
    "kiosk.cli.content",   # content import/validate/rollback/list/export/bundle/pull
    "kiosk.cli.speech",    # say
    "kiosk.cli.models",    # models install/list, doctor
    "kiosk.cli.service",   # run, report
    "kiosk.cli.staff",     # admin, keys
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="Offline Japanese voice-search kiosk for city information.",
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    parser.add_argument("--config", help="config file (default: $KIOSK_CONFIG or ./kiosk.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command group not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
