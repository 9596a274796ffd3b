"""A tiny, safe Markdown-to-HTML for model cards: headings, paragraphs, lists, tables, code.

Every piece of text is HTML-escaped before any tag is added, and links become anchors only for
http(s) addresses, so a card cannot inject markup or script into the page. Anything fancier is
shown as plain text, which is fine for a card.
"""

from __future__ import annotations

import html
import re

_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str) -> str:
    """Escape `text`, then mark up `code`, **bold** and [links](https://...)."""
    out, position = [], 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[position : match.start()]))
        code, bold, label, url = match.groups()
        if code is not None:
            out.append(f"<code>{html.escape(code)}</code>")
        elif bold is not None:
            out.append(f"<strong>{html.escape(bold)}</strong>")
        elif url.startswith(("https://", "http://")):
            href = html.escape(url, quote=True)
            out.append(f'<a href="{href}" rel="noopener noreferrer">{html.escape(label)}</a>')
        else:
            out.append(html.escape(f"{label} ({url})"))
        position = match.end()
    out.append(html.escape(text[position:]))
    return "".join(out)


def _table(rows: list[str]) -> str:
    cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]
    body = [row for row in cells[1:] if not all(re.fullmatch(r":?-+:?", c) for c in row if c)]
    head = "".join(f"<th>{_inline(cell)}</th>" for cell in cells[0])
    lines = ["".join(f"<td>{_inline(cell)}</td>" for cell in row) for row in body]
    rows_html = "".join(f"<tr>{line}</tr>" for line in lines)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>"


def _block(lines: list[str]) -> str:
    """One block of consecutive non-blank lines."""
    first = lines[0].lstrip()
    heading = re.match(r"(#{1,6})\s+(.*)", first)
    if heading and len(lines) == 1:
        level = min(6, len(heading.group(1)) + 2)  # the card sits under the page's h2
        return f"<h{level}>{_inline(heading.group(2))}</h{level}>"
    if all(line.lstrip().startswith("|") for line in lines):
        return _table(lines)
    if re.match(r"([-*]|\d+\.)\s", first):
        tag = "ol" if first[0].isdigit() else "ul"
        items, current = [], []
        for line in lines:
            if re.match(r"\s*([-*]|\d+\.)\s", line):
                if current:
                    items.append(" ".join(current))
                current = [re.sub(r"^\s*([-*]|\d+\.)\s+", "", line)]
            else:
                current.append(line.strip())
        items.append(" ".join(current))
        return f"<{tag}>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + f"</{tag}>"
    if heading:  # a heading followed directly by text
        return _block(lines[:1]) + _block(lines[1:])
    return f"<p>{_inline(' '.join(line.strip() for line in lines))}</p>"


def markdown_to_html(text: str) -> str:
    """The card as HTML fragments; fenced code blocks are kept verbatim in <pre>."""
    parts: list[str] = []
    block: list[str] = []
    fence: list[str] | None = None
    for line in text.splitlines():
        if fence is not None:
            if line.strip().startswith("```"):
                parts.append(f"<pre><code>{html.escape(chr(10).join(fence))}</code></pre>")
                fence = None
            else:
                fence.append(line)
        elif line.strip().startswith("```"):
            if block:
                parts.append(_block(block))
            block, fence = [], []
        elif line.strip():
            block.append(line)
        elif block:
            parts.append(_block(block))
            block = []
    if fence is not None:
        parts.append(f"<pre><code>{html.escape(chr(10).join(fence))}</code></pre>")
    if block:
        parts.append(_block(block))
    return "\n".join(parts)
