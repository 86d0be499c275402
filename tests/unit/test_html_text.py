"""HTML rendering to visible and hidden text."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from menshen.extraction.html_text import html_to_text

PHRASE = "代开发票"


@pytest.mark.parametrize(
    ("html", "visible"),
    [
        pytest.param("代<b>开</b>发票", PHRASE, id="inline-bold"),
        pytest.param(
            "<span>代</span><span>开</span><font color=red>发</font><a href=x>票</a>",
            PHRASE,
            id="span-per-char",
        ),
        pytest.param("代<!-- x -->开发票", PHRASE, id="comment"),
        pytest.param("代<!---->开<!-->发<!--->票", PHRASE, id="html5-empty-comments"),
        pytest.param("代<!-- x --!>开发票", PHRASE, id="comment-bang-close"),
        pytest.param("&#20195;&#x5f00;发票", PHRASE, id="numeric-entities"),
        pytest.param("a&amp;b&lt;c&gt;d&quot;&nbsp;e", 'a&b<c>d" e', id="named-entities"),
        pytest.param("代<![CDATA[x]]>开发票", PHRASE, id="cdata-is-bogus-comment"),
        pytest.param("代<![bogus[ x ]]>开发票", PHRASE, id="unknown-marked-section"),
        pytest.param("代<?php echo 1 ?>开发票", PHRASE, id="processing-instruction"),
        pytest.param("<p>one</p><p>two</p>", "one\ntwo", id="paragraphs"),
        pytest.param("one<br>two<br/>three", "one\ntwo\nthree", id="br"),
        pytest.param("<ul><li>a</li><li>b</li></ul>", "a\nb", id="list"),
        pytest.param("<table><tr><td>a</td><td>b</td></tr></table>", "a\nb", id="table"),
        pytest.param("<h1>T</h1>body", "T\nbody", id="heading"),
        pytest.param("x<script>代开发票</script>y", "xy", id="script-dropped"),
        pytest.param("x<style>.a{content:'z'}</style>y", "xy", id="style-dropped"),
        pytest.param("<head><title>标题</title></head><body>正文</body>", "标题\n正文", id="title"),
        pytest.param("a  \n\t b", "a b", id="whitespace-collapsed"),
        pytest.param("a < b and c<5", "a < b and c<5", id="stray-less-than"),
        pytest.param("<p>text<div x='unclosed", "text", id="unclosed-tag-at-end"),
        pytest.param("text<!-- unclosed comment", "text", id="unclosed-comment"),
        pytest.param("</p></div>text", "text", id="stray-end-tags"),
        pytest.param("<<<>>>", "<<<>>>", id="brackets"),
        pytest.param("", "", id="empty"),
    ],
)
def test_visible_text(html: str, visible: str) -> None:
    assert html_to_text(html)[0] == visible


@pytest.mark.parametrize(
    ("html", "visible", "hidden"),
    [
        pytest.param('<img alt="代开发票" src="x.png">', "", PHRASE, id="img-alt"),
        pytest.param('<a title="代开发票" href="#">link</a>', "link", PHRASE, id="title-attr"),
        pytest.param(
            '代<span style="display:none">xx</span>开发票', PHRASE, "xx", id="display-none-junk"
        ),
        pytest.param(
            '<div style="font-size: 0px">代开发票</div>ok', "ok", PHRASE, id="font-size-zero"
        ),
        pytest.param(
            '<p style="VISIBILITY:hidden">代开发票</p>ok', "ok", PHRASE, id="visibility-hidden"
        ),
        pytest.param("<div hidden>代开发票</div>ok", "ok", PHRASE, id="hidden-attribute"),
        pytest.param('<p style="font-size:0.5em">small</p>', "small", "", id="small-not-hidden"),
        pytest.param('<img style="display:none" alt="a">after', "after", "a", id="void-hidden"),
    ],
)
def test_hidden_text(html: str, visible: str, hidden: str) -> None:
    assert html_to_text(html) == (visible, hidden)


@pytest.mark.parametrize(
    "html",
    [
        pytest.param("<" * 200_000, id="less-than-run"),
        pytest.param("<!--" * 100_000, id="comment-openers"),
        pytest.param("<![" * 100_000, id="marked-section-openers"),
        pytest.param("<?" * 100_000, id="pi-openers"),
        pytest.param("</" * 100_000, id="end-tag-openers"),
        pytest.param("<a " * 100_000, id="unclosed-tags"),
        pytest.param("<!x" * 100_000, id="declaration-openers"),
        pytest.param("<script>" + "x" * 400_000, id="unclosed-script"),
    ],
)
def test_pathological_markup_is_linear(html: str) -> None:
    start = time.perf_counter()
    html_to_text(html)
    assert time.perf_counter() - start < 2.0


def test_should_stop_cuts_rendering_short() -> None:
    html = "<b>x</b>" * 200_000  # several parser chunks
    visible, _ = html_to_text(html, should_stop=lambda: True)
    assert 0 < len(visible) < 200_000


@given(st.text(max_size=500))
def test_never_raises_on_text(html: str) -> None:
    visible, hidden = html_to_text(html)
    assert isinstance(visible, str)
    assert isinstance(hidden, str)


_TOKENS = st.sampled_from(
    [
        "<",
        ">",
        "</",
        "/>",
        "<!--",
        "-->",
        "<![",
        "]]>",
        "<?",
        "<!",
        "<b>",
        "</b>",
        "<p>",
        "<script>",
        "</script>",
        "<style>",
        '<span style="display:none">',
        "</span>",
        '<img alt="a"',
        "&#",
        "&#x",
        "&amp;",
        "&",
        ";",
        '"',
        "'",
        "=",
        "代",
        "开",
        " ",
        "\n",
        "x",
    ]
)


@given(st.lists(_TOKENS, max_size=80).map("".join))
def test_never_raises_on_markup_soup(html: str) -> None:
    html_to_text(html)
