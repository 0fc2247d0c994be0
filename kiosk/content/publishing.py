"""Publishing: the one import path every way of changing content goes through (the CLI, the
staff desk, signed bundles, the first run). Validate → build a new index version → check it
opens → swap it live. All-or-nothing: on any problem the live index stays exactly as it was.

CONTRACT:
    ContentPublisher(settings=None, index_dir=None)
        .validate(paths) -> (entries, problems)
        .import_files(paths, who="", note="") -> PublishResult   — raises ContentError
        .publish_entries(entries, who="", note="") -> PublishResult
        .rollback(to=None) -> VersionInfo
        .versions_list() -> list[VersionInfo]
        .live_entries() -> list[Entry]
        .export_csv(path) -> Path
    ensure_index(settings) -> Path   — the live index folder, building the bundled (or
                                       configured) content on first run, offline
    default_sources(settings) -> list[Path]
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from whoosh import index as windex

from kiosk import DATA_DIR, KioskError
from kiosk.config import Settings
from kiosk.content.contract import Entry
from kiosk.content.entries import (
    ContentError,
    ContentProblem,
    validate_content,
    write_csv,
)
from kiosk.i18n import _
from kiosk.progress import Progress
from kiosk.search.index import build_index
from kiosk.search.query import BUNDLED_SYNONYMS, SynonymTable
from kiosk.search.versions import (
    VERSION_SYNONYMS,
    IndexVersions,
    VersionInfo,
    open_version,
)

#: The bundled default content: every *.jsonl file here (see kiosk/data/README.md).


@dataclass(frozen=True)
class PublishResult:
    """What an import did: the new live version, the one it replaced, and the warnings."""

    version: VersionInfo
    previous: str | None
    warnings: list[ContentProblem] = field(default_factory=list)


def default_sources(settings: Settings) -> list[Path]:
    """[content] sources from the config, or the bundled *.jsonl files."""
    if settings.content.sources:
        return [settings.path(s) for s in settings.content.sources]
    return sorted(DATA_DIR.glob("*.jsonl"))


def synonyms_path(settings: Settings) -> Path:
    """The synonym table the next version will carry."""
    configured = settings.content.synonyms_file
    return settings.path(configured) if configured else BUNDLED_SYNONYMS


class ContentPublisher:
    """Imports, rollbacks and exports for one index root (paths.index_dir by default)."""

    def __init__(self, settings: Settings | None = None, index_dir: str | Path | None = None):
        self.settings = settings or Settings()
        self.versions = IndexVersions.from_settings(self.settings, index_dir)

    def validate(self, paths: Iterable[str | Path] | str | Path,
                 ) -> tuple[list[Entry], list[ContentProblem]]:
        return validate_content(paths, self.settings)

    def import_files(self, paths: Sequence[str | Path] | str | Path, who: str = "",
                     note: str = "") -> PublishResult:
        """Validate every file, then build and publish; ContentError (listing every problem)
        when anything is wrong, and then nothing changed."""
        entries, problems = self.validate(paths)
        if any(not p.warning for p in problems):
            raise ContentError(problems)
        names = [paths] if isinstance(paths, (str, Path)) else list(paths)
        note = note or "imported " + ", ".join(Path(p).name for p in names)
        result = self.publish_entries(entries, who=who, note=note)
        return PublishResult(result.version, result.previous,
                             [p for p in problems if p.warning])

    def publish_entries(self, entries: Sequence[Entry], who: str = "",
                        note: str = "") -> PublishResult:
        """Build `entries` (already validated) into a new version and make it live."""
        if not entries:
            raise KioskError(_("there are no entries to publish; the live content was not "
                               "changed"))
        table = synonyms_path(self.settings)
        SynonymTable.load(table)  # a broken table stops the import before anything is built
        with self.versions.lock():
            previous = self.versions.current_id()
            try:
                with self.versions.build(who=who, note=note) as b:
                    # the live version's vectors of unchanged entries are copied, not
                    # embedded again (most of a re-import's time)
                    build_index(entries, b.folder, self.settings,
                                previous=self.versions.current_path())
                    shutil.copyfile(table, b.folder / VERSION_SYNONYMS)
                    _check_version(b.folder, len(entries), self.settings)
                    b.entries = len(entries)
            except OSError as exc:
                raise KioskError(
                    _("the new index could not be written in {folder} ({reason}); check free "
                      "disk space and permissions, then import again. The live content was "
                      "not changed").format(folder=self.versions.root,
                                            reason=exc.strerror or exc)) from None
            assert b.info is not None
            version = self.versions.publish(b.info.id)
        return PublishResult(version, previous)

    def rollback(self, to: str | None = None) -> VersionInfo:
        """Back to the previous version (or version `to`); see IndexVersions.rollback."""
        return self.versions.rollback(to)

    def versions_list(self) -> list[VersionInfo]:
        return self.versions.list()

    def live_entries(self) -> list[Entry]:
        """Every entry of the live version, in import order."""
        folder = self.versions.current_path()
        if folder is None:
            raise KioskError(_("there is no live content in {folder} yet; import some with "
                               "`kiosk content import FILE...`").format(folder=self.versions.root))
        with open_version(folder, self.settings) as index:
            return index.entries()

    def export_csv(self, path: str | Path) -> Path:
        """The live content as the staff CSV (edit in Excel, import again)."""
        return write_csv(self.live_entries(), path)


def _check_version(folder: Path, expected: int, settings: Settings) -> None:
    """Open the finished index the way the kiosk will, before it can go live."""
    with open_version(folder, settings) as index:
        found = len(index.entries())
    if found != expected:
        raise KioskError(_("the new index holds {found} entries instead of {expected}; "
                           "nothing was published. Try the import again").format(
            found=found, expected=expected))


def ensure_index(settings: Settings) -> Path:
    """The live index folder; on first run (no index yet) build the bundled or configured
    content into it, with no network, so a new install answers at once."""
    publisher = ContentPublisher(settings)
    versions = publisher.versions  # one object: its lock is re-entrant, a second one's is not
    folder = versions.current_path()
    if folder is not None:
        return folder
    root = settings.index_dir
    if root.is_dir() and windex.exists_in(str(root)):
        return root  # a plain index built straight into the folder
    with versions.lock():
        folder = versions.current_path()  # another process may have built it meanwhile
        if folder is None:
            with Progress(_("first run: building the search index (once, about a minute)")):
                publisher.import_files(
                    default_sources(settings), who="first run",
                    note="default content (first run)")
            folder = versions.current_path()
    assert folder is not None
    return folder
