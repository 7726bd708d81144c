"""HTML building blocks of the study report: one self-contained page that opens offline.

Hand-written rather than a template engine: the page is a dozen fixed sections, every value goes
through `html.escape`, and images travel as base64 data URIs. plotly.js is inlined once in the
head (from the plotly package, no CDN) and each Optuna figure is a bare div that uses it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

CSS = """
body { font-family: system-ui, sans-serif; margin: 0 2rem 4rem; color: #222; max-width: 1400px; }
nav { position: sticky; top: 0; background: #fff; padding: .6rem 0; border-bottom: 1px solid #ddd; }
nav a { margin-right: 1rem; }
h1 { margin-top: 1.2rem; } h2 { border-bottom: 2px solid #eee; padding-top: 1rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: right; vertical-align: top; }
th { background: #f5f5f5; } td:first-child, th:first-child { text-align: left; }
table.kv td:first-child { font-weight: 600; } table.kv td { text-align: left; }
.scroll { overflow-x: auto; }
pre { background: #f7f7f7; padding: .6rem; overflow-x: auto; font-size: .8rem; }
code.cmd { background: #f0f0f0; padding: .2rem .4rem; display: inline-block; }
img { max-width: 100%; }
.note { color: #666; font-style: italic; }
.fit { display: inline-block; padding: 0 .4rem; border-radius: .3rem; color: #fff; }
"""


@dataclass(frozen=True)
class Section:
    """One titled part of the page; `anchor` is its id (the nav links to it)."""

    anchor: str
    title: str
    body: str


def page(title: str, sections: Sequence[Section], plotly_js: str | None) -> str:
    """The whole document: head (CSS, plotly.js once when given), nav, then the sections."""
    nav = "".join(f'<a href="#{s.anchor}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(
        f'<section id="{s.anchor}">\n<h2>{esc(s.title)}</h2>\n{s.body}\n</section>'
        for s in sections
    )
    script = ""
    if plotly_js:
        # the config line is what plotly's own to_html writes before its inlined bundle
        script = ("<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
                  f'<script charset="utf-8">{plotly_js}</script>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n{script}\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def image(path: Path, alt: str) -> str:
    """A PNG embedded as a data URI, so the page needs no file beside it."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def key_values(rows: Iterable[tuple[str, str]], raw: frozenset[str] = frozenset()) -> str:
    """A two-column table; values are escaped unless their key is in `raw` (pre-built HTML)."""
    cells = "".join(
        f"<tr><td>{esc(k)}</td><td>{v if k in raw else esc(v)}</td></tr>" for k, v in rows
    )
    return f'<table class="kv">{cells}</table>'


def frame_table(frame: pd.DataFrame, index: bool = False) -> str:
    """A DataFrame as an escaped HTML table, numbers to 4 significant digits, in a scroll box.

    A named index becomes the first column (one header row instead of pandas' two), and
    missing values are empty cells, also in nullable integer columns (pandas writes <NA>).
    """
    import pandas as pd

    if index:
        frame = frame.reset_index()
    frame = frame.copy()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.api.extensions.ExtensionDtype):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), "")
    table = frame.to_html(index=False, na_rep="", escape=True, border=0,
                          float_format=lambda v: f"{v:.4g}")
    return f'<div class="scroll">{table}</div>'


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"
