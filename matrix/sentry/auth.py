"""Who may send: the project's public key, from wherever Relay reads it.

Relay (getsentry/relay ``relay-server/src/extractors/request_meta.rs`` ``auth_from_parts``) takes the key
from exactly one of:

* an ``X-Sentry-Auth`` header that starts with ``Sentry `` (case-insensitive; other values are ignored),
* an ``Authorization`` header that starts with ``Sentry `` (same format),
* ``Authorization: Basic base64(<key>:)``,
* the query string, when it mentions ``sentry_`` (``?sentry_key=...&sentry_version=7``),

and answers 401 "multiple authorization payloads detected" when more than one is present. Without any of
them the envelope endpoint reads the ``dsn`` of the envelope header instead
(``relay-server/src/endpoints/envelope.rs``), as SDK tunnels send it; that part lives in ``server.py``.
The pairs are parsed like ``relay-common``'s ``Auth``: split on ``,`` then ``=``, trimmed, no unquoting;
``sentry_version`` must be a number (its part before a dot), and newer than 7 is "unsupported" (400).
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from email.message import Message
from typing import Callable, Iterable
from urllib.parse import parse_qsl, urlsplit

#: The newest protocol version Relay handles (relay_event_schema::protocol::PROTOCOL_VERSION).
PROTOCOL_VERSION = 7


class AuthError(Exception):
    """A rejection: ``status`` (401 or 400) and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    key: str
    source: str  # where it came from, for error messages: "X-Sentry-Auth", "query string", ...
    version: int = PROTOCOL_VERSION


def request_credentials(headers: Message, raw_path: str) -> Credentials | None:
    """The credentials a request carries in its headers or query string; None when it carries none.

    Raises :class:`AuthError` for two sources at once, a malformed auth value or an unsupported version.
    """
    found: Credentials | None = None

    def take(source: str, parse: Callable[[], Credentials]) -> None:
        nonlocal found
        if found is not None:  # checked before the second one is parsed, as Relay does
            raise AuthError(401, f"multiple authorization payloads detected ({found.source} and {source}); "
                                 "send the key in one place")
        found = parse()

    for name in ("X-Sentry-Auth", "Authorization"):
        value = _sentry_scheme(headers.get(name))
        if value is not None:
            source = f"{name} header"
            take(source, lambda: _from_pairs(_header_pairs(value), source))
    basic_key = _basic_key(headers.get("Authorization"))
    if basic_key is not None:
        take("Authorization: Basic header", lambda: Credentials(basic_key, "Authorization: Basic header"))
    query = urlsplit(raw_path).query
    if "sentry_" in query:
        take("query string", lambda: _from_pairs(parse_qsl(query, keep_blank_values=True), "query string"))
    if found is not None and found.version > PROTOCOL_VERSION:
        raise AuthError(400, f"unsupported protocol version ({found.version}); the newest is {PROTOCOL_VERSION}")
    return found


def _sentry_scheme(value: str | None) -> str | None:
    """The header value if it uses the ``Sentry`` scheme (``Sentry sentry_key=...``), else None."""
    if value is not None and len(value) >= 7 and value[:7].lower() == "sentry ":
        return value
    return None


def _header_pairs(value: str) -> Iterable[tuple[str, str]]:
    """``Sentry a=1, b = 2`` -> (a, 1), (b, 2), the way relay-common's ``Auth::from_str`` splits it."""
    _, _, items = value.partition(" ")
    for item in items.split(","):
        parts = item.split("=")
        if len(parts) >= 2:
            yield parts[0].strip(), parts[1].strip()


def _from_pairs(pairs: Iterable[tuple[str, str]], source: str) -> Credentials:
    key, version = "", PROTOCOL_VERSION
    for name, value in pairs:
        if name == "sentry_key":
            key = value
        elif name == "sentry_version":
            head = value.split(".", 1)[0]
            if not (head.isascii() and head.isdigit()) or int(head) > 65535:
                raise AuthError(401, f"bad {source}: invalid value for sentry_version {value[:20]!r}")
            version = int(head)
    if not key:
        raise AuthError(401, f"bad {source}: missing public key (sentry_key)")
    return Credentials(key, source, version)


def _basic_key(value: str | None) -> str | None:
    """The user name of ``Authorization: Basic base64(key:secret)``; None if absent or undecodable
    (Relay then ignores the header)."""
    if value is None or len(value) < 6 or value[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, _ = decoded.partition(":")
    return user if sep and user else None


@dataclass(frozen=True)
class Dsn:
    public_key: str
    project_id: int


def parse_dsn(text: object) -> Dsn:
    """``http(s)://<key>[:<secret>]@<host>[:<port>]/[<path>/]<project id>`` -> key and project id.
    Raises ValueError with a one-line reason."""
    if not isinstance(text, str):
        raise ValueError(f"dsn must be a string, got {type(text).__name__}")
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as exc:
        raise ValueError(f"dsn {text[:80]!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(f"dsn {text[:80]!r} is not an http(s) URL with a host")
    if not parts.username:
        raise ValueError(f"dsn {text[:80]!r} has no public key")
    project = parts.path.rsplit("/", 1)[-1]
    if not (project.isascii() and project.isdigit()) or len(project) > 18:
        raise ValueError(f"dsn {text[:80]!r} ends in no project id")
    return Dsn(parts.username, int(project))
