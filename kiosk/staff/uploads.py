"""What a browser uploads to the staff desk: multipart forms parsed in memory, files
written under names of our own into a private folder, so nothing a browser sends is ever
used as a path."""

from __future__ import annotations

import io
import re
import urllib.parse
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from kiosk import KioskError
from kiosk.config import Settings
from kiosk.i18n import _

# ------------------------------------------------------------------------------ uploads


class UploadError(KioskError):
    """An upload the desk cannot even read (wrong type, too big, broken zip)."""


@dataclass(frozen=True)
class Upload:
    """One file sent from the browser: its name only for messages, never as a path."""

    filename: str
    data: bytes


def parse_form(content_type: str, body: bytes) -> tuple[dict[str, str], list[Upload]]:
    """Fields and files of a POST body (urlencoded or multipart/form-data)."""
    header = Message()
    header["content-type"] = content_type or ""
    ctype = header.get_content_type()
    if ctype == "application/x-www-form-urlencoded":
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return dict(pairs), []
    if ctype != "multipart/form-data":
        raise UploadError(_("The form was not sent the right way. Reload the page and try again."))
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise UploadError(_("What was sent is incomplete. Please choose the file again."))
    fields: dict[str, str] = {}
    files: list[Upload] = []
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 2 or not chunks[-1].startswith(b"--"):
        raise UploadError(_("Sending was cut off. Please choose the file again and send it again."))
    for chunk in chunks[1:-1]:
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        chunk = chunk[:-2] if chunk.endswith(b"\r\n") else chunk
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        part = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _sep, value = line.partition(":")
            if key.strip():
                part[key.strip()] = value.strip()
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        if not isinstance(name, str):
            continue
        if isinstance(filename, str):
            files.append(Upload(filename, content))
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields, files


def _display_name(filename: str) -> str:
    """The last part of what the browser calls the file, for messages only."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "".join(c for c in name if c.isprintable())[:120] or "upload"


UPLOAD_KINDS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".zip": "zip"}


def upload_kind(upload: Upload) -> str:
    """csv, jsonl or zip — by the file's name, checked against its first bytes."""
    suffix = Path(_display_name(upload.filename)).suffix.lower()
    kind = UPLOAD_KINDS.get(suffix)
    is_zip = upload.data[:4] == b"PK\x03\x04"
    if kind is None:
        raise UploadError(_(
            "“{file}” is not a kind of file the desk can load. "
            "Choose a .csv, a .jsonl, or a .zip of Markdown files."
        ).format(file=_display_name(upload.filename)))
    if (kind == "zip") != is_zip:
        raise UploadError(_(
            "What is in “{file}” does not match its name ({suffix}). "
            "Save it again and then choose it."
        ).format(file=_display_name(upload.filename), suffix=suffix))
    return kind


def write_upload(upload: Upload, folder: Path, settings: Settings) -> tuple[list[Path], dict[str, str]]:
    """Put an upload where the import path can read it: fixed names inside `folder` (a
    private temp dir). Returns the paths and a map from those paths to the names staff know,
    so every problem message names their file (and, for a zip, the file inside it)."""
    kind = upload_kind(upload)
    shown = _display_name(upload.filename)
    if kind in ("csv", "jsonl"):
        target = folder / f"upload.{kind}"
        target.write_bytes(upload.data)
        return [target], {str(target): shown}
    md_dir = folder / "markdown"
    md_dir.mkdir()
    names: dict[str, str] = {}
    limits = settings.admin
    try:
        zf = zipfile.ZipFile(io.BytesIO(upload.data))
    except zipfile.BadZipFile:
        raise UploadError(_("“{file}” is a damaged zip file. Please make it again.").format(
            file=shown)) from None
    with zf:
        members = [
            i for i in zf.infolist()
            if not i.is_dir() and not _is_junk(i.filename)
        ]
        if len(members) > limits.max_zip_files:
            raise UploadError(_(
                "“{file}” holds {count} files. "
                "At most {limit} can be loaded at once."
            ).format(file=shown, count=len(members), limit=limits.max_zip_files))
        total = 0
        for number, info in enumerate(members, start=1):
            inner = info.filename
            if Path(inner).suffix.lower() not in (".md", ".markdown"):
                raise UploadError(_(
                    "“{inner}” in “{file}” is not Markdown (.md). "
                    "Put only .md files in the zip."
                ).format(file=shown, inner=inner))
            if info.flag_bits & 0x1:
                raise UploadError(_("“{file}” is a zip with a password. "
                                    "Please make it without one.").format(
                    file=shown))
            total += info.file_size
            if total > limits.max_unzipped_bytes:
                raise UploadError(_(
                    "“{file}” is too large once unpacked (at most "
                    "{mb} MB). Split it and load the parts one by one."
                ).format(file=shown, mb=limits.max_unzipped_bytes // 1_000_000))
            try:
                with zf.open(info) as fh:
                    data = fh.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError):
                raise UploadError(_("“{inner}” in “{file}” cannot be read. "
                                    "Please make the zip again.").format(
                    file=shown, inner=inner)) from None
            if len(data) > info.file_size:
                raise UploadError(_("“{inner}” in “{file}” is damaged. "
                                    "Please make the zip again.").format(
                    file=shown, inner=inner))
            # The import takes a Markdown entry's id from its file name, so the name is
            # kept — but only as one checked file name in a numbered folder of our own.
            stem = Path(inner.replace("\\", "/").rsplit("/", 1)[-1]).stem
            if not _SAFE_STEM.fullmatch(stem):
                raise UploadError(_(
                    "The name of “{inner}” in “{file}” has characters a file name cannot have. "
                    "Use only letters, digits, - and _ (e.g. library-hours.md).").format(
                        file=shown, inner=inner))
            slot = md_dir / f"{number:05d}"
            slot.mkdir()
            target = slot / f"{stem}.md"
            target.write_bytes(data)
            names[str(target)] = f"{shown}/{inner}"
    if not names:
        raise UploadError(_("There is no Markdown (.md) file in “{file}”.").format(file=shown))
    names[str(md_dir)] = shown
    return [md_dir], names


#: File names (without .md) accepted inside an uploaded zip: letters of any script, digits,
#: '-' and '_' — never a separator, dot or anything a filesystem could read as a path.
_SAFE_STEM = re.compile(r"[^\W][\w-]{0,99}")


def _is_junk(name: str) -> bool:
    """Files that zip tools add on their own (macOS resource forks, Windows thumbnails)."""
    parts = name.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or parts[-1].startswith(".") or parts[-1] == "Thumbs.db"


