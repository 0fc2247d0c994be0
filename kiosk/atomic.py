"""Whole-or-nothing file writes, shared by every stage that keeps state on disk (exports,
index versions, bundle state): a reader never sees half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(target: Path, data: bytes, mode: int = 0o644) -> None:
    """Write beside the target, fsync, then rename over it: a reader (Excel, the kiosk, a
    web server) never sees half a file, and a crash leaves the old file whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
