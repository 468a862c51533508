"""Who may send: the project's public key, as SDKs present it (header or query string)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


def _auth_key(header: str | None, raw_path: str) -> str | None:
    """The sentry_key from ``X-Sentry-Auth`` (preferred) or the ``sentry_key`` query parameter."""
    if header:
        key = _parse_auth_header(header).get("sentry_key")
        if key is not None:
            return key
    values = parse_qs(urlsplit(raw_path).query).get("sentry_key")
    return values[0] if values else None


def _parse_auth_header(header: str) -> dict[str, str]:
    """Parse ``Sentry sentry_key=abc, sentry_version=7, ...`` into a dict."""
    text = header.strip()
    if text[:6].lower() == "sentry" and (len(text) == 6 or text[6] in " \t"):
        text = text[6:]
    out: dict[str, str] = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        if eq:
            out[name.strip().lower()] = value.strip().strip('"')
    return out
