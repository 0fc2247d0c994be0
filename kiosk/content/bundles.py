"""Signed content bundles: one file that carries a city's content to every kiosk it runs.

A bundle is a zip holding `content.csv`, the synonym table, the reading dictionary, a
`manifest.json` (bundle version, entry count, SHA-256 and size of every file) and
`manifest.sig`, an Ed25519 signature of the manifest's exact bytes. A kiosk trusts a bundle
only when the signature verifies against its configured public key and every file matches the
manifest, so anything unsigned, tampered with or cut short is refused before it is read as
content. A bundle whose version is not newer than the one already applied is refused too, so
an attacker who can serve files cannot roll a fleet back to old (perhaps wrong) answers.
The content goes through the same import path as any staff upload (kiosk.content.publishing).

CONTRACT:
    new_key_pair(folder, name="kiosk-signing") -> (private_path, public_path)
    make_bundle(settings, key_file, out_file, version=None) -> BundleManifest
    read_bundle(data: bytes, public_key) -> VerifiedBundle     — raises BundleError
    fetch_bundle(location, settings) -> bytes                  — http(s)://, file:// or a path
    pull_bundle(settings, location=None, who="bundle") -> PullResult
    BundlePoller(settings).start()/stop()                      — polls [bundle] pull_url
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import http.client
import io
import json
import logging
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from kiosk import KioskError
from kiosk.atomic import write_atomically
from kiosk.config import Settings
from kiosk.content.audit import AuditLog, local_user
from kiosk.i18n import _
from kiosk.progress import Progress

log = logging.getLogger(__name__)

FORMAT = "kiosk-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CONTENT_FILE = "content.csv"
SYNONYMS_FILE = "synonyms.tsv"
READINGS_FILE = "readings.tsv"
#: Which bundle version this kiosk applied last (the floor for rollback protection).
STATE_FILE = "bundle-state.json"


class BundleError(KioskError):
    """A bundle that must not be applied; the live content stays exactly as it was."""


@dataclass(frozen=True)
class BundleManifest:
    version: int
    created: str
    entries: int
    files: dict[str, dict[str, object]]

    def to_bytes(self) -> bytes:
        data = {
            "format": FORMAT,
            "version": self.version,
            "created": self.created,
            "entries": self.entries,
            "files": self.files,
        }
        return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and checksums have been checked: its files can be trusted."""

    manifest: BundleManifest
    files: dict[str, bytes] = field(repr=False)
    sha256: str = ""


@dataclass(frozen=True)
class PullResult:
    applied: bool
    version: int
    message: str


# ---------------------------------------------------------------------------------- keys


def new_key_pair(folder: Path, name: str = "kiosk-signing") -> tuple[Path, Path]:
    """Write NAME.key (private, mode 0600, never overwritten) and NAME.pub (give this one to
    every kiosk). The private key stays with whoever makes bundles."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / f"{name}.key", folder / f"{name}.pub"
    for existing in (private_path, public_path):
        if existing.exists():
            raise KioskError(
                _("{file} already exists; a key pair is never overwritten (kiosks trust the "
                  "old public key). Choose another --out folder or --name.").format(file=existing))
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    os.chmod(private_path, 0o600)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def _load_key(path: Path, private: bool) -> Ed25519PrivateKey | Ed25519PublicKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        message = (_("cannot read the signing key {file}: {reason}. Make one with "
                     "`kiosk keys new --out FOLDER`.") if private else
                   _("cannot read the bundle public key {file}: {reason}. Copy the .pub file "
                     "made by `kiosk keys new` there, or fix [bundle] public_key_file in the "
                     "config."))
        raise KioskError(message.format(file=path, reason=exc.strerror)) from None
    try:
        key = (serialization.load_pem_private_key(data, password=None) if private
               else serialization.load_pem_public_key(data))
    except (ValueError, TypeError):
        key = None
    wanted = Ed25519PrivateKey if private else Ed25519PublicKey
    if not isinstance(key, wanted):
        message = (_("{file} is not an Ed25519 private key made by `kiosk keys new` (did you "
                     "give the .pub file instead of the .key file?)") if private else
                   _("{file} is not an Ed25519 public key made by `kiosk keys new` (it must be "
                     "the .pub file; never copy the .key file to a kiosk)"))
        raise KioskError(message.format(file=path))
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    return _load_key(path, private=True)  # type: ignore[return-value]


def load_public_key(path: Path) -> Ed25519PublicKey:
    return _load_key(path, private=False)  # type: ignore[return-value]


def configured_public_key(settings: Settings) -> Ed25519PublicKey:
    if not settings.bundle.public_key_file:
        raise BundleError(
            _("this kiosk has no bundle public key, so it refuses every bundle. Set [bundle] "
              "public_key_file in the config to the .pub file made by `kiosk keys new`."))
    return load_public_key(settings.path(settings.bundle.public_key_file))


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """Short id of a public key, so a manifest says which key signed it."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# ------------------------------------------------------------------------------- writing


def default_version() -> int:
    """UTC time as YYYYMMDDHHMMSS: increases with every bundle and is readable by people."""
    return int(datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"))


def pack_bundle(files: dict[str, bytes], key: Ed25519PrivateKey, version: int,
                entries: int) -> tuple[bytes, BundleManifest]:
    """Sign and zip the given files; the signature covers the manifest, which covers them."""
    manifest = BundleManifest(
        version=version,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        entries=entries,
        files={
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(files.items())
        },
    )
    manifest_bytes = manifest.to_bytes()
    signature = key.sign(manifest_bytes)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, manifest_bytes)
        zf.writestr(SIGNATURE, base64.b64encode(signature) + b"\n")
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    return buf.getvalue(), manifest


def _table_files(settings: Settings) -> dict[str, Path | None]:
    """The synonym table and staff reading dictionary this kiosk uses (None = none/bundled
    only), by their name inside a bundle."""
    from kiosk.search.query import BUNDLED_SYNONYMS

    syn = settings.content.synonyms_file
    readings = settings.voice.readings_file
    return {
        SYNONYMS_FILE: settings.path(syn) if syn else BUNDLED_SYNONYMS,
        READINGS_FILE: settings.path(readings) if readings else None,
    }


def make_bundle(settings: Settings, key_file: Path, out_file: Path,
                version: int | None = None) -> BundleManifest:
    """Bundle the live content (plus synonyms and reading dictionary) into one signed file."""
    from kiosk.content.entries import csv_bytes
    from kiosk.content.publishing import ContentPublisher
    from kiosk.search.versions import VERSION_SYNONYMS

    key = load_private_key(key_file)
    publisher = ContentPublisher(settings)
    live_entries = publisher.live_entries()
    payload = {CONTENT_FILE: csv_bytes(live_entries)}
    entries = len(live_entries)
    tables = _table_files(settings)
    folder = publisher.versions.current_path()
    if folder is not None and (folder / VERSION_SYNONYMS).is_file():
        tables[SYNONYMS_FILE] = folder / VERSION_SYNONYMS  # the table the live content uses
    for name, path in tables.items():
        try:
            payload[name] = path.read_bytes() if path else b""
        except OSError as exc:
            raise KioskError(_("cannot read {file} for the bundle: {reason}").format(
                file=path, reason=exc.strerror)) from None
    data, manifest = pack_bundle(payload, key, version or default_version(), entries)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out_file, data, 0o644)
    AuditLog(settings.state_dir).record(
        "bundle_made", local_user(), version=manifest.version,
        entries=manifest.entries, file=str(out_file),
        key=key_fingerprint(key.public_key()),
    )
    return manifest


# ------------------------------------------------------------------------------- reading


def _refuse(why: str) -> BundleError:
    return BundleError(_("bundle refused: {why}. The live content was not changed.")
                       .format(why=why))


def _damaged(why: object) -> BundleError:
    return _refuse(_("the file is damaged ({why}); fetch or copy it again").format(why=why))


def _check_structure(zf: zipfile.ZipFile) -> None:
    """Every entry of the zip's directory must match the file header it points to. A byte
    flipped near the end of a bundle (in that directory) then reads as damage, instead of
    as a missing signature or an unlisted file."""
    for info in zf.infolist():
        try:
            with zf.open(info):
                pass
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError,
                zlib.error) as exc:
            raise _damaged(exc) from None


def _names(names: set[str], shown: int = 5) -> str:
    """A few names for a message; a bundle with thousands of files must not make a
    message (or an audit line) thousands of names long."""
    listed = sorted(names)
    text = ", ".join(n[:80] for n in listed[:shown])
    more = _(" and {count} more").format(count=len(listed) - shown)
    return text + (more if len(listed) > shown else "")


def _read_member(zf: zipfile.ZipFile, name: str, limit: int,
                 expected: object = None) -> bytes:
    """Read one member, never more than `limit` bytes, whatever its header claims.
    `expected` is its size in the signed manifest: a zip directory that disagrees is
    damaged."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        if expected is not None:  # listed in the signed manifest, so it was there once
            raise _damaged(_("{name}, listed in its signed manifest, is missing").format(name=name)) from None
        raise _refuse(_("it has no {name}").format(name=name)) from None
    if isinstance(expected, int) and info.file_size != expected:
        raise _refuse(_("{name} does not match its size and checksum in the signed manifest "
                        "(the file is damaged, or was changed after signing); fetch or copy "
                        "it again").format(name=name))
    if info.file_size > limit:
        raise _refuse(_("{name} is larger than the bundle size limit (the files of a bundle "
                        "add up to more than it unpacked)").format(name=name))
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        raise _refuse(_("{name} is damaged or incomplete ({reason})").format(
            name=name, reason=exc)) from None
    if len(data) > limit:
        raise _refuse(_("{name} is larger than the bundle size limit").format(name=name))
    return data


def read_bundle(data: bytes, public_key: Ed25519PublicKey, *,
                max_bytes: int = 100_000_000) -> VerifiedBundle:
    """Check a bundle completely before anything in it is used: a zip that opens, a manifest
    signed by our key, and every listed file present with the listed checksum (nothing extra).
    """
    if len(data) > max_bytes:
        raise _refuse(_("it is {size:,} bytes, more than [bundle] max_bundle_bytes")
                      .format(size=len(data)))
    if not data:
        raise _refuse(_("the file is empty (download failed?)"))
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, OSError):
        raise _refuse(_(
            "it is not a complete bundle file (cut short or damaged while downloading, or "
            "not a bundle at all); fetch it again"
        )) from None
    with zf:
        _check_structure(zf)
        names = set(zf.namelist())
        if MANIFEST not in names:
            raise _refuse(_("it has no manifest, so it is not a kiosk bundle"))
        if SIGNATURE not in names:
            raise _refuse(_("it is not signed; make bundles with `kiosk content bundle --key`"))
        manifest_bytes = _read_member(zf, MANIFEST, 1_000_000)
        sig_text = _read_member(zf, SIGNATURE, 1_000)
        try:
            signature = base64.b64decode(sig_text.strip(), validate=True)
        except ValueError:
            raise _refuse(_("its signature is unreadable")) from None
        try:
            public_key.verify(signature, manifest_bytes)
        except InvalidSignature:
            raise _refuse(_(
                "its signature does not match this kiosk's public key (tampered with, or "
                "signed with another key)")) from None
        manifest = _parse_manifest(manifest_bytes)
        extra = names - set(manifest.files) - {MANIFEST, SIGNATURE}
        if extra:
            raise _refuse(_("it holds {count} file(s) the manifest does not list: "
                            "{names}").format(count=len(extra), names=_names(extra)))
        declared = sum(int(meta.get("bytes") or 0) for meta in manifest.files.values()
                       if isinstance(meta.get("bytes"), int))
        if declared > max_bytes:
            raise _refuse(_("its files add up to {declared} bytes unpacked, more than "
                            "[bundle] max_bundle_bytes ({limit})").format(declared=declared,
                                                                          limit=max_bytes))
        files: dict[str, bytes] = {}
        left = max_bytes
        for name, meta in manifest.files.items():
            body = _read_member(zf, name, left, meta.get("bytes"))
            left -= len(body)
            if len(body) != meta.get("bytes") or (
                hashlib.sha256(body).hexdigest() != meta.get("sha256")
            ):
                raise _refuse(_("{name} does not match its checksum in the signed manifest")
                              .format(name=name))
            files[name] = body
    if CONTENT_FILE not in files:
        raise _refuse(_("it has no {name}").format(name=CONTENT_FILE))
    return VerifiedBundle(manifest, files, hashlib.sha256(data).hexdigest())


def _parse_manifest(raw: bytes) -> BundleManifest:
    try:
        data = json.loads(raw.decode("utf-8"))
        if data.get("format") != FORMAT:
            raise _refuse(_("its format {found!r} is not {wanted}; update the kiosk").format(
                found=data.get("format"), wanted=FORMAT))
        files = data["files"]
        if not isinstance(files, dict) or not all(
            isinstance(n, str) and isinstance(m, dict) for n, m in files.items()
        ):
            raise ValueError(_("its 'files' table is not a table of file names"))
        return BundleManifest(
            version=int(data["version"]),
            created=str(data.get("created", "")),
            entries=int(data.get("entries", 0)),
            files=files,
        )
    except BundleError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _refuse(_("its manifest is malformed")) from None


class _Deadline:
    """Bounds a whole download: when time is up it shuts the sockets of every connection
    urllib opened for it (redirects, proxies included), so a read that is waiting on a
    server sending one byte now and then returns at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = threading.Event()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._cut)
        self._timer.daemon = True
        self.end = time.monotonic() + seconds

    def connection_class(self, cls: type) -> type:
        deadline = self

        class Watched(cls):  # type: ignore[misc, valid-type]
            def connect(self) -> None:
                if deadline.expired.is_set():
                    raise TimeoutError(_("download time is up"))
                with deadline._lock:
                    deadline._connections.append(self)
                super().connect()

        return Watched

    def _cut(self) -> None:
        self.expired.set()
        with self._lock:
            for conn in self._connections:
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _opener(deadline: _Deadline) -> urllib.request.OpenerDirector:
    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):  # noqa: ANN001, ANN201 - urllib's signature
            return self.do_open(deadline.connection_class(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):  # noqa: ANN001, ANN201 - urllib's signature
            return self.do_open(deadline.connection_class(http.client.HTTPSConnection), req,
                                context=self._context)

    return urllib.request.build_opener(HTTP, HTTPS)


def fetch_bundle(location: str, settings: Settings) -> bytes:
    """The bundle's bytes from a web server (plain HTTP(S), any static server) or a path.
    A download is bounded in size and in total time, not only per read."""
    limit = settings.bundle.max_bundle_bytes
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme in ("http", "https"):
        bound = settings.bundle.download_max_seconds
        too_slow = _("could not download {location}: it took longer than [bundle] "
                     "download_max_seconds ({seconds} s); the server is too slow or stuck. "
                     "The kiosk tries again at the next poll").format(location=location,
                                                                     seconds=f"{bound:g}")
        chunks: list[bytes] = []
        got = 0
        try:
            with _Deadline(bound) as deadline, _opener(deadline).open(
                    location, timeout=settings.bundle.download_timeout_seconds) as resp:
                expected = resp.headers.get("Content-Length")
                total = int(expected) if expected is not None and expected.isdigit() else None
                with Progress(_("downloading the bundle"), total, "B") as bar:
                    while got <= limit:
                        if deadline.expired.is_set():
                            raise BundleError(too_slow)
                        chunk = resp.read1(min(1 << 16, limit + 1 - got))
                        if not chunk:
                            break
                        chunks.append(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                if deadline.expired.is_set():
                    raise BundleError(too_slow)
        except urllib.error.HTTPError as exc:
            raise BundleError(
                _("could not download {location}: the server answered {code} {reason}").format(
                    location=location, code=exc.code, reason=exc.reason)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if deadline.expired.is_set():
                raise BundleError(too_slow) from None
            reason = getattr(exc, "reason", exc)
            raise BundleError(
                _("could not download {location}: {reason}. Check the address and the "
                  "network.").format(location=location, reason=reason)) from None
        data = b"".join(chunks)
        if len(data) > limit:
            raise _refuse(_("it is larger than [bundle] max_bundle_bytes ({limit:,} bytes)")
                          .format(limit=limit))
        if expected is not None and expected.isdigit() and int(expected) != len(data):
            raise _refuse(_("the download stopped after {got} of {expected} bytes; try again")
                          .format(got=len(data), expected=expected))
        return data
    path = Path(urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else location)
    try:
        size = path.stat().st_size
        if size > limit:
            raise _refuse(_("{file} is larger than [bundle] max_bundle_bytes ({limit:,} bytes)")
                          .format(file=path, limit=limit))
        return path.read_bytes()
    except OSError as exc:
        raise BundleError(_("cannot read the bundle {file}: {reason}").format(
            file=path, reason=exc.strerror)) from None


# ------------------------------------------------------------------------------ applying


def _state_path(settings: Settings) -> Path:
    return settings.state_dir / STATE_FILE


def applied_state(settings: Settings) -> dict[str, object]:
    """The last bundle this kiosk applied ({} = none yet). A state file that exists but
    cannot be read raises BundleError: the rollback floor fails closed, never open."""
    path = _state_path(settings)
    why = ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("version"), int):
            why = _("it does not hold a bundle version")
        else:
            return data
    except FileNotFoundError:
        return {}
    except OSError as exc:
        why = exc.strerror or str(exc)
    except ValueError:
        why = _("it is cut short or damaged")
    raise BundleError(_(
        "bundle refused: {path} cannot be read ({why}), so this kiosk cannot tell which "
        "bundle it applied last and refuses every bundle (an older one could bring back "
        "outdated answers). Restore the file from a backup, or, if you are sure which "
        "bundle is newest, delete it and pull that bundle. The live content was not changed."
    ).format(path=path, why=why))


def pull_bundle(settings: Settings, location: str | None = None,
                who: str = "bundle") -> PullResult:
    """Fetch, verify and apply one bundle. Refusals raise BundleError (and are audited);
    the live content is untouched unless everything checks out."""
    location = location or settings.bundle.pull_url
    if not location:
        raise KioskError(
            _("no bundle given: pass a URL or path (`kiosk content pull URL`) or set "
              "[bundle] pull_url in the config"))
    audit = AuditLog(settings.state_dir)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with _pull_lock(settings):
        try:
            applied_state(settings)  # a damaged floor refuses before anything is downloaded
            public_key = configured_public_key(settings)
            data = fetch_bundle(location, settings)
            bundle = read_bundle(data, public_key, max_bytes=settings.bundle.max_bundle_bytes)
            state = applied_state(settings)
            live = int(state.get("version", 0) or 0)
            version = bundle.manifest.version
            if version == live and bundle.sha256 == state.get("sha256"):
                return PullResult(False, version, _("Bundle {version} is already live; "
                                                    "nothing to do.").format(version=version))
            if version <= live:
                raise _refuse(_(
                    "its version {version} is not newer than the live bundle {live}. An old "
                    "bundle is never applied again (it could bring back outdated answers); "
                    "make a new bundle with `kiosk content bundle`").format(
                        version=version, live=live))
            notes = _apply(settings, bundle, who)
        except BundleError as exc:
            _record_refusal(settings, audit, who, location, str(exc))
            raise
        _forget_refusal(settings)
        write_atomically(_state_path(settings), json.dumps({
            "version": version,
            "sha256": bundle.sha256,
            "entries": bundle.manifest.entries,
            "applied": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "location": location,
        }, indent=1).encode("utf-8"), 0o644)
        audit.record("bundle_applied", who, version=version, entries=bundle.manifest.entries,
                     location=location, sha256=bundle.sha256)
    message = _("Applied bundle {version}: {entries} entries are now live.").format(
        version=version, entries=bundle.manifest.entries)
    return PullResult(True, version, " ".join([message, *notes]))


#: Most characters of a refusal's reason and location an audit line keeps.
_AUDIT_CHARS = 500
_REFUSED_FILE = ".bundle-refused.json"


def _record_refusal(settings: Settings, audit: AuditLog, who: str, location: str,
                    reason: str) -> None:
    """Audit a refusal once, in a bounded line: a poller meeting the same bad bundle every
    15 minutes must not fill the audit log with copies (the log says it once)."""
    key = hashlib.sha256(f"{location}\n{reason}".encode()).hexdigest()
    marker = settings.state_dir / _REFUSED_FILE
    try:
        last = json.loads(marker.read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError, AttributeError):
        last = None
    if last == key:
        log.info(_("bundle %s refused again for the same reason (recorded once in the audit "
                   "log)"), location[:_AUDIT_CHARS])
        return
    audit.record("bundle_refused", who, location=location[:_AUDIT_CHARS],
                 reason=reason[:_AUDIT_CHARS])
    with contextlib.suppress(OSError):
        write_atomically(marker, json.dumps({"key": key}).encode("ascii"))


def _forget_refusal(settings: Settings) -> None:
    with contextlib.suppress(OSError):
        (settings.state_dir / _REFUSED_FILE).unlink(missing_ok=True)


class _pull_lock:
    """One pull at a time per kiosk (the poller and a manual pull may meet). Waited for at
    most download_max_seconds: a pull that hangs must not block every later one."""

    def __init__(self, settings: Settings):
        self.path = settings.state_dir / ".bundle-pull.lock"
        self.wait = settings.bundle.download_max_seconds

    def __enter__(self) -> None:
        import fcntl

        self._fh = open(self.path, "a")
        end = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= end:
                    self._fh.close()
                    raise BundleError(_(
                        "another bundle pull has been running for more than {seconds} s "
                        "(lock {lock}); it may be stuck. Try again later, or restart "
                        "the kiosk service").format(seconds=f"{self.wait:g}", lock=self.path)) from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def _apply(settings: Settings, bundle: VerifiedBundle, who: str) -> list[str]:
    """Check the bundle's content and tables with the normal import rules, then publish
    (the new index version carries the bundle's synonym table). Returns notes for the
    operator."""
    from kiosk.content.entries import ContentError
    from kiosk.content.publishing import ContentPublisher
    from kiosk.search.query import SynonymError
    from kiosk.voice.speakable import ReadingDictionary, ReadingsError

    readings = bundle.files.get(READINGS_FILE, b"")
    with tempfile.TemporaryDirectory(prefix="kiosk-bundle-") as tmp:
        folder = Path(tmp)
        for name, data in bundle.files.items():
            if name in (CONTENT_FILE, SYNONYMS_FILE, READINGS_FILE):
                (folder / name).write_bytes(data)
        use = settings
        if bundle.files.get(SYNONYMS_FILE):
            use = dataclasses.replace(settings, content=dataclasses.replace(
                settings.content, synonyms_file=str(folder / SYNONYMS_FILE)))
        try:
            if readings:
                ReadingDictionary.load(folder / READINGS_FILE)
            ContentPublisher(use).import_files(
                [folder / CONTENT_FILE], who=who, note=f"bundle {bundle.manifest.version}")
        except ContentError as exc:
            raise _refuse(_("its content does not pass the import checks:\n{problems}")
                          .format(problems=exc)) from None
        except (SynonymError, ReadingsError) as exc:
            raise _refuse(_("its tables cannot be used: {reason}").format(reason=exc)) from None
    # The reading dictionary is not part of an index version: it goes to the staff file.
    return _install_readings(settings, readings)


def _install_readings(settings: Settings, data: bytes) -> list[str]:
    """Write the bundle's reading dictionary over this kiosk's staff file when it differs.
    The built-in (package) dictionary is never overwritten: a kiosk without a staff file
    gets a note instead."""
    configured = settings.voice.readings_file
    current = settings.path(configured) if configured else None
    try:
        existing = current.read_bytes() if current else b""
    except OSError:
        existing = b""
    if data == existing:
        return []
    if current is None:
        return [_("The bundle's reading dictionary was not installed: set [voice] "
                  "readings_file to a file path so bundles can update it.")]
    current.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(current, data, 0o644)
    return [_("Updated the reading dictionary {file} from the bundle.").format(file=current)]


class BundlePoller:
    """Fetches [bundle] pull_url every poll_minutes and applies newer bundles. A failed poll
    is logged and retried next time; the kiosk keeps serving what it has."""

    def __init__(self, settings: Settings, location: str | None = None):
        self.settings = settings
        self.location = location or settings.bundle.pull_url
        if not self.location:
            raise KioskError(
                _("no bundle location to poll: give one (`kiosk content pull --watch URL`) "
                  "or set [bundle] pull_url in the config"))
        if settings.bundle.poll_minutes <= 0:
            raise KioskError(
                _("polling is off: set [bundle] poll_minutes to how often to check (e.g. 15)"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started: float | None = None  # time.time() of the poll running now
        self._last_started = 0.0
        self._last_ok = ""
        self._last_error = ""
        self._failures = 0

    def poll_once(self) -> PullResult | None:
        self._started = self._last_started = time.time()
        try:
            result = pull_bundle(self.settings, self.location)
        except Exception as exc:  # a poll never kills the poller; it reports instead
            self._failures += 1
            self._last_error = str(exc)[:_AUDIT_CHARS]
            log.warning(_("bundle poll of %s failed (%d in a row): %s"), self.location,
                        self._failures, exc)
            return None
        finally:
            self._started = None
        self._failures, self._last_error = 0, ""
        self._last_ok = datetime.now(timezone.utc).isoformat(timespec="seconds")
        log.info(_("bundle poll of %s: %s"), self.location, result.message)
        return result

    def status(self, now: float | None = None, polling: bool | None = None) -> dict[str, object]:
        """For /healthz: is the poller alive, is a poll stuck, did the last one fail."""
        now = time.time() if now is None else now
        running = self._started is not None if polling is None else polling
        bundle = self.settings.bundle
        # a poll waits at most download_max_seconds for the lock, then as long to download
        bound = 2 * bundle.download_max_seconds + bundle.download_timeout_seconds + 60
        stuck = running and now - self._last_started > bound
        dead = self._thread is not None and not self._thread.is_alive() \
            and not self._stop.is_set()
        return {
            "ok": not stuck and not dead and self._failures == 0,
            "location": self.location[:_AUDIT_CHARS],
            "polling": running,
            "stuck": stuck,
            "stopped": dead,
            "failures": self._failures,
            "last_error": self._last_error,
            "last_ok": self._last_ok,
            "last_poll_started": self._last_started,
        }

    def run_forever(self) -> None:
        while not self._stop.is_set():
            result = self.poll_once()
            if result is not None:
                print(result.message, flush=True)
            self._stop.wait(self.settings.bundle.poll_minutes * 60)

    def start(self) -> BundlePoller:
        self._thread = threading.Thread(target=self.run_forever, name="bundle-poller",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
