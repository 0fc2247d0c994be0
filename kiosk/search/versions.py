"""Index versions: every import builds a complete new index in its own folder, and only then
is the live pointer swapped to it, so a running kiosk never sees a half-built index and a
crash mid-import leaves the old one serving.

Layout under the index root (paths.index_dir):

    current                     symlink → versions/<id>; replaced atomically (os.replace)
    versions/<id>/              one complete index + version.json (+ the synonym table)
    versions/.building-<id>/    an import in progress; left over only by a crash, and
                                removed by the next import
    .lock                       held (flock) while an import or rollback runs

CONTRACT:
    IndexVersions(root, keep_versions=3, lock_timeout=60.0)
        .build(who="", note="") -> context manager yielding a Build (folder to fill);
                                   on success the folder becomes versions/<id>
        .publish(version_id) -> VersionInfo       — swap `current`, prune old versions
        .rollback(to=None) -> VersionInfo         — back to the previous (or a named) version
        .list() -> list[VersionInfo]              — newest first
        .current() -> VersionInfo | None / .current_path() -> Path | None
        .lock()                                   — the import lock (re-entrant per object)
    LiveIndex(root, settings)   — thread-safe search over whatever `current` points to;
        .search(query, limit=None) -> list[Hit], .entries(), .categories(), .entries_in(category),
        .version, .close()
        .problem                  — why the live version could not be reopened ("" = fine)
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from whoosh import index as windex

from kiosk import KioskError
from kiosk.atomic import write_atomically
from kiosk.config import Settings
from kiosk.content.contract import Entry
from kiosk.i18n import _
from kiosk.search.contract import Hit
from kiosk.search.index import SearchIndex

log = logging.getLogger(__name__)

CURRENT = "current"
VERSIONS = "versions"
LOCK_FILE = ".lock"
META_FILE = "version.json"
#: Synonym table carried inside each version, so a version (and a rollback) is self-contained.
VERSION_SYNONYMS = "synonyms.tsv"
_BUILDING = ".building-"


class IndexVersionError(KioskError):
    """The versions folder cannot be used as asked (locked, missing version, no permission)."""


@dataclass(frozen=True)
class VersionInfo:
    """One index version, as `kiosk content list` and the staff desk show it."""

    id: str
    created: str  # ISO time (UTC)
    entries: int
    who: str
    note: str
    path: Path
    current: bool = False
    seq: int = 0  # build order: 1, 2, 3 … (clocks can jump; this cannot)
    previous: str = ""  # the version that was live when this one was published
    published: str = ""  # ISO time it first went live; "" = built but never live


@dataclass
class Build:
    """A version being built: fill `folder`, set `entries`; the context manager finishes it."""

    id: str
    folder: Path
    who: str
    note: str
    entries: int = 0
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    info: VersionInfo | None = None  # set once the build is complete


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Make a finished version durable before it can become live (power cuts happen)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


class IndexVersions:
    """The versions folder of one index root; all changes happen under an exclusive lock."""

    def __init__(self, root: str | Path, keep_versions: int = 3, lock_timeout: float = 60.0):
        self.root = Path(root)
        self.versions_dir = self.root / VERSIONS
        self.keep_versions = max(0, keep_versions)
        self.lock_timeout = lock_timeout
        self._lock_fd: int | None = None
        self._lock_depth = 0
        self._thread_lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings, root: str | Path | None = None) -> IndexVersions:
        return cls(Path(root) if root is not None else settings.index_dir,
                   settings.content.keep_versions, settings.content.lock_timeout_seconds)

    # ------------------------------------------------------------------ locking

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive for imports/rollbacks across processes; the kernel drops it if the holder
        dies (kill -9), so a crash never leaves a stale lock."""
        with self._thread_lock:
            if self._lock_depth == 0:
                self._acquire()
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    self._release()

    def _acquire(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IndexVersionError(
                _("cannot use the index folder {folder}: {reason}; check paths.index_dir in "
                  "the config and the folder's permissions").format(
                    folder=self.root, reason=exc.strerror or exc)) from None
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                    os.close(fd)
                    raise IndexVersionError(
                        _("another import or rollback is running on {folder} (process "
                          "{process}); wait for it to finish and try again").format(
                            folder=self.root, process=holder or "?")) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------ reading

    def current_path(self) -> Path | None:
        """The live version's folder, or None when nothing was published yet."""
        link = self.root / CURRENT
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            return None
        except OSError:
            if link.is_dir():  # a plain folder named current (copied by hand): use it
                return link
            raise
        folder = (self.root / target)
        if not folder.is_dir():
            raise IndexVersionError(
                _("the live index version {version} is missing from {folder}; run "
                  "`kiosk content rollback` to go back to a kept version, or import the "
                  "content again").format(version=target, folder=self.root))
        return folder

    def current_id(self) -> str | None:
        """The live version's id (cheap: one readlink), for change detection."""
        try:
            return Path(os.readlink(self.root / CURRENT)).name
        except OSError:
            return None

    def current(self) -> VersionInfo | None:
        folder = self.current_path()
        return None if folder is None else self._info(folder, current=True)

    def _complete(self) -> list[VersionInfo]:
        """Every complete version folder, live or not, newest first."""
        if not self.versions_dir.is_dir():
            return []
        live = self.current_id()
        infos = [self._info(p, current=p.name == live) for p in self.versions_dir.iterdir()
                 if p.is_dir() and not p.name.startswith(".")]
        return sorted(infos, key=lambda v: (v.seq, v.created, v.id), reverse=True)

    def list(self) -> list[VersionInfo]:
        """Every kept version, newest first: the live one and those that were live before. A
        version that was built but never went live (an import killed before its swap) is
        not one of them."""
        return [v for v in self._complete() if v.current or v.published]

    def _find(self, version_id: str, candidates: list[VersionInfo]) -> VersionInfo:
        """The version named `version_id` among `candidates`, checked by name against that
        list before anything is touched (an empty or path-like id never reaches the disk)."""
        found = next((v for v in candidates if v.id == version_id), None)
        if found is None:
            known = ", ".join(v.id for v in self.list()) or _("none")
            raise IndexVersionError(
                _("there is no index version {version!r}; kept versions: {known} "
                  "(see `kiosk content list`)").format(version=version_id, known=known))
        return found

    def get(self, version_id: str) -> VersionInfo:
        """A kept version (see `list`) by id."""
        return self._find(version_id, self.list())

    def _check_opens(self, version: VersionInfo) -> None:
        """A version must open as a search index before `current` may point at it."""
        folder = str(version.path)
        try:
            if not windex.exists_in(folder):
                raise ValueError(_("no index files"))
            ix = windex.open_dir(folder)
            try:
                with ix.reader() as reader:
                    reader.doc_count()
            finally:
                ix.close()
        except Exception as exc:  # whoosh raises many kinds for damaged files
            raise IndexVersionError(_(
                "index version {version} in {folder} cannot be opened ({reason}); "
                "the live version was not changed. Choose another version from `kiosk "
                "content list`, or import the content again").format(
                    version=version.id, folder=self.versions_dir, reason=exc)) from None

    def _info(self, folder: Path, current: bool) -> VersionInfo:
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        created = meta.get("created") or datetime.fromtimestamp(
            folder.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        # Versions made before the "published" mark existed were all published.
        published = meta.get("published", created)
        return VersionInfo(id=folder.name, created=created, entries=int(meta.get("entries", 0)),
                           who=str(meta.get("who", "")), note=str(meta.get("note", "")),
                           path=folder, current=current, seq=int(meta.get("seq", 0)),
                           previous=str(meta.get("previous") or ""),
                           published=str(published or ""))

    # ------------------------------------------------------------------ building

    def clean_partial(self) -> list[Path]:
        """Remove folders left by builds that died, and complete versions that never went
        live (an import killed between its build and its swap). Call with the lock held."""
        removed = []
        if self.versions_dir.is_dir():
            for p in self.versions_dir.iterdir():
                if p.name.startswith(_BUILDING):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p)
            for v in self._complete():
                if not v.current and not v.published:
                    shutil.rmtree(v.path, ignore_errors=True)
                    removed.append(v.path)
        for p in self.root.glob(f".{CURRENT}-*.tmp"):
            p.unlink(missing_ok=True)
        return removed

    def _new_id(self) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        vid, n = stamp, 1
        while (self.versions_dir / vid).exists():
            n += 1
            vid = f"{stamp}-{n}"
        return vid

    @contextlib.contextmanager
    def build(self, who: str = "", note: str = "") -> Iterator[Build]:
        """Hold the lock, give a fresh private folder to fill, and on success turn it into a
        complete version (durable on disk). On any error the folder is removed; the live
        version is never touched here — `publish` does that."""
        with self.lock():
            for p in self.clean_partial():
                log.warning(_("removed %s, left by an import that did not finish"), p)
            vid = self._new_id()
            work = self.versions_dir / f"{_BUILDING}{vid}"
            try:
                work.mkdir(parents=True)
            except OSError as exc:
                raise IndexVersionError(
                    _("cannot create a new index version in {folder}: {reason}; check "
                      "permissions and free disk space").format(
                        folder=self.versions_dir, reason=exc.strerror or exc)) from None
            b = Build(id=vid, folder=work, who=who, note=note)
            try:
                yield b
                created = datetime.now(timezone.utc).isoformat(timespec="seconds")
                seq = 1 + max((v.seq for v in self._complete()), default=0)
                meta = {"id": vid, "seq": seq, "created": created, "entries": b.entries,
                        "who": who, "note": note, **b.extra, "published": ""}
                (work / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1),
                                              encoding="utf-8")
                _fsync_tree(work)
                final = self.versions_dir / vid
                os.rename(work, final)
                _fsync_dir(self.versions_dir)
                b.folder = final
                b.info = self._info(final, current=False)
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise

    # ------------------------------------------------------------------ switching

    def _point_current(self, version_id: str) -> None:
        """Atomic swap: a new symlink beside `current`, fsync'd, then renamed over it."""
        tmp = self.root / f".{CURRENT}-{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(f"{VERSIONS}/{version_id}", tmp)
        os.replace(tmp, self.root / CURRENT)
        _fsync_dir(self.root)

    def publish(self, version_id: str) -> VersionInfo:
        """Make a complete version live, then prune versions beyond keep_versions."""
        with self.lock():
            target = self._find(version_id, self._complete())
            self._check_opens(target)
            link = self.root / CURRENT
            if link.exists() and not link.is_symlink():
                raise IndexVersionError(
                    _("{link} is a real folder, not the link this kiosk manages; move it "
                      "away and import again").format(link=link))
            previous = self.current_id()
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            if previous and previous != version_id:
                self._set_meta(version_id, previous=previous)
                if (self.versions_dir / previous).is_dir() and not self._info(
                        self.versions_dir / previous, current=True).published:
                    self._set_meta(previous, published=now)  # went live, mark was lost
            self._point_current(version_id)
            if not target.published:  # only after the swap: a crash before it leaves no mark
                self._set_meta(version_id, published=now)
            self.prune()
            return self.get(version_id)

    def _set_meta(self, version_id: str, **values: Any) -> None:
        folder = self.versions_dir / version_id
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        meta.update(values)
        write_atomically(folder / META_FILE,
                         json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8"))

    def rollback(self, to: str | None = None) -> VersionInfo:
        """Go back to the version that was live before the live one was published (or,
        when that one is gone, the newest older one; or to version `to`). Newer versions are
        kept, so a rollback can itself be undone with `to`."""
        with self.lock():
            versions = self.list()
            live = next((v for v in versions if v.current), None)
            if to is not None:
                target = self.get(to)
            elif live is None:  # the live version was deleted by hand, or never published
                if not versions:
                    raise IndexVersionError(_("there is no index version to roll back to; "
                                              "import content with `kiosk content import "
                                              "FILE...`"))
                target = versions[0]
            else:
                older = [v for v in versions if v.id == live.previous]
                older += [v for v in versions if v.seq < live.seq]
                if not older:
                    raise IndexVersionError(
                        _("there is no version older than the live one ({version}) to go back "
                          "to; `kiosk content list` shows the kept versions, and "
                          "`kiosk content rollback --to VERSION` makes any of them live")
                        .format(version=live.id))
                target = older[0]
            self._check_opens(target)
            self._point_current(target.id)
            return self.get(target.id)

    def prune(self) -> list[str]:
        """Delete all but the live version and the `keep_versions` newest others."""
        with self.lock():
            others = [v for v in self.list() if not v.current]
            removed = []
            for v in others[self.keep_versions:]:
                shutil.rmtree(v.path, ignore_errors=True)
                removed.append(v.id)
            return removed


# ---------------------------------------------------------------------------- live search


def version_settings(folder: Path, settings: Settings) -> Settings:
    """Settings that read the synonym table carried inside a version folder, so searching a
    version (or a rolled-back one) uses the table it was published with."""
    table = Path(folder) / VERSION_SYNONYMS
    if not table.is_file():
        return settings
    return dataclasses.replace(
        settings, content=dataclasses.replace(settings.content, synonyms_file=str(table)))


def open_version(folder: Path, settings: Settings) -> SearchIndex:
    """Open one version folder with its own synonym table."""
    return SearchIndex.open(folder, version_settings(folder, settings))


def _prepare_sound_alikes(index: SearchIndex) -> None:
    """Build a new version's sound-alike lookup before a visitor needs it (a version closed
    meanwhile by the next swap is no loss)."""
    try:
        index.prepare_sound_alikes()
    except Exception as exc:  # noqa: BLE001 — a warm-up; the question builds it if needed
        log.debug("sound-alike lookup not prepared in the background: %s", exc)


class LiveIndex:
    """Search whatever `current` points to, for a long-running kiosk: after every import or
    rollback the next search reopens the new version (no restart), and a search during the
    swap is answered by the old version instead of failing."""

    def __init__(self, root: str | Path, settings: Settings | None = None):
        self.settings = settings or Settings()
        self.versions = IndexVersions(root)
        self._lock = threading.Lock()
        self._index: SearchIndex | None = None
        self._version: str | None = None
        self.problem = ""  # why the live version could not be reopened ("" = fine)
        self.refresh()
        if self._index is None:
            raise IndexVersionError(
                _("there is no published index in {folder}; build one with "
                  "`kiosk content import FILE...` (or run `kiosk ask` once to index the "
                  "bundled content)").format(folder=self.versions.root))

    @property
    def version(self) -> str | None:
        return self._version

    def refresh(self) -> bool:
        """Reopen if `current` moved; True when the version changed. If the new version
        cannot be opened (e.g. pruned a moment ago) the old one keeps serving."""
        live = self.versions.current_id()
        if live is None or live == self._version:
            if live == self._version:
                self.problem = ""
            return False
        try:
            folder = self.versions.current_path()
            if folder is None:
                return False
            new = open_version(folder, self.settings)
        except KioskError as exc:
            if self._index is None:
                raise
            if not self.problem:
                log.warning(_("keeping index version %s: cannot open %s yet (%s)"),
                            self._version, live, exc)
            self.problem = _("index version {live} cannot be opened ({reason}); still answering "
                             "from {version}. Run `kiosk content rollback` or import "
                             "the content again").format(live=live, reason=exc, version=self._version)
            return False
        with self._lock:  # every use of an index holds this lock, so `old` is idle now
            old, self._index, self._version = self._index, new, folder.name
            self.problem = ""
            if old is not None:
                old.close()
        log.info(_("now searching index version %s"), folder.name)
        if self.settings.answer.sound_alike_weight > 0 and \
                self.settings.search.sound_alike_min_similarity <= 1:  # else never looked up
            threading.Thread(target=_prepare_sound_alikes, args=(new,), name="sound-alikes",
                             daemon=True).start()
        return True

    def _use(self) -> SearchIndex:
        if self._index is None:
            raise IndexVersionError(_("the live index is closed"))
        return self._index

    def search(self, query: str, limit: int | None = None) -> list[Hit]:
        self.refresh()
        with self._lock:
            return self._use().search(query, limit)

    def sounds_like(self, texts: Sequence[str], limit: int) -> list[Hit]:
        self.refresh()
        with self._lock:
            return self._use().sounds_like(texts, limit)

    def entries(self) -> list[Entry]:
        self.refresh()
        with self._lock:
            return self._use().entries()

    def categories(self) -> list[str]:
        self.refresh()
        with self._lock:
            return self._use().categories()

    def entries_in(self, category: str) -> list[Entry]:
        self.refresh()
        with self._lock:
            return self._use().entries_in(category)

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None

    def __enter__(self) -> LiveIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
