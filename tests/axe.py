"""Shared by the page tests (staff desk, kiosk screen): the system Chromium in headless mode,
and axe-core (bundled in the axe-playwright-python package, MIT/MPL) with zero violations.
Import it from a test module: `from axe import assert_accessible, launch_chromium`."""

from __future__ import annotations

#: Debian's chromium (apt) — Playwright never downloads a browser here.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: The rule sets checked: WCAG 2.0/2.1/2.2 A and AA, plus axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def assert_accessible(page) -> None:
    """Run axe-core on the page as it is now; fail with axe's own report of what is wrong."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    assert results.violations_count == 0, results.generate_report()
