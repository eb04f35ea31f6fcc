"""The one number formatter and the one literal-markdown helper."""

import math

import pandas as pd
import pytest

from synth.kernel.text import format_number, is_missing, literal_markdown


@pytest.mark.parametrize("value, kwargs, expected", [
    (3.0, {}, "3"),
    (0.123456, {}, "0.1235"),
    (0.123456, {"digits": 3}, "0.123"),
    (1234.0, {"grouping": True}, "1,234"),
    (12345.678, {"digits": 3}, "12346"),  # never scientific notation for large values
    (0.00012345, {}, "0.0001234"),
    (0.5, {"signed": True}, "+0.5"),
    (-0.5, {"signed": True}, "-0.5"),
    (None, {"missing": "—"}, "—"),
    (math.nan, {}, ""),
    ("text", {}, "text"),
])
def test_format_number(value, kwargs, expected):
    assert format_number(value, **kwargs) == expected


def test_is_missing():
    assert is_missing(None) and is_missing(math.nan) and is_missing(pd.NA)
    assert not is_missing(0) and not is_missing("") and not is_missing(0.0)


@pytest.mark.parametrize("text, expected", [
    ("![x](http://127.0.0.1:9/p.png)", "\\!\\[x\\](http\u2060://127.0.0.1:9/p.png)"),
    (":red[x]", r"\:red\[x\]"),
    (":smile: and :material/home:", "\\:\u2060smile: and \\:\u2060material/home:"),  # a word joiner
    (":+1: :100: at 12:30:45", "\\:\u2060+1: \\:\u2060100: at 12\\:30:45"),  # no joiner in a time
    (":red-background[y] :small[z]", r"\:red-background\[y\] \:small\[z\]"),
    ("$x$ $$y$$", r"\$x\$ \$\$y\$\$"),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("<img src=x> &amp; &lt;", "&lt;img src=x&gt; &amp;amp; &amp;lt;"),
    ("[link](http://127.0.0.1:9/)", "\\[link\\](http\u2060://127.0.0.1:9/)"),
    ("<https://a.example> www.example.com me@example.com",
     "&lt;http\u2060s://a.example&gt; www\u2060.example.com me\u2060@example.com"),
    ("a | b\n--|--\n> quote\n---", "a \\| b\n--\\|--\n&gt; quote\n\\---"),  # no table, quote or rule
    ("*bold* _it_ `code` ~~s~~ a|b", r"\*bold\* \_it\_ \`code\` \~\~s\~\~ a\|b"),
    ("- item\n1. first\n# head", "\\- item\n1\\. first\n\\# head"),
    ("user:password 0.3 -5 openai/test-model", "user:password 0.3 -5 openai/test-model"),  # plain stays plain
])
def test_literal_markdown_escapes_what_markdown_would_read(text, expected):
    assert literal_markdown(text) == expected


def test_literal_markdown_keeps_line_breaks_when_asked():
    assert literal_markdown("a\nb", keep_breaks=True) == "a  \nb"
