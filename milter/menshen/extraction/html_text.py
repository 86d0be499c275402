"""Render HTML mail to the text a reader sees, plus the text a reader does not see.

In:  `html_to_text(html)`: an HTML document or fragment as str (already charset-decoded).
Out: (visible, hidden). `visible` is the rendered text: tags dropped, entities decoded,
     comments, <script> and <style> dropped, inline tags (b, i, span, font, a, ...) joined
     with no separator so `代<b>开</b>发票` stays 代开发票, block tags (p, div, br, li, tr,
     td, h1-h6, table, ...) turned into line breaks, runs of whitespace collapsed.
     `hidden` is text that is in the document but not shown: `alt` and `title` attribute
     values and the content of elements styled invisible (display:none, visibility:hidden,
     font-size:0, the `hidden` attribute). Such content is moved out of `visible`, so
     junk hidden between the letters of a word does not split the word a reader sees;
     both strings are handed to the scanners.
Fails: never. Broken markup is rendered as far as the stdlib parser gets; if it raises,
     what was rendered so far is returned.
Bounds: stdlib `html.parser.HTMLParser` is fed in chunks; an optional `should_stop`
     callback is polled between chunks so a caller's deadline can cut a huge document
     short. The work per chunk is linear in the chunk; the open-element stack used for
     hidden styling is capped.
Thread safety: each call builds its own parser; no shared mutable state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "br",
        "caption",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "html",
        "li",
        "main",
        "nav",
        "ol",
        "option",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "ul",
    }
)
_SKIP_TAGS = frozenset({"script", "style"})
# Elements that never have content; they must not open a hidden scope.
_VOID_TAGS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
_HIDDEN_ATTRS = ("alt", "title")
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0*)?(?:px|pt|em|%)?\s*(?:;|$|!)",
    re.IGNORECASE,
)
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_BLANK_LINES = re.compile(r" ?\n[ \n]*")

_COMMENT_END = re.compile(r"--!?>")
_TAIL_OPENER = re.compile(r"<[A-Za-z!/?]")
_STRAY_LT = re.compile(r"<(?![A-Za-z!/?])")

_CHUNK = 1 << 18  # characters fed to the parser between deadline polls
_MAX_HIDDEN_STACK = 256


class _Renderer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.visible: list[str] = []
        self.hidden: list[str] = []
        self._skip: str | None = None  # inside <script>/<style>: the tag that ends it
        self._hidden_stack: list[str] = []  # open elements styled invisible

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        """Collect alt/title text; True when the element hides its content."""
        hides = False
        for name, value in attrs:
            if name in _HIDDEN_ATTRS and value:
                self.hidden.append(value)
                self.hidden.append("\n")
            elif name == "hidden" or (name == "style" and value and _HIDDEN_STYLE.search(value)):
                hides = True
        return hides and tag not in _VOID_TAGS

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip is not None:
            return
        if tag in _SKIP_TAGS:
            self._skip = tag
            return
        if self._attrs(tag, attrs) and len(self._hidden_stack) < _MAX_HIDDEN_STACK:
            self._hidden_stack.append(tag)
        if tag in _BLOCK_TAGS:
            self._out().append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip is not None:
            return
        self._attrs(tag, attrs)
        if tag in _BLOCK_TAGS:
            self._out().append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._skip is not None:
            if tag == self._skip:
                self._skip = None
            return
        if tag in _BLOCK_TAGS:
            self._out().append("\n")
        if self._hidden_stack and self._hidden_stack[-1] == tag:
            self._hidden_stack.pop()
            self.hidden.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip is not None:
            return
        self._out().append(_SPACES.sub(" ", data))

    def _out(self) -> list[str]:
        return self.hidden if self._hidden_stack else self.visible


def _defuse(html: str) -> str:
    """Remove what makes the stdlib parser rescan to the end of input once per opener.

    HTMLParser searches for a closing delimiter from every `<!--`, `<![`, `<?`, `<tag`
    and `</`; when the delimiter never comes it advances a single character and searches
    again, which is quadratic. The fixes follow what browsers render:
    - comments are cut here (HTML5 rules: `<!-->`, `<!--->` are empty, `--!>` also
      closes; an unclosed comment runs to the end of the input);
    - `<![` (marked sections; CDATA in HTML) becomes a bogus comment ending at `>`, as
      in browsers; the stdlib raises on unknown section keywords, which would otherwise
      cut the rest of the document out of the rendering;
    - after the last `>` no construct can close, so the input ends at the first opener
      there (browsers swallow an unclosed tag up to the end of input);
    - a `<` that opens nothing is text; written as `&lt;` it renders the same but is
      handled with the surrounding text instead of one parser step per character.
    """
    if "<!--" in html:
        pieces: list[str] = []
        pos = 0
        while True:
            start = html.find("<!--", pos)
            if start < 0:
                pieces.append(html[pos:])
                break
            pieces.append(html[pos:start])
            if html.startswith(">", start + 4):
                pos = start + 5
            elif html.startswith("->", start + 4):
                pos = start + 6
            else:
                end = _COMMENT_END.search(html, start + 4)
                if end is None:
                    break
                pos = end.end()
            # A comment separates nothing in rendering: 代<!-- x -->开 reads 代开.
        html = "".join(pieces)
    if "<![" in html:
        html = html.replace("<![", "<!_[")
    last = html.rfind(">")
    tail = _TAIL_OPENER.search(html, last + 1)
    if tail is not None:
        html = html[: tail.start()]
    if "<" in html:
        html = _STRAY_LT.sub("&lt;", html)
    return html


def _finish(parts: list[str]) -> str:
    # Data runs were collapsed already; what is left are block markers ("\n") and spaces
    # next to them, folded here into single line breaks.
    text = _BLANK_LINES.sub("\n", "".join(parts))
    return text.strip(" \n")


def html_to_text(html: str, *, should_stop: Callable[[], bool] | None = None) -> tuple[str, str]:
    """Return (visible text, hidden text) of an HTML document; see the module docstring."""
    renderer = _Renderer()
    try:
        html = _defuse(html)
        for start in range(0, len(html), _CHUNK):
            renderer.feed(html[start : start + _CHUNK])
            if should_stop is not None and should_stop():
                break
        renderer.close()
    except Exception:
        # Whatever the stdlib parser chokes on, the text rendered so far is still useful.
        pass
    return _finish(renderer.visible), _finish(renderer.hidden)
