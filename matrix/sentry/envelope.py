"""Strict parsing of Sentry envelopes (request bodies are decoded in body.py, errors live in errors.py).

The envelope format (https://develop.sentry.dev/sdk/envelopes/) is::

    <envelope header: JSON object>\\n
    <item header: JSON object with a string "type">\\n
    <payload>\\n
    ... more items ...

The rules are Relay's (getsentry/relay ``relay-server/src/envelope/mod.rs`` ``Envelope::parse_bytes``
and ``relay-server/src/envelope/item.rs`` ``Item::parse``):

* a header is one JSON object, directly followed by ``\\n`` or the end of the data (``require_termination``:
  not by a space, not by ``\\r``);
* whitespace (blank lines) before a header is skipped: Relay reads headers with serde_json's stream
  deserializer, which skips whitespace before a value. So blank lines between items are fine, but data that
  ends in whitespace where an item header should follow is an "unexpected end of file";
* with ``"length"`` the payload is exactly that many bytes, followed by ``\\n`` or the end; without it the
  payload runs up to the next ``\\n`` (or the end).

Differences that remain: a header must sit on one line (serde would accept a JSON object spread over
several lines; no SDK writes one), and event/transaction payloads must be JSON objects here (Relay accepts
the envelope and drops such an event later, during processing).

Everything here is pure (no I/O); errors are raised as :class:`EnvelopeError`
(or one of its subclasses) whose message is a single, specific line.
"""

import json
from dataclasses import dataclass
from typing import Any

from .body import (SUPPORTED_ENCODINGS, content_codings, decode_body, decode_codings, decode_store_body,
                   needs_inflating_store_body)
from .errors import BodyError, Buffer, EnvelopeError, TooLarge, UnsupportedEncoding, _short


__all__ = [
    "EnvelopeError",
    "BodyError",
    "UnsupportedEncoding",
    "TooLarge",
    "Item",
    "Envelope",
    "parse_envelope",
    "parse_first_header",
    "decode_body",
    "content_codings",
    "decode_codings",
    "decode_store_body",
    "SUPPORTED_ENCODINGS",
    "needs_inflating_store_body",
]

#: Item types whose payload must be a JSON object.
JSON_OBJECT_ITEM_TYPES = frozenset({"event", "transaction"})

_WHITESPACE = b" \t\r\n"  # what serde_json skips between values


@dataclass(frozen=True)
class Item:
    """One envelope item: its parsed header object and its raw payload bytes."""

    headers: dict
    payload: bytes

    @property
    def type(self) -> str:
        """The item type (``headers["type"]``), e.g. ``"event"``."""
        return self.headers["type"]

    def json(self) -> Any:
        """Parse the payload as JSON; raises :class:`EnvelopeError` if it is not."""
        try:
            return _loads(self.payload)
        except ValueError as exc:
            raise EnvelopeError(f"{self.type} item payload is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: the envelope header object and its items in order."""

    headers: dict
    items: tuple[Item, ...]


# ---------------------------------------------------------------------------
# parsing


def parse_envelope(data: Buffer) -> Envelope:
    """Parse ``data`` strictly into an :class:`Envelope`.

    Raises :class:`EnvelopeError` naming the offending item (1-based) and value.
    """
    if isinstance(data, memoryview):
        data = data.tobytes()
    if not data:
        raise EnvelopeError("empty envelope")
    end = len(data)
    pos = _skip_whitespace(data, 0)
    if pos == end:
        raise EnvelopeError("missing envelope header: the envelope is only whitespace")
    headers, pos = _read_header(data, pos, "envelope header")

    items: list[Item] = []
    while pos < end:
        index = len(items) + 1
        where = f"item {index}"
        start = _skip_whitespace(data, pos)
        if start == end:
            after = f"item {index - 1}" if items else "the envelope header"
            raise EnvelopeError(
                f"{where}: unexpected end of envelope: only whitespace after {after} "
                f"(a blank line may separate items, but not end the envelope)"
            )
        item_headers, pos = _read_header(data, start, f"{where} header")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str):
            if "type" not in item_headers:
                raise EnvelopeError(f"{where}: item header has no \"type\"")
            raise EnvelopeError(f"{where}: item \"type\" must be a string, got {_short(item_type)}")
        payload, pos = _read_payload(data, pos, item_headers, where)
        if item_type in JSON_OBJECT_ITEM_TYPES:
            _check_json_object(payload, where, item_type)
        items.append(Item(headers=item_headers, payload=payload))
    return Envelope(headers=headers, items=tuple(items))


def parse_first_header(data: Buffer) -> dict:
    """The envelope header as Relay reads it to authenticate by its ``dsn``: the first line, one JSON
    object (relay-server/src/endpoints/envelope.rs, ``EnvelopeParams::from_request``)."""
    if isinstance(data, memoryview):
        data = data.tobytes()
    nl = data.find(b"\n")
    line = data[: nl if nl >= 0 else len(data)]
    try:
        value = _loads(line)
    except ValueError as exc:
        raise EnvelopeError(f"the first line is not a JSON object ({exc}): {_short(bytes(line))}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"the first line must be a JSON object, got {type(value).__name__}")
    return value


def _skip_whitespace(data: Buffer, pos: int) -> int:
    end = len(data)
    while pos < end and data[pos] in _WHITESPACE:
        pos += 1
    return pos


def _read_line(data: Buffer, pos: int) -> tuple[bytes, int]:
    """Return the bytes from ``pos`` up to the next newline (or the end) and the next position."""
    nl = data.find(b"\n", pos)
    if nl < 0:
        return bytes(data[pos:]), len(data)
    return bytes(data[pos:nl]), nl + 1


def _read_payload(data: Buffer, pos: int, headers: dict, where: str) -> tuple[bytes, int]:
    """Cut one item payload starting at ``pos``; returns it and the position after it."""
    if "length" not in headers or headers["length"] is None:
        return _read_line(data, pos)
    length = headers["length"]
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise EnvelopeError(f"{where}: \"length\" must be a non-negative integer, got {_short(length)}")
    left = len(data) - pos
    if length > left:
        raise EnvelopeError(
            f"{where}: length {length} runs past the end of the envelope ({left} bytes left)"
        )
    payload = bytes(data[pos : pos + length])
    pos += length
    if pos < len(data):
        if data[pos] != 0x0A:
            raise EnvelopeError(
                f"{where}: payload of length {length} is followed by "
                f"{_short(bytes(data[pos:pos + 10]))} instead of a newline"
            )
        pos += 1
    return payload, pos


_DECODER = json.JSONDecoder(parse_constant=lambda name: _reject_constant(name))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_header(data: Buffer, pos: int, what: str) -> tuple[dict, int]:
    """Parse the header starting at ``pos`` (no leading whitespace); it must end the line."""
    line, after = _read_line(data, pos)
    try:
        text = line.decode("utf-8")
        value, stop = _DECODER.raw_decode(text)
    except ValueError as exc:
        raise EnvelopeError(f"{what} is not valid JSON ({exc}): {_short(line)}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} must be a JSON object, got {type(value).__name__} {_short(value)}")
    if stop != len(text):
        raise EnvelopeError(f"{what} is followed by {_short(text[stop:stop + 10])} instead of a newline")
    return value, after


def _check_json_object(payload: bytes, where: str, item_type: str) -> None:
    """Require ``payload`` to be a JSON object (used for events and transactions)."""
    try:
        value = _loads(payload)
    except ValueError as exc:
        raise EnvelopeError(f"{where}: {item_type} payload is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise EnvelopeError(
            f"{where}: {item_type} payload must be a JSON object, got {type(value).__name__}"
        )


def _loads(raw: Buffer) -> Any:
    """Decode UTF-8 strictly and parse JSON; raises ValueError on either failure."""
    return json.loads(bytes(raw).decode("utf-8"))
