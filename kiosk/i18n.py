"""Messages people read (CLI help and errors, reports, the staff desk, operator logs), in
Japanese by default and in English on request, through the standard gettext machinery.

Source strings are English, written in the code inside `_()` (or `ngettext()`; `N_()` marks
a string kept in a constant and translated where it is shown). Their Japanese lives in
kiosk/locale/ja/LC_MESSAGES/kiosk.po, extracted and compiled with Babel
(`python3 tools/catalogs.py`, see CONTRIBUTING.md); the installed package carries the
compiled kiosk.mo (setup.py compiles it at build time). A source checkout that has no
compiled catalog yet reads the .po directly, so a fresh clone speaks Japanese too.

The language: $KIOSK_LANG when set, else `[ui] language` from the config (the CLI and the
servers call `set_language` once they have read it), else Japanese. What the visitor hears
and reads is always Japanese and does not go through here.

Placeholders are named (`_("{file} does not exist").format(file=...)`) so a translation may
put them in another order.
"""

from __future__ import annotations

import gettext
import io
import logging
import os
import threading
from pathlib import Path

DOMAIN = "kiosk"
LOCALE_DIR = Path(__file__).with_name("locale")
#: Languages the kiosk's messages come in; the first is the default.
LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = LANGUAGES[0]
#: Environment variable that overrides `[ui] language`.
LANGUAGE_ENV = "KIOSK_LANG"

log = logging.getLogger(__name__)
_lock = threading.Lock()
_catalogs: dict[str, gettext.NullTranslations] = {}
_language: str | None = None


def normalise_language(value: str | None) -> str | None:
    """'ja', 'ja_JP.UTF-8', 'EN' … → 'ja' / 'en'; None for anything the kiosk does not speak."""
    if not value:
        return None
    code = value.strip().lower().replace("-", "_").split(".")[0].split("_")[0]
    return code if code in LANGUAGES else None


def resolve_language(configured: str | None = None) -> str:
    """$KIOSK_LANG when it names a known language, else `configured`, else Japanese."""
    return (normalise_language(os.environ.get(LANGUAGE_ENV))
            or normalise_language(configured) or DEFAULT_LANGUAGE)


def set_language(configured: str | None = None) -> str:
    """Make the messages of this process follow $KIOSK_LANG / `configured`; returns the
    language chosen."""
    global _language
    _language = resolve_language(configured)
    return _language


def language() -> str:
    """The language messages are given in now."""
    return _language or set_language()


def catalog_files(lang: str) -> tuple[Path, Path]:
    """The compiled (.mo) and source (.po) catalog of one language."""
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    return folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"


def compile_catalog(po_file: Path) -> bytes:
    """A .po catalog compiled to .mo bytes with Babel (fuzzy entries left out)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(po_file, "rb") as fh:
        catalog = read_po(fh, locale=po_file.parent.parent.name, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def _load(lang: str) -> gettext.NullTranslations:
    mo, po = catalog_files(lang)
    try:
        if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
            with open(mo, "rb") as fh:
                return gettext.GNUTranslations(fh)
        if po.is_file():  # a source checkout: no compiled catalog yet (or an older one)
            return gettext.GNUTranslations(io.BytesIO(compile_catalog(po)))
    except (OSError, ImportError, ValueError) as exc:
        log.warning("the %s message catalog could not be read (%s); messages are in English",
                    lang, exc)
    return gettext.NullTranslations()


def translations(lang: str | None = None) -> gettext.NullTranslations:
    """The catalog of `lang` (default: the current language), loaded once."""
    lang = lang or language()
    found = _catalogs.get(lang)
    if found is None:
        with _lock:
            found = _catalogs.get(lang)
            if found is None:
                found = gettext.NullTranslations() if lang == "en" else _load(lang)
                _catalogs[lang] = found
    return found


def _(message: str) -> str:
    """`message` (English source text) in the current language."""
    return translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for `n`, in the current language."""
    return translations().ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a message for the catalog without translating it yet (constants, tables);
    pass it through `_()` where it is shown."""
    return message
