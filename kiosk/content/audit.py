"""Audit log of staff actions: who signed in (or failed to), who published or rolled back
content, which bundle a kiosk applied. One JSON object per line under the state folder, so a
city can answer "who changed what the kiosk says, and when" with any text tool.

CONTRACT:
    AUDIT_FILE                            — file name under settings.state_dir
    AuditLog(state_dir).record(action, who, **details) -> dict
    AuditLog(state_dir).read(limit=None) -> list[dict]   — newest last
    local_user() -> str                   — "who" for commands run from a shell
    Actions used: signin, signin_failed, signout, password_set, publish, rollback,
                  bundle_made, bundle_applied, bundle_refused
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

AUDIT_FILE = "audit.jsonl"


def local_user() -> str:
    """Who ran a command on this machine (for records made outside the staff page)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"

_lock = threading.Lock()


class AuditLog:
    """Append-only JSON-lines file; each record is written with one write() on an O_APPEND
    handle, so records from the staff desk and a CLI command never interleave."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / AUDIT_FILE

    def record(self, action: str, who: str, **details: Any) -> dict[str, Any]:
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "action": action,
            "who": who,
            **details,
        }
        line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with _lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
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
