"""The `kiosk` command: a thin dispatcher. Each command group lives in its own module under
kiosk/cli/ and exposes `register(subparsers)`; the commands only wire pipeline stages."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import unicodedata
from collections.abc import Sequence

from kiosk import KioskError, __version__, i18n
from kiosk.cli.exit_codes import ExitCode
from kiosk.config import configured_language
from kiosk.i18n import _
from kiosk.progress import TerminalReporter, default_reporter, set_default_reporter

#: Command modules, in the order their commands appear in --help.
COMMAND_MODULES = (
    "kiosk.cli.query",     # ask, search
    "kiosk.cli.content",   # content import/validate/rollback/list/export/bundle/pull
    "kiosk.cli.speech",    # say
    "kiosk.cli.models",    # models install/list, doctor
    "kiosk.cli.service",   # run, report
    "kiosk.cli.staff",     # admin, keys
)


# argparse's own words ("usage:", "error:", "show this help message and exit") come from
# the kiosk's catalog too (tools/catalogs.py extracts them from argparse).
argparse._ = i18n._  # type: ignore[attr-defined]
argparse.ngettext = i18n.ngettext  # type: ignore[attr-defined]


def display_width(text: str) -> int:
    """Columns a terminal gives the text (kanji and kana take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap_text(text: str, width: int) -> list[str]:
    """Wrap by terminal columns, breaking Japanese after 、。） or anywhere, Latin text at
    spaces (argparse's textwrap counts characters, so Japanese help ran twice too wide)."""
    lines: list[str] = []
    line = ""
    for ch in " ".join(text.split()):
        line += ch
        if display_width(line) <= width:
            continue
        cut = max(line.rfind(" "), *(line.rfind(p) + 1 for p in "、。）)"))
        if cut <= 0 or cut >= len(line) or display_width(line[:cut]) < width * 2 // 3:
            cut = len(line) - 1  # no break point near the end: break before this character
        lines.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    if line:
        lines.append(line)
    return lines


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, wrapping by display width."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap_text(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line for line in wrap_text(text, width - len(indent)))


def _use_formatter(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _use_formatter(child)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, its help in the current language (set it first)."""
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description=_("Offline Japanese voice-search kiosk for city information."),
        epilog=_("Exit codes: 0 = done, 1 = nothing found or problems found, 2 = bad input "
                   "(the message says what to fix), 130 = stopped with Ctrl+C. Messages in "
                   "English: KIOSK_LANG=en or [ui] language = \"en\"."),
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}",
                        help=_("show the version and exit"))
    parser.add_argument("--config",
                        help=_("config file (default: $KIOSK_CONFIG or ./kiosk.toml)"))
    parser.add_argument("-v", "--verbose", action="store_true", help=_("show debug logs"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command group not built yet
        module.register(sub)
    _use_formatter(parser)
    return parser


def _config_argument(argv: Sequence[str]) -> str | None:
    """--config from the command line, read before the parser exists (its help is in the
    config's language)."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--config")
    known, _rest = early.parse_known_args(argv)
    return known.config


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    i18n.set_language(configured_language(_config_argument(argv)))
    previous = default_reporter()
    set_default_reporter(TerminalReporter(sys.stderr))  # progress of long steps on stderr
    try:
        return _run(argv)
    finally:
        set_default_reporter(previous)


def _run(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return ExitCode.BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", ExitCode.BAD_INPUT))
    except KeyboardInterrupt:
        print(_("kiosk: stopped (Ctrl+C)."), file=sys.stderr)
        return ExitCode.INTERRUPTED
