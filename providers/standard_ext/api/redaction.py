"""Keeping secrets out of error texts: a URL's ``user:password@``, and a password or token a server echoes."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Iterable

    import httpx

#: The ``user:password@`` of any URL in a text (greedy up to the host: a password may hold an ``@``).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


def without_userinfo(text: str) -> str:
    """``text`` without any URL's ``user:password@``."""
    return _USERINFO.sub(r"\g<scheme>", text)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` without any URL's ``user:password@``, and ``secrets`` starred, as sent or echoed."""
    text = without_userinfo(text)
    # The longest first: a secret's escaped form holds pieces of the plain one.
    for form in sorted(
        {form for secret in secrets if secret for form in _forms(secret)}, key=len, reverse=True
    ):
        text = text.replace(form, "***")
    return text


def server_reason(response: httpx.Response, secrets: Iterable[str]) -> str:
    """The server's reason for an error ("Invalid credentials", "Forbidden"), short, and without secrets."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        reason = detail
    elif isinstance(detail, list) and all(isinstance(item, dict) for item in detail):
        # FastAPI's answer to a body it cannot validate: each item's "input" echoes the request body (the
        # password, when signing in); where and what is enough.
        reason = "; ".join(f"{'.'.join(map(str, item.get('loc', ())))}: {item.get('msg')}" for item in detail)
    else:
        # Another answer (a proxy's page) may echo the request too: hence the redaction. Before cutting it
        # short: a secret cut in two would no longer be found.
        reason = response.text
    return redact(reason, secrets)[:200]


def split_userinfo(url: str) -> tuple[str, list[str]]:
    """``url`` without its ``user:password@``, and the password it held (as written and decoded)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, []
    passwords = (
        [] if parts.password is None else list(dict.fromkeys([parts.password, unquote(parts.password)]))
    )
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), passwords


def _forms(secret: str) -> set[str]:
    """A secret as sent, and as a server may echo it: in JSON (escaped once or twice), or in a URL."""
    forms = {secret, quote(secret, safe="")}
    for ascii_only in (True, False):
        once = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        forms |= {once, json.dumps(once, ensure_ascii=ascii_only)[1:-1]}
    return forms
