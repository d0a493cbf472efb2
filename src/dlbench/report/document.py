"""A report as a list of blocks, written out as Markdown and as self-contained HTML.

One list renders to both, so ``index.md`` and ``index.html`` cannot drift apart. Text
uses two bits of inline markup, `code` and **bold**; the HTML has inline CSS, no
scripts and relative image paths, so it opens from disk (or a zip) as it is.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from dlbench.report.tables import Table

CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
caption { caption-side: bottom; text-align: left; color: #555; padding-top: 0.3rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: left; }
thead th { border-bottom: 2px solid #333; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; }
figcaption { color: #555; font-size: 0.9rem; }
code { background: #f4f4f4; padding: 0 0.2rem; }
.links { font-size: 0.85rem; color: #555; }
"""


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class TableBlock:
    table: Table
    folder: str  # where the table's files are, relative to the index


@dataclass(frozen=True)
class Figure:
    path: str  # the PNG, relative to the index; SVG and PDF sit beside it
    caption: str
    title: str


Block = Heading | Paragraph | TableBlock | Figure


def _inline(text: str) -> str:
    """Escaped HTML with `code`, **bold** and [links](href) turned into tags.

    A link to a report's ``index.md`` becomes one to its ``index.html``: every report has both,
    and the HTML page should stay within HTML.
    """
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(
        r"\[([^\]]+)\]\(([^)\s]+?)(index\.md)?\)",
        lambda m: f'<a href="{m[2]}{"index.html" if m[3] else ""}">{m[1]}</a>',
        text,
    )


def _links(stem: str, formats: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(fmt.upper() if fmt != "tex" else "LaTeX", f"{stem}.{fmt}") for fmt in formats]


def markdown(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        match block:
            case Heading(text, level):
                parts.append(f"{'#' * level} {text}")
            case Paragraph(text):
                parts.append(text)
            case TableBlock(table, folder):
                links = _links(f"{folder}/{table.name}", ("csv", "tex", "html"))
                parts.append(
                    table.markdown()
                    + f"\n{table.caption} "
                    + " · ".join(f"[{name}]({path})" for name, path in links)
                )
            case Figure(path, caption, title):
                stem = path.removesuffix(".png")
                links = " · ".join(f"[{n}]({p})" for n, p in _links(stem, ("svg", "pdf")))
                parts.append(f"![{title}]({path})\n\n{caption} {links}")
    return "\n\n".join(parts) + "\n"


def to_html(blocks: list[Block], title: str) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head>",
        "<body>",
    ]
    for block in blocks:
        match block:
            case Heading(text, level):
                parts.append(f"<h{level}>{_inline(text)}</h{level}>")
            case Paragraph(text):
                parts.append(f"<p>{_inline(text)}</p>")
            case TableBlock(table, folder):
                links = _links(f"{folder}/{table.name}", ("csv", "tex", "md"))
                parts.append(table.html().rstrip())
                parts.append(
                    '<p class="links">'
                    + " · ".join(f'<a href="{p}">{n}</a>' for n, p in links)
                    + "</p>"
                )
            case Figure(path, caption, title):
                stem = path.removesuffix(".png")
                links = " · ".join(
                    f'<a href="{p}">{n}</a>' for n, p in _links(stem, ("svg", "pdf"))
                )
                parts.append(
                    f'<figure><img src="{html.escape(path)}" alt="{html.escape(title)}">'
                    f"<figcaption>{_inline(caption)} {links}</figcaption></figure>"
                )
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
