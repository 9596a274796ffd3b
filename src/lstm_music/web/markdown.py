"""Model cards as safe HTML: CommonMark plus tables, by markdown-it-py, with raw HTML off.

markdown-it-py (the Python port of markdown-it, used by MyST and Jupyter Book) parses the cards
to the CommonMark spec, which a hand-written renderer only approximates (nested lists, emphasis,
escapes, code spans). Safety comes from its settings, not from our code: `html` is off, so any
tag in a card is shown as text; its link validator refuses javascript:, vbscript:, file: and
data: addresses; images are switched off, so a card cannot make the page fetch anything. Our
additions are small: headings move down two levels (the card sits under the page's h2), links
get rel="noopener noreferrer", and the HTML comes without the newlines between tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token

HEADING_SHIFT = 2  # a card's "#" becomes <h3>, "##" <h4>: the page's own headings are h1 and h2


def _shift_headings(state: Any) -> None:
    """Core rule: h1..h6 -> h3..h6 (capped), so a card never outranks the page around it."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            level = min(6, int(token.tag[1]) + HEADING_SHIFT)
            token.tag = f"h{level}"


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], index: int, options: Any, env: Any
) -> str:
    """An anchor that gives the opened page no handle on ours (a render rule, called bound)."""
    tokens[index].attrSet("rel", "noopener noreferrer")
    return renderer.renderToken(tokens, index, options, env)


def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
    parser.core.ruler.push("shift_headings", _shift_headings)
    parser.add_render_rule("link_open", _link_open)
    return parser


def markdown_to_html(text: str) -> str:
    """The card as HTML fragments, every piece of its text escaped."""
    rendered = _parser().render(text)
    # only tags hold a literal "<" or ">" (text and code are escaped), so this drops exactly the
    # newlines markdown-it puts between block tags, and the one it ends every code block with
    return rendered.replace(">\n<", "><").replace("\n</code></pre>", "</code></pre>").strip()
