"""Kiosk configuration: one TOML file, one frozen settings dataclass per section.

Every default lives here, in the dataclasses, and `kiosk/defaults.toml` documents the same
values with comments (a test keeps the two equal). A deployment writes only the keys it
changes. Unknown sections or keys are rejected with the file and the key named, because a
typo in a city's config must not silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where the kiosk looks for its config when no --config is given.
CONFIG_ENV = "KIOSK_CONFIG"
#: Base folder for relative paths when the defaults are used without a config file.
HOME_ENV = "KIOSK_HOME"
DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class PathSettings:
    """Where the kiosk keeps what it builds and installs. Relative paths resolve against the
    config file's folder (or $KIOSK_HOME, or the current folder when there is no file)."""

    index_dir: str = "index"
    models_dir: str = "models"
    state_dir: str = "var"


@dataclass(frozen=True)
class ContentSettings:
    """Which content the kiosk serves and how imports are checked."""

    # Content files/folders imported on first run when no index exists yet.
    # Empty means the bundled Atsugi default content.
    sources: tuple[str, ...] = ()
    # Staff-editable synonym table; empty means the bundled one.
    synonyms_file: str = ""
    # How many earlier index versions are kept for `kiosk content rollback`.
    keep_versions: int = 3
    # Field size limits (characters); bigger values are rejected at import.
    max_title_chars: int = 200
    max_body_chars: int = 20000
    max_spoken_chars: int = 1000
    # Sentences in spoken text longer than this get a validation warning (やさしい日本語).
    max_spoken_sentence_chars: int = 60


@dataclass(frozen=True)
class SearchSettings:
    """How queries are matched against the index."""

    # How many candidates a search returns.
    limit: int = 10
    # BM25F field weights.
    title_weight: float = 3.0
    body_weight: float = 1.0
    keywords_weight: float = 2.0
    reading_weight: float = 0.5


@dataclass(frozen=True)
class AnswerSettings:
    """When an answer is given outright, asked back, or declined."""

    # Below this normalised score nothing is read out; categories are offered instead.
    min_score: float = 0.3
    # When the second candidate scores at least this fraction of the first, ask back.
    ambiguity_ratio: float = 0.85


@dataclass(frozen=True)
class Settings:
    """The whole kiosk configuration, as loaded from one TOML file."""

    base_dir: Path = field(default_factory=Path.cwd)
    source: Path | None = None
    paths: PathSettings = PathSettings()
    content: ContentSettings = ContentSettings()
    search: SearchSettings = SearchSettings()
    answer: AnswerSettings = AnswerSettings()

    def path(self, value: str) -> Path:
        """Resolve a configured path against the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def index_dir(self) -> Path:
        return self.path(self.paths.index_dir)

    @property
    def models_dir(self) -> Path:
        return self.path(self.paths.models_dir)

    @property
    def state_dir(self) -> Path:
        return self.path(self.paths.state_dir)


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(Settings)
        if dataclasses.is_dataclass(hints[f.name])
    }


def _coerce(where: str, key: str, value: Any, expected: Any) -> Any:
    origin = typing.get_origin(expected)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{key}' must be a list")
        return tuple(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (int, float, str, bool) and not isinstance(value, expected):
        raise ConfigError(
            f"{where}: '{key}' must be {expected.__name__}, not {type(value).__name__} ({value!r})"
        )
    return value


def _build_section(where: str, cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )
    values = {k: _coerce(where, k, v, hints[k]) for k, v in data.items()}
    return cls(**values)


def settings_from_dict(data: dict[str, Any], *, base_dir: Path, source: Path | None = None,
                       where: str = "config") -> Settings:
    """Build Settings from parsed TOML, checking every section and key."""
    sections = _section_types()
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) [{'], ['.join(unknown)}]; "
            f"known sections: {', '.join(sorted(sections))}"
        )
    built = {}
    for name, cls in sections.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        built[name] = _build_section(f"{where} [{name}]", cls, raw)
    return Settings(base_dir=base_dir, source=source, **built)


def load_settings(path: str | Path | None = None) -> Settings:
    """Load the config file named, or $KIOSK_CONFIG, or ./kiosk.toml, or the defaults."""
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        if env:
            path = env
        elif Path("kiosk.toml").is_file():
            path = Path("kiosk.toml")
    if path is None:
        home = os.environ.get(HOME_ENV)
        return Settings(base_dir=Path(home).resolve() if home else Path.cwd())
    file = Path(path).expanduser().resolve()
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    return settings_from_dict(data, base_dir=file.parent, source=file, where=str(file))


def defaults_as_dict() -> dict[str, dict[str, Any]]:
    """The built-in defaults, section by section, as TOML would give them."""
    out: dict[str, dict[str, Any]] = {}
    base = Settings()
    for name in _section_types():
        section = dataclasses.asdict(getattr(base, name))
        out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in section.items()}
    return out
