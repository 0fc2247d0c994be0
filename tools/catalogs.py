"""Regenerate the message catalogs after adding or changing a message (CONTRIBUTING.md).

    python3 tools/catalogs.py            # extract → kiosk/locale/kiosk.pot, merge into each .po
    python3 tools/catalogs.py --check    # exit 1 when a message has no translation (tests run it)

Messages are the `_()`, `ngettext()` and `N_()` strings under kiosk/, the {{ … }} texts of
the staff desk's templates (kiosk/staff/assets/*.html), plus argparse's own ("usage:",
"error:", …), which the CLI routes through the kiosk's catalog. Then write the
Japanese of every new entry (msgstr) in kiosk/locale/ja/LC_MESSAGES/kiosk.po; the .mo files
are compiled at build time (setup.py) and never committed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "kiosk" / "locale"
TEMPLATE = LOCALE_DIR / "kiosk.pot"
LANGUAGES = ("ja",)
#: The staff desk's template texts, as kiosk/staff/pages.py reads them.
TEMPLATE_TEXT = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)


def extract_template(fileobj, keywords, comment_tags, options):
    """Babel extractor for the desk's HTML templates: each {{ … }} text, line breaks folded."""
    text = fileobj.read().decode("utf-8")
    for match in TEMPLATE_TEXT.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, None, " ".join(match.group(1).split()), []


METHOD_MAP = [("**.py", "python"), ("staff/assets/**.html", extract_template)]


def extract() -> Catalog:
    """Every message the kiosk's code (and argparse) can show."""
    template = Catalog(project="atsugi-voice-kiosk", domain="kiosk", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            ROOT / "kiosk", METHOD_MAP, strip_comment_tags=True):
        template.add(message, None, [(f"kiosk/{filename}", lineno)],
                     auto_comments=comments, context=context)
    for lineno, message, comments, context in extract_from_file("python", argparse.__file__):
        template.add(message, None, [("argparse.py", lineno)], context=context)
    return template


def untranslated(catalog: Catalog) -> list[str]:
    out = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            out.append(message.id if isinstance(message.id, str) else message.id[0])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; fail when a message is not translated")
    args = parser.parse_args(argv)
    template = extract()
    missing_total = 0
    for lang in LANGUAGES:
        po_file = LOCALE_DIR / lang / "LC_MESSAGES" / "kiosk.po"
        if po_file.is_file():
            with open(po_file, "rb") as fh:
                catalog = read_po(fh, locale=lang, domain="kiosk")
        else:
            catalog = Catalog(locale=lang, domain="kiosk", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        missing = untranslated(catalog)
        argparse_only = {m.id if isinstance(m.id, str) else m.id[0] for m in template
                         if m.id and all(loc[0] == "argparse.py" for loc in m.locations)}
        missing = [m for m in missing if m not in argparse_only]
        missing_total += len(missing)
        if args.check:
            for m in missing:
                print(f"{po_file.relative_to(ROOT)}: no translation for {m!r}")
            continue
        catalog.obsolete.clear()
        po_file.parent.mkdir(parents=True, exist_ok=True)
        with open(po_file, "wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, sort_output=False)
        print(f"{po_file.relative_to(ROOT)}: {len(catalog)} messages, {len(missing)} to translate")
    if not args.check:
        with open(TEMPLATE, "wb") as fh:
            write_po(fh, template, width=100)
    return 1 if args.check and missing_total else 0


if __name__ == "__main__":
    sys.exit(main())
