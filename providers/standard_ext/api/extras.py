"""The ``http`` connection's extras ``verify``, ``cert`` and ``proxies``, read as ``HttpHook`` reads them."""

from __future__ import annotations

from typing import Any

#: The proxy keys requests (and so HttpHook) takes: a scheme, or a scheme and a host.
_PROXY_SCHEMES = ("http", "https", "all")


def verify_extra(extra: dict[str, Any], *, conn_id: str) -> bool | str:
    """The extra ``verify`` (or ``verify_ssl``): true, false or a CA bundle's path; else ``ValueError``."""
    # As HttpHook: "verify", else its alias "verify_ssl", else True.
    value = extra.get("verify")
    if value is None:
        value = extra.get("verify_ssl")
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, str) and value.strip():
        # A connection defined by URI holds every extra as a string: "false" means no check, not a file
        # named false (which HttpHook would hand requests as a CA bundle that does not exist).
        word = value.strip().lower()
        return word == "true" if word in ("true", "false") else value
    raise ValueError(
        f"connection {conn_id!r}: extra 'verify' must be true, false, or a CA bundle's path, not {value!r}"
    )


def cert_extra(extra: dict[str, Any], *, conn_id: str) -> str | tuple[str, str] | None:
    """The extra ``cert``: one file, ``(certificate, key)`` or ``None``; else ``ValueError``."""
    value = extra.get("cert")
    if value is None or (isinstance(value, str) and value):
        return value
    # JSON has no tuple: requests' (certificate, key) comes as a list.
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
        return value[0], value[1]
    raise ValueError(
        f"connection {conn_id!r}: extra 'cert' must be a file (certificate and key) or [certificate, key]"
    )


def proxies_extra(extra: dict[str, Any], *, conn_id: str) -> dict[str, str | None]:
    """The extra ``proxies`` (or ``proxy``) in requests' form, ``{}`` if unset; else ``ValueError``."""
    # As HttpHook: "proxies", else its alias "proxy"; a dict as requests takes it.
    value = extra.get("proxies")
    if value is None:
        value = extra.get("proxy")
    if value is None:
        return {}
    if isinstance(value, dict) and all(
        isinstance(key, str)
        and key.split("://")[0] in _PROXY_SCHEMES
        and (url is None or isinstance(url, str))
        for key, url in value.items()
    ):
        return dict(value)
    # Not the value: a proxy's URL may hold a password.
    raise ValueError(
        f"connection {conn_id!r}: extra 'proxies' must map http, https or all (or scheme://host) to a "
        "proxy's URL, as requests takes it"
    )
