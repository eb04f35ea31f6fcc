"""How values become text for people: one number formatter and one literal-markdown helper, used
by the CLI, the pages, the dataset card and the report alike."""

from __future__ import annotations

import html
import re
import sys
from typing import Any

# Characters that start markup anywhere in a line (CommonMark, Streamlit's :colour[] and emoji
# shortcodes, KaTeX), and what starts a heading, list or quote at the start of a line.
_MARKUP = re.compile(r"([\\`*_\[\]!|~$]|:(?=[\w/+-]+[:\[]))")  # ":" where a shortcode or :color[] starts
_LINE_START = re.compile(r"^(\s*)([-+#](?=\s|$)|[-=]+\s*$)", re.M)
_ORDERED = re.compile(r"^(\s*\d+)([.)])(?=\s|$)", re.M)
# Streamlit finds emoji and icon shortcodes (:smile:, :material/home:) and GFM finds bare links
# (http://, www., a@b.c) in the text after escapes are resolved, so a backslash cannot stop them:
# an invisible word joiner inside each breaks the pattern and shows nothing.
WORD_JOINER = "\u2060"
_UNESCAPABLE = re.compile(r"(?<=:)(?=(?:[a-z+-][\w+-]*|100|1234)(?:/[\w+-]+)?:)"  # :smile: :+1: :100:
                          r"|(?<=\bhttp)(?=s?://)|(?<=\bwww)(?=\.)|(?<=[\w.+-])(?=@[\w-]+\.)", re.I)


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA: a value that was not measured."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    # pd.NA can only reach here where pandas is loaded already: no import for a check
    return value is getattr(sys.modules.get("pandas"), "NA", None)


def format_number(value: Any, digits: int = 4, missing: str = "", grouping: bool = False,
                  signed: bool = False) -> str:
    """A number as people read it: whole numbers as they are (with thousands separators when
    ``grouping``), others to ``digits`` significant digits, with a + for positive values when
    ``signed`` (a change); ``missing`` for None or NaN."""
    if is_missing(value):
        return missing
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        return str(value)
    number = float(value)
    sign = "+" if signed and number > 0 else ""
    if number.is_integer() or abs(number) >= 10 ** digits:  # no scientific notation for large values
        return sign + (f"{number:,.0f}" if grouping else f"{number:.0f}")
    return sign + f"{number:.{digits}g}"


def literal_markdown(text: Any, keep_breaks: bool = False) -> str:
    """``text`` shown literally by a markdown element or in a table cell: ``&``, ``<`` and ``>``
    as HTML entities, every other character markdown gives a meaning to backslash-escaped, and a
    word joiner (invisible) inside shortcodes and bare links, which escapes do not stop. With
    ``keep_breaks`` each line break stays a line break."""
    escaped = _MARKUP.sub(r"\\\1", html.escape(str(text), quote=False))
    escaped = _UNESCAPABLE.sub(WORD_JOINER, escaped)
    escaped = _ORDERED.sub(r"\1\\\2", _LINE_START.sub(r"\1\\\2", escaped))
    return escaped.replace("\n", "  \n") if keep_breaks else escaped
