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

from kiosk.cli.exit_codes import ExitCode
from kiosk.config import load_settings
from kiosk.content.audit import AuditLog, local_user
from kiosk.content.contract import review_list
from kiosk.content.entries import ContentError, ContentProblem
from kiosk.content.publishing import ContentPublisher, ensure_index
from kiosk.i18n import _
from kiosk.search.versions import VersionInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    content = subparsers.add_parser(
        "content", help=_("import, check, roll back and export the kiosk's content"),
        description=_("Staff content tools. Formats (JSON Lines, CSV, Markdown) are described "
                      "in docs/content.md."))
    sub = content.add_subparsers(dest="content_command", metavar="SUBCOMMAND")
    content.set_defaults(func=lambda args: content.print_help() or ExitCode.BAD_INPUT)

    imp = sub.add_parser(
        "import", help=_("check content files and publish them as a new index version"),
        description=_("Check every file; when all are correct, build a new index version and "
                      "make it live at once (a running kiosk picks it up). When anything is "
                      "wrong, every problem is listed and nothing changes."))
    _files_argument(imp)
    _index_option(imp)
    imp.add_argument("--who", help=_("name recorded with the version (default: your login)"))
    imp.add_argument("--note", default="", help=_("a short note recorded with the version"))
    imp.set_defaults(func=cmd_import)

    val = sub.add_parser(
        "validate", help=_("check content files without importing them"),
        description=_("List every error and warning. Exit status 0 = can be imported, "
                      "1 = has errors."))
    _files_argument(val)
    val.set_defaults(func=cmd_validate)

    rb = sub.add_parser(
        "rollback", help=_("go back to the previous index version"),
        description=_("Make the version published before the live one live again (or the "
                      "version given with --to). Newer versions are kept."))
    rb.add_argument("--to", metavar="VERSION", help=_("a version id from `kiosk content list`"))
    _index_option(rb)
    rb.set_defaults(func=cmd_rollback)

    ls = sub.add_parser("list", help=_("show the kept index versions, newest first"))
    _index_option(ls)
    ls.add_argument("--json", action="store_true", help=_("print JSON"))
    ls.set_defaults(func=cmd_list)

    ex = sub.add_parser(
        "export", help=_("write the live content as a CSV file for editing in Excel"),
        description=_("Writes UTF-8 CSV (with BOM, so Excel shows Japanese correctly). Edit "
                      "it and import it again with `kiosk content import FILE.csv`."))
    ex.add_argument("file", metavar="FILE.csv", help=_("the CSV file to write"))
    _index_option(ex)
    ex.set_defaults(func=cmd_export)

    rev = sub.add_parser(
        "review", help=_("list entries to re-check against the city's pages, oldest first"),
        description=_("Every entry with the date its facts were checked (`checked`) and whether "
                      "a city page was found (`status`). Entries checked more than [content] "
                      "review_months ago, unverified ones and those with no date come first — "
                      "the same list as the staff desk's review page. Without FILEs the live "
                      "content is listed."))
    rev.add_argument("files", nargs="*", metavar="FILE",
                     help=_("content files to review instead of the live content"))
    _index_option(rev)
    rev.add_argument("--all", action="store_true",
                     help=_("also list the entries that need nothing (default: only those "
                            "that need review, then a count of the rest)"))
    rev.add_argument("--json", action="store_true", help=_("print JSON"))
    rev.set_defaults(func=cmd_review)

    try:  # `content bundle` / `content pull` live with the staff tools
        from kiosk.cli.staff import register_content_commands
    except ImportError:
        return
    register_content_commands(sub)


def _files_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help=_("a .jsonl, .csv or .md file, or a folder of them"))


def _index_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", metavar="DIR",
                        help=_("index folder (default: paths.index_dir from the config)"))


def _publisher(args: argparse.Namespace) -> ContentPublisher:
    return ContentPublisher(load_settings(args.config), getattr(args, "index", None))


def print_problems(problems: Sequence[ContentProblem], out: TextIO) -> None:
    for p in problems:
        out.write(f"{p}\n")


def cmd_import(args: argparse.Namespace) -> int:
    publisher = _publisher(args)
    who = args.who or os.environ.get("SUDO_USER") or _login()
    live_before = publisher.versions.current_id()
    try:
        result = publisher.import_files(args.files, who=who, note=args.note)
    except ContentError as exc:
        print_problems([p for p in exc.problems if p.warning], sys.stderr)
        raise
    except KeyboardInterrupt:
        live_now = publisher.versions.current_id()
        if live_now == live_before:
            kept = (_("the live content is still version {version}").format(version=live_now)
                    if live_now else _("there is still no live content"))
            print(_("Import stopped with Ctrl+C: nothing was changed; {kept}. Run the same "
                    "command again to import.").format(kept=kept), file=sys.stderr)
        else:
            print(_("Ctrl+C came after the new version {version} was published; it is live. "
                    "Go back with `kiosk content rollback`.").format(version=live_now),
                  file=sys.stderr)
        return ExitCode.INTERRUPTED
    print_problems(result.warnings, sys.stderr)
    v = result.version
    AuditLog(publisher.settings.state_dir).record(
        "publish", who or local_user(), version=v.id, entries=v.entries, via="cli")
    print(_("Published version {version}: {entries} entries. It is live now.")
          .format(version=v.id, entries=v.entries))
    if result.previous:
        print(_("The previous version {version} is kept; go back to it with "
                "`kiosk content rollback`.").format(version=result.previous))
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
        print(_("{errors} error(s), {warnings} warning(s): fix the errors, then run this "
                "again. Nothing was imported.").format(errors=errors, warnings=warnings))
        return ExitCode.PROBLEMS
    print(_("OK: {entries} entries, {warnings} warning(s). Import with "
            "`kiosk content import {files}`.").format(
        entries=len(entries), warnings=warnings, files=" ".join(args.files)))
    return ExitCode.OK


def cmd_rollback(args: argparse.Namespace) -> int:
    publisher = _publisher(args)
    v = publisher.rollback(args.to)
    AuditLog(publisher.settings.state_dir).record("rollback", local_user(), version=v.id,
                                                  via="cli")
    print(_("Version {version} ({entries} entries, published {created}) is live again.")
          .format(version=v.id, entries=v.entries, created=v.created))
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
        print(_("No index versions yet. Import content with `kiosk content import FILE...`."))
        return 0
    heads = _("version"), _("published (UTC)"), _("entry count"), _("who / note")
    print("  {:<20} {:<26} {:>7}  {}".format(*heads))
    for v in versions:
        mark = "*" if v.current else " "
        print(f"{mark} {v.id:<20} {v.created:<26} {v.entries:>7}  {v.who} {v.note}".rstrip())
    print(_("(* = live)"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.index is None:
        ensure_index(settings)  # a new install exports the bundled content, ready to edit
    path = ContentPublisher(settings, args.index).export_csv(args.file)
    print(_("Wrote {path}. Edit it (keep the first row) and import it with "
            "`kiosk content import {file}`.").format(path=path, file=args.file))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """`kiosk content review`: the staff desk's review list, for a terminal."""
    settings = load_settings(args.config)
    if args.files:
        entries, problems = ContentPublisher(settings).validate(args.files)
        print_problems([p for p in problems if not p.warning], sys.stderr)
    else:
        if args.index is None:
            ensure_index(settings)
        entries = ContentPublisher(settings, args.index).live_entries()
    items = review_list(entries, settings.content.review_months)
    if args.json:
        print(json.dumps([{"id": i.entry.id, "title": i.entry.title, "checked": i.entry.checked,
                           "status": i.entry.status, "source_url": i.entry.source_url,
                           "stale": i.stale, "unverified": i.unverified,
                           "needs_review": i.needs_review} for i in items],
                         ensure_ascii=False, indent=2))
        return 0
    shown = [i for i in items if args.all or i.needs_review]
    months = settings.content.review_months
    heads = _("checked"), _("status"), _("review"), _("id — title")
    print("  {:<10}  {:<10}  {:<14}  {}".format(*heads))
    for i in shown:
        e = i.entry
        reasons = i.reasons or _("ok")
        print(f"  {e.checked or '-':<10}  {e.status or '-':<10}  {reasons:<14}  "
              f"{e.id} — {e.title}")
        if e.source_url:
            print(f"  {'':<10}  {'':<10}  {'':<14}  {e.source_url}")
    stale = sum(i.stale for i in items)
    unverified = sum(i.unverified for i in items)
    undated = sum(i.unchecked for i in items)
    need = sum(i.needs_review for i in items)
    print(_("{count} entries: {need} to review ({stale} checked over {months} months ago, "
            "{unverified} unverified, {undated} with no checked date); {ok} up to date.").format(
        count=len(items), need=need, stale=stale, months=months, unverified=unverified,
        undated=undated, ok=len(items) - need))
    return 0
