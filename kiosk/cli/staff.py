"""`kiosk admin` (the staff content desk), `kiosk admin set-password`, `kiosk keys new`, and
the `content bundle` / `content pull` subcommands that kiosk/cli/content.py mounts through
`register_content_commands`."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from kiosk import KioskError
from kiosk.config import load_settings
from kiosk.i18n import _


def register(subparsers: argparse._SubParsersAction) -> None:
    admin = subparsers.add_parser(
        "admin",
        help=_("serve the staff content desk (web page) on loopback"),
        description=_("Serve the staff page where city staff upload, check, publish and roll "
          "back content. Address and limits come from [admin] in the config."),
    )
    admin.add_argument("--host", help=_("address to listen on (default: [admin] host)"))
    admin.add_argument("--port", type=int, help=_("port to listen on (default: [admin] port)"))
    admin.set_defaults(func=_admin)
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="SUBCOMMAND")
    setpw = admin_sub.add_parser(
        "set-password",
        help=_("set (or change) a staff member's sign-in password"),
        description=_("Store a staff member's password, hashed with scrypt, under the state "
          "folder. Asks twice on a terminal; with --password-stdin reads one line."),
    )
    setpw.add_argument("--user", default="staff", help=_("staff name to sign in with (default: staff)"))
    setpw.add_argument("--password-stdin", action="store_true",
                       help=_("read the password from standard input (for install scripts)"))
    setpw.set_defaults(func=_set_password)

    keys = subparsers.add_parser("keys", help=_("signing keys for content bundles"))
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND")
    new = keys_sub.add_parser(
        "new",
        help=_("make an Ed25519 key pair for signing content bundles"),
        description=_("Writes NAME.key (keep it secret, mode 0600) and NAME.pub (copy it to "
          "every kiosk and set [bundle] public_key_file to it)."),
    )
    new.add_argument("--out", default=".", help=_("folder for the two files (default: here)"))
    new.add_argument("--name", default="kiosk-signing", help=_("file name without extension"))
    new.set_defaults(func=_keys_new)
    keys.set_defaults(func=lambda args: keys.print_help() or 2)  # ExitCode.BAD_INPUT


def register_content_commands(content_subparsers: argparse._SubParsersAction) -> None:
    """Add `bundle` and `pull` to the `kiosk content` group."""
    bundle = content_subparsers.add_parser(
        "bundle",
        help=_("write the live content as one signed bundle file for other kiosks"),
        description=_("Writes the live content, synonyms and reading dictionary, a manifest "
          "with version and SHA-256 checksums, and an Ed25519 signature into one file."),
    )
    bundle.add_argument("--key", required=True, help=_("private key file from `kiosk keys new`"))
    bundle.add_argument("--out", required=True, help=_("bundle file to write (e.g. content.kiosk)"))
    bundle.add_argument("--version", type=int,
                        help=_("bundle version, must grow with every bundle (default: UTC time "
                          "as YYYYMMDDHHMMSS)"))
    bundle.set_defaults(func=_content_bundle)

    pull = content_subparsers.add_parser(
        "pull",
        help=_("fetch, verify and apply a signed content bundle"),
        description=_("Verifies the bundle against [bundle] public_key_file and applies it "
          "atomically; refuses unsigned, tampered, incomplete or older bundles."),
    )
    pull.add_argument("location", nargs="?",
                      help=_("http(s):// address or file path (default: [bundle] pull_url)"))
    pull.add_argument("--watch", action="store_true",
                      help=_("keep polling every [bundle] poll_minutes minutes"))
    pull.set_defaults(func=_content_pull)


def _admin(args: argparse.Namespace) -> int:
    from kiosk.staff.desk import serve

    serve(load_settings(args.config), host=args.host, port=args.port)
    return 0


def _set_password(args: argparse.Namespace) -> int:
    from kiosk.content.audit import AuditLog, local_user
    from kiosk.staff.accounts import StaffPasswords

    settings = load_settings(args.config)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise KioskError(_("no terminal to ask for the password; use --password-stdin"))
        password = getpass.getpass(_("New password for {user}: ").format(user=args.user))
        if getpass.getpass(_("Same password again: ")) != password:
            raise KioskError(_("the two passwords differ; nothing was changed. Try again."))
    StaffPasswords(settings.state_dir).set(args.user, password)
    AuditLog(settings.state_dir).record("password_set", local_user(), user=args.user)
    print(_("Password set for {user}. Sign in at the staff page (`kiosk admin`).")
          .format(user=args.user))
    return 0


def _keys_new(args: argparse.Namespace) -> int:
    from kiosk.content.bundles import new_key_pair

    private, public = new_key_pair(Path(args.out), args.name)
    print(_("Private key: {path} (keep it secret; it signs bundles)").format(path=private))
    print(_("Public key:  {path} (copy to every kiosk; set [bundle] public_key_file)")
          .format(path=public))
    return 0


def _content_bundle(args: argparse.Namespace) -> int:
    from kiosk.content.bundles import make_bundle

    manifest = make_bundle(load_settings(args.config), Path(args.key), Path(args.out),
                           args.version)
    print(_("Wrote {file}: version {version}, {entries} entries.").format(
        file=args.out, version=manifest.version, entries=manifest.entries))
    return 0


def _content_pull(args: argparse.Namespace) -> int:
    from kiosk.content.audit import local_user
    from kiosk.content.bundles import BundlePoller, pull_bundle

    settings = load_settings(args.config)
    if args.watch:
        BundlePoller(settings, location=args.location).run_forever()
        return 0
    result = pull_bundle(settings, args.location, who=local_user())
    print(result.message)
    return 0
