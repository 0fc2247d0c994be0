"""`kiosk content …`: staff import, validation, rollback, version list and CSV export.
The commands only wire kiosk.content.entries and kiosk.content.publishing; everything they print is made
here (the library functions return problems, never print)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from kiosk.config import load_settings
from kiosk.content.audit import AuditLog, local_user
from kiosk.content.entries import ContentError, ContentProblem
from kiosk.content.publishing import ContentPublisher, ensure_index
from kiosk.search.versions import VersionInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    content = subparsers.add_parser(
        "content", help="import, check, roll back and export the kiosk's content",
        description="Staff content tools. Formats (JSON Lines, CSV, Markdown) are described "
                    "in docs/content.md.")
    sub = content.add_subparsers(dest="content_command", metavar="SUBCOMMAND")
    content.set_defaults(func=lambda args: content.print_help() or 2)

    imp = sub.add_parser(
        "import", help="check content files and publish them as a new index version",
        description="Check every file; when all are correct, build a new index version and "
                    "make it live at once (a running kiosk picks it up). When anything is "
                    "wrong, every problem is listed and nothing changes.")
    _files_argument(imp)
    _index_option(imp)
    imp.add_argument("--who", help="name recorded with the version (default: your login)")
    imp.add_argument("--note", default="", help="a short note recorded with the version")
    imp.set_defaults(func=cmd_import)

    val = sub.add_parser(
        "validate", help="check content files without importing them",
        description="List every error and warning. Exit status 0 = can be imported, "
                    "1 = has errors.")
    _files_argument(val)
    val.set_defaults(func=cmd_validate)

    rb = sub.add_parser(
        "rollback", help="go back to the previous index version",
        description="Make the version published before the live one live again (or the "
                    "version given with --to). Newer versions are kept.")
    rb.add_argument("--to", metavar="VERSION", help="a version id from `kiosk content list`")
    _index_option(rb)
    rb.set_defaults(func=cmd_rollback)

    ls = sub.add_parser("list", help="show the kept index versions, newest first")
    _index_option(ls)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)

    ex = sub.add_parser(
        "export", help="write the live content as a CSV file for editing in Excel",
        description="Writes UTF-8 CSV (with BOM, so Excel shows Japanese correctly). Edit "
                    "it and import it again with `kiosk content import FILE.csv`.")
    ex.add_argument("file", metavar="FILE.csv", help="the CSV file to write")
    _index_option(ex)
    ex.set_defaults(func=cmd_export)

    try:  # `content bundle` / `content pull` live with the staff tools
        from kiosk.cli.staff import register_content_commands
    except ImportError:
        return
    register_content_commands(sub)


def _files_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="a .jsonl, .csv or .md file, or a folder of them")


def _index_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", metavar="DIR",
                        help="index folder (default: paths.index_dir from the config)")


def _publisher(args: argparse.Namespace) -> ContentPublisher:
    return ContentPublisher(load_settings(args.config), getattr(args, "index", None))


def print_problems(problems: Sequence[ContentProblem], out: TextIO) -> None:
    for p in problems:
        out.write(f"{p}\n")


def cmd_import(args: argparse.Namespace) -> int:
    publisher = _publisher(args)
    who = args.who or os.environ.get("SUDO_USER") or _login()
    try:
        result = publisher.import_files(args.files, who=who, note=args.note)
    except ContentError as exc:
        print_problems([p for p in exc.problems if p.warning], sys.stderr)
        raise
    print_problems(result.warnings, sys.stderr)
    v = result.version
    AuditLog(publisher.settings.state_dir).record(
        "publish", who or local_user(), version=v.id, entries=v.entries, via="cli")
    print(f"Published version {v.id}: {v.entries} entries. It is live now.")
    if result.previous:
        print(f"The previous version {result.previous} is kept; go back to it with "
              "`kiosk content rollback`.")
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return ""


def cmd_validate(args: argparse.Namespace) -> int:
    entries, problems = ContentPublisher(load_settings(args.config)).validate(args.files)
    print_problems(problems, sys.stdout)
    errors = sum(1 for p in problems if not p.warning)
    warnings = len(problems) - errors
    if errors:
        print(f"{errors} error(s), {warnings} warning(s): fix the errors, then run this "
              "again. Nothing was imported.")
        return 1
    print(f"OK: {len(entries)} entries, {warnings} warning(s). Import with "
          f"`kiosk content import {' '.join(args.files)}`.")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    publisher = _publisher(args)
    v = publisher.rollback(args.to)
    AuditLog(publisher.settings.state_dir).record("rollback", local_user(), version=v.id,
                                                  via="cli")
    print(f"Version {v.id} ({v.entries} entries, published {v.created}) is live again.")
    return 0


def _version_json(v: VersionInfo) -> dict[str, object]:
    return {"id": v.id, "created": v.created, "entries": v.entries, "who": v.who,
            "note": v.note, "current": v.current}


def cmd_list(args: argparse.Namespace) -> int:
    versions = _publisher(args).versions_list()
    if args.json:
        print(json.dumps([_version_json(v) for v in versions], ensure_ascii=False, indent=2))
        return 0
    if not versions:
        print("No index versions yet. Import content with `kiosk content import FILE...`.")
        return 0
    print(f"  {'version':<20} {'published (UTC)':<26} {'entries':>7}  who / note")
    for v in versions:
        mark = "*" if v.current else " "
        print(f"{mark} {v.id:<20} {v.created:<26} {v.entries:>7}  {v.who} {v.note}".rstrip())
    print("(* = live)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.index is None:
        ensure_index(settings)  # a new install exports the bundled content, ready to edit
    path = ContentPublisher(settings, args.index).export_csv(args.file)
    print(f"Wrote {path}. Edit it (keep the first row) and import it with "
          f"`kiosk content import {args.file}`.")
    return 0
