"""Audit log of staff actions: who signed in (or failed to), who published or rolled back
content, which bundle a kiosk applied. One JSON object per line under the state folder, so a
city can answer "who changed what the kiosk says, and when" with any text tool.

CONTRACT:
    AUDIT_FILE                            — file name under settings.state_dir
    AuditLog(state_dir).record(action, who, **details) -> dict
    AuditLog(state_dir).read(limit=None) -> list[dict]   — newest last
    AuditLog(state_dir).problem() -> str  — why records are not being written ("" = fine)
    local_user() -> str                   — "who" for commands run from a shell
    Actions used: signin, signin_failed, signout, password_set, publish, rollback,
                  bundle_made, bundle_applied, bundle_refused
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kiosk.i18n import _

AUDIT_FILE = "audit.jsonl"

log = logging.getLogger(__name__)


def local_user() -> str:
    """Who ran a command on this machine (for records made outside the staff page)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"

_lock = threading.Lock()
#: Why the last write to an audit file failed in this process ("" once one succeeds again).
_problems: dict[Path, str] = {}
#: Most characters one detail of a record keeps (a hostile input must not make huge lines).
MAX_DETAIL_CHARS = 1000


def _bounded(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_DETAIL_CHARS:
        return value[:MAX_DETAIL_CHARS] + "…"
    return value


class AuditLog:
    """Append-only JSON-lines file; each record is written with one write() on an O_APPEND
    handle, so records from the staff desk and a CLI command never interleave. A record that
    cannot be written (full or read-only disk) is logged and reported by `problem()`, never
    raised: staff must still be able to sign in and read the pages."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / AUDIT_FILE

    def problem(self) -> str:
        """Why the audit log is not being written, or "" when it is."""
        return _problems.get(self.path, "")

    def record(self, action: str, who: str, **details: Any) -> dict[str, Any]:
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "action": action,
            "who": who,
            **{k: _bounded(v) for k, v in details.items()},
        }
        line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with _lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                why = _("the audit log {file} cannot be written ({reason}); free space on the "
                        "state disk or fix its permissions").format(
                            file=self.path, reason=exc.strerror or exc)
                if _problems.get(self.path) != why:
                    log.error(_("%s; lost record: %s"), why, line.decode("utf-8").strip())
                _problems[self.path] = why
                return entry
            _problems.pop(self.path, None)
        return entry

    def read(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Records in the order written; a damaged line is skipped, not fatal."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict):
                records.append(item)
        return records[-limit:] if limit else records
