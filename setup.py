"""Compiles the message catalogs (kiosk/locale/*/LC_MESSAGES/kiosk.po → .mo) while the
package is built, so an installed kiosk carries them; everything else is in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LOCALE = Path("kiosk") / "locale"


class BuildWithCatalogs(build_py):
    """build_py that also writes each kiosk.mo (in the source tree for an editable install,
    in the build folder otherwise)."""

    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        target_root = Path(".") if getattr(self, "editable_mode", False) else Path(self.build_lib)
        for po_file in sorted(LOCALE.glob("*/LC_MESSAGES/kiosk.po")):
            with open(po_file, "rb") as fh:
                catalog = read_po(fh, locale=po_file.parent.parent.name, domain="kiosk")
            mo_file = target_root / po_file.with_suffix(".mo")
            mo_file.parent.mkdir(parents=True, exist_ok=True)
            with open(mo_file, "wb") as fh:
                write_mo(fh, catalog)


setup(cmdclass={"build_py": BuildWithCatalogs})
