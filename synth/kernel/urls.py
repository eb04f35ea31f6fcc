"""Addresses of model servers: the ``user:password@`` part is a secret. It is sent as an
``Authorization: Basic`` header and removed from every address that is stored, shown or logged."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

# The credentials part of any URL in a text (group 1 is the scheme separator that stays).
URL_CREDENTIALS = r"(://)[^/@\s\"'?#]+@"


def redact_url(url: str | None) -> str | None:
    """``url`` without any user:password part, fit for storing and showing."""
    if not url:
        return None
    return split_credentials(url)[0]


def split_credentials(url: str) -> tuple[str, str | None]:
    """(``url`` without its user:password part, the ``Authorization`` header value they make, or
    None when the address has none)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    header = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    return urlunsplit(parts._replace(netloc=netloc)), header


def redact_text(text: str) -> str:
    """``text`` with the user:password part of every URL in it removed (for messages and logs)."""
    return re.sub(URL_CREDENTIALS, r"\1", text)


def redact_values(value: Any) -> Any:
    """``value`` (a dict, list or string, nested) with every URL's user:password part removed."""
    if isinstance(value, str):
        return redact_text(value) if "@" in value and "://" in value else value
    if isinstance(value, dict):
        return {k: redact_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_values(v) for v in value)
    return value
