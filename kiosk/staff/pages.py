"""The staff desk's HTML: templates from assets/, filled with escaped values, and the
small building blocks (notices, tables, bar charts) every page uses."""

from __future__ import annotations

import html
import re
import secrets
import string
from pathlib import Path

from kiosk import i18n
from kiosk.i18n import _
from kiosk.staff.accounts import Session

WEB_DIR = Path(__file__).with_name("assets")
#: Text staff read in a template: {{ English source }}, translated when the template is
#: first used in a language (tools/catalogs.py extracts it for the catalog).
TEMPLATE_TEXT = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)


# ----------------------------------------------------------------------------- rendering


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


_templates: dict[tuple[str, str], string.Template] = {}


def template_message(marked: str) -> str:
    """The msgid of one {{ … }} text: its words with the line breaks folded."""
    return " ".join(marked.split())


def render(name: str, **values: object) -> str:
    """Fill a template from kiosk/staff/assets, its {{ … }} texts in the current language;
    values are inserted as given, so callers escape text with _esc and pass ready-made HTML
    only for fragments they built."""
    key = (i18n.language(), name)
    if key not in _templates:
        text = (WEB_DIR / name).read_text(encoding="utf-8")
        text = TEMPLATE_TEXT.sub(lambda m: _esc(_(template_message(m.group(1)))), text)
        _templates[key] = string.Template(text)
    return _templates[key].substitute({k: str(v) for k, v in values.items()})


def page(title: str, main: str, session: Session | None = None, current: str = "",
         flash: str = "") -> str:
    nav = ""
    if session is not None:
        marks = {f"current_{k}": ('aria-current="page"' if k == current else "")
                 for k in ("home", "history", "report", "review")}
        nav = render("nav.html", csrf=_esc(session.csrf), user=_esc(session.user), **marks)
    return render("layout.html", title=_esc(title), nav=nav, main=main, flash=flash,
                  lang=i18n.language())


def notice(text: str, bad: bool = False) -> str:
    role = 'role="alert"' if bad else 'role="status"'
    return f'<div class="notice{" bad" if bad else ""}" {role}><p>{_esc(text)}</p></div>'


def table(caption: str, headers: list[str], rows: list[list[object]],
          numeric: set[int] = frozenset(), raw: set[int] = frozenset()) -> str:
    """An accessible data table; columns in `raw` hold HTML this module built."""
    head = "".join(
        f'<th scope="col"{" class=num" if i in numeric else ""}>{_esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = str(value) if i in raw else _esc(value)
            cls = ' class="num"' if i in numeric else ""
            cells.append(f"<th scope=\"row\"{cls}>{text}</th>" if i == 0 else f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table><caption>{_esc(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def bar_chart(title: str, desc: str, bars: list[tuple[str, int]]) -> str:
    """A horizontal SVG bar chart with a text alternative; the same numbers are always also
    given as a table next to it, so nothing depends on seeing the bars."""
    if not bars:
        return ""
    width, label_w, bar_h, gap = 640, 220, 26, 10
    top = max(v for _, v in bars) or 1
    height = len(bars) * (bar_h + gap) + gap
    uid = secrets.token_hex(4)
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="t{uid} d{uid}" viewBox="0 0 {width} '
        f'{height}" width="100%" style="max-width:{width}px">',
        f'<title id="t{uid}">{_esc(title)}</title><desc id="d{uid}">{_esc(desc)}</desc>',
    ]
    for i, (label, value) in enumerate(bars):
        y = gap + i * (bar_h + gap)
        w = int((width - label_w - 60) * value / top)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar_h * 0.7:.0f}" text-anchor="end">'
            f"{_esc(label[:16])}</text>"
            f'<rect class="bar" x="{label_w}" y="{y}" width="{max(w, 2)}" height="{bar_h}"/>'
            f'<text x="{label_w + max(w, 2) + 6}" y="{y + bar_h * 0.7:.0f}">{value}</text>'
        )
    parts.append(f'<line class="axis" x1="{label_w}" y1="0" x2="{label_w}" y2="{height}"/>')
    parts.append("</svg>")
    return "".join(parts)


