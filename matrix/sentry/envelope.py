"""Strict parsing of Sentry envelopes and bounded decoding of request bodies.

The envelope format (https://develop.sentry.dev/sdk/envelopes/) is::

    <envelope header: JSON object>\\n
    <item header: JSON object with a string "type">\\n
    <payload>\\n
    ... more items ...

An item header may carry ``"length"``: then the payload is exactly that many
bytes and must be followed by ``\\n`` or the end of the data.  Without
``"length"`` the payload runs up to the next ``\\n`` (or the end).

Everything here is pure (no I/O); errors are raised as :class:`EnvelopeError`
(or one of its subclasses) whose message is a single, specific line.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any, Callable

try:  # brotli is a declared dependency, but keep the import failure readable.
    import brotli as _brotli
except ImportError:  # pragma: no cover - exercised only without the package
    _brotli = None

__all__ = [
    "EnvelopeError",
    "BodyError",
    "UnsupportedEncoding",
    "TooLarge",
    "Item",
    "Envelope",
    "parse_envelope",
    "decode_body",
    "SUPPORTED_ENCODINGS",
]

#: Item types whose payload must be a JSON object.
JSON_OBJECT_ITEM_TYPES = frozenset({"event", "transaction"})

#: Content-Encoding values accepted by :func:`decode_body` (besides none).
SUPPORTED_ENCODINGS = ("identity", "gzip", "deflate", "br")

_REPR_LIMIT = 60


class EnvelopeError(ValueError):
    """A malformed envelope or body; ``reason`` holds the one-line explanation."""

    def __init__(self, reason: str) -> None:
        reason = _one_line(reason)
        super().__init__(reason)
        self.reason = reason


class BodyError(EnvelopeError):
    """A request body could not be decoded (corrupt or truncated compression)."""


class UnsupportedEncoding(BodyError):
    """The Content-Encoding names an encoding this module does not decode."""


class TooLarge(BodyError):
    """The (decompressed) body is larger than the permitted maximum."""


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


def parse_envelope(data: bytes) -> Envelope:
    """Parse ``data`` strictly into an :class:`Envelope`.

    Raises :class:`EnvelopeError` naming the offending item (1-based) and value.
    """
    data = bytes(data)
    if not data:
        raise EnvelopeError("empty envelope")
    line, pos = _read_line(data, 0)
    headers = _parse_header(line, "envelope header")

    items: list[Item] = []
    end = len(data)
    while pos < end:
        if pos == end - 1 and data[pos] == 0x0A:
            break  # a single trailing newline at the very end is fine
        index = len(items) + 1
        line, pos = _read_line(data, pos)
        where = f"item {index}"
        if not line.strip():
            raise EnvelopeError(f"{where}: empty item header line at byte {pos - 1}")
        item_headers = _parse_header(line, f"{where} header")
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


def _read_line(data: bytes, pos: int) -> tuple[bytes, int]:
    """Return the bytes from ``pos`` up to the next newline (or the end) and the next position."""
    nl = data.find(b"\n", pos)
    if nl < 0:
        return data[pos:], len(data)
    return data[pos:nl], nl + 1


def _read_payload(data: bytes, pos: int, headers: dict, where: str) -> tuple[bytes, int]:
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
    payload = data[pos : pos + length]
    pos += length
    if pos < len(data):
        if data[pos] != 0x0A:
            raise EnvelopeError(
                f"{where}: payload of length {length} is followed by "
                f"{_short(data[pos:pos + 10])} instead of a newline"
            )
        pos += 1
    return payload, pos


def _parse_header(line: bytes, what: str) -> dict:
    """Parse one header line as a JSON object."""
    try:
        value = _loads(line)
    except ValueError as exc:
        raise EnvelopeError(f"{what} is not valid JSON ({exc}): {_short(line)}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} must be a JSON object, got {type(value).__name__} {_short(value)}")
    return value


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


def _loads(raw: bytes) -> Any:
    """Decode UTF-8 strictly and parse JSON; raises ValueError on either failure."""
    return json.loads(raw.decode("utf-8"))


# ---------------------------------------------------------------------------
# body decoding

_CHUNK = 64 * 1024


def decode_body(body: bytes, content_encoding: str | None, max_size: int) -> bytes:
    """Undo ``Content-Encoding`` on ``body`` without producing more than ``max_size`` bytes.

    Supports none/``identity``, ``gzip`` (also ``x-gzip``), ``deflate`` (zlib-wrapped
    or raw) and ``br``; a comma-separated list is undone right to left.  Raises
    :class:`UnsupportedEncoding`, :class:`TooLarge` (never materialising much more
    than ``max_size + 1`` bytes) or :class:`BodyError` for corrupt/truncated data.
    """
    if max_size < 0:
        raise ValueError(f"max_size must be >= 0, got {max_size}")
    codings = _parse_codings(content_encoding)
    data = bytes(body)
    if not codings and len(data) > max_size:
        raise TooLarge(f"body is {len(data)} bytes, more than the limit of {max_size}")
    for coding in reversed(codings):
        data = _DECODERS[coding](data, max_size)
    return data


def _parse_codings(content_encoding: str | None) -> list[str]:
    """Split a Content-Encoding value into known codings; identity entries are dropped."""
    if content_encoding is None:
        return []
    codings: list[str] = []
    for raw in content_encoding.split(","):
        coding = raw.strip().lower()
        if coding in ("", "identity"):
            continue
        if coding == "x-gzip":
            coding = "gzip"
        if coding not in _DECODERS:
            raise UnsupportedEncoding(
                f"unsupported Content-Encoding {_short(raw.strip())} "
                f"(allowed: {', '.join(SUPPORTED_ENCODINGS)})"
            )
        if coding == "br" and _brotli is None:  # pragma: no cover
            raise UnsupportedEncoding("Content-Encoding 'br' needs the brotli package, which is missing")
        codings.append(coding)
    return codings


def _too_large(coding: str, max_size: int) -> TooLarge:
    return TooLarge(f"{coding} body decompresses to more than the limit of {max_size} bytes")


def _inflate(data: bytes, wbits: int, max_size: int, coding: str) -> tuple[bytes, bytes]:
    """Inflate one zlib/gzip/raw-deflate stream with bounded output.

    Returns ``(output, unused_data)``.  Raises :class:`TooLarge` once more than
    ``max_size`` bytes would be produced, :class:`BodyError` if corrupt/truncated.
    """
    d = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    try:
        while not d.eof:
            chunk = d.decompress(pending, max_size + 1 - len(out))
            out += chunk
            if len(out) > max_size:
                raise _too_large(coding, max_size)
            progressed = bool(chunk) or len(d.unconsumed_tail) < len(pending)
            pending = d.unconsumed_tail
            if not progressed or (not chunk and not pending):
                break
    except zlib.error as exc:
        raise BodyError(f"corrupt {coding} body: {exc}") from None
    if not d.eof:
        raise BodyError(f"truncated {coding} body: compressed stream ends early")
    return bytes(out), d.unused_data


def _decode_gzip(data: bytes, max_size: int) -> bytes:
    """Decode gzip, including several concatenated members."""
    if not data:
        raise BodyError("truncated gzip body: empty")
    parts: list[bytes] = []
    total = 0
    rest = data
    while True:
        out, rest = _inflate(rest, 16 + zlib.MAX_WBITS, max_size - total, "gzip")
        parts.append(out)
        total += len(out)
        if not rest:
            return b"".join(parts)
        if not rest.startswith(b"\x1f\x8b"):
            raise BodyError(f"corrupt gzip body: {len(rest)} bytes of trailing garbage")


def _decode_deflate(data: bytes, max_size: int) -> bytes:
    """Decode HTTP ``deflate``: zlib-wrapped (RFC 1950) or, as some clients send, raw (RFC 1951)."""
    if not data:
        raise BodyError("truncated deflate body: empty")
    if _looks_like_zlib(data):
        try:
            out, rest = _inflate(data, zlib.MAX_WBITS, max_size, "deflate")
        except TooLarge:
            raise
        except BodyError as zlib_err:
            try:
                out, rest = _inflate(data, -zlib.MAX_WBITS, max_size, "deflate")
            except TooLarge:
                raise
            except BodyError:
                raise zlib_err from None
    else:
        out, rest = _inflate(data, -zlib.MAX_WBITS, max_size, "deflate")
    if rest:
        raise BodyError(f"corrupt deflate body: {len(rest)} bytes of trailing garbage")
    return out


def _looks_like_zlib(data: bytes) -> bool:
    """True if the first two bytes are a valid zlib (RFC 1950) header."""
    if len(data) < 2:
        return False
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0


def _decode_brotli(data: bytes, max_size: int) -> bytes:
    """Decode brotli with bounded output (brotli >= 1.1 ``output_buffer_limit``)."""
    assert _brotli is not None
    d = _brotli.Decompressor()
    out = bytearray()
    try:
        try:
            chunk = d.process(data, output_buffer_limit=max_size + 1)
        except TypeError:  # pragma: no cover - old brotli without output limits
            return _decode_brotli_chunked(d, data, max_size)
        idle = 0  # consecutive calls that produced nothing (guards against spinning)
        while True:
            out += chunk
            if len(out) > max_size:
                raise _too_large("br", max_size)
            idle = 0 if chunk else idle + 1
            if d.is_finished() or idle > 2 or (not chunk and d.can_accept_more_data()):
                break
            chunk = d.process(b"", output_buffer_limit=max_size + 1 - len(out))
    except _brotli.error as exc:
        raise BodyError(f"corrupt br body: {exc}") from None
    if not d.is_finished():
        raise BodyError("truncated br body: compressed stream ends early")
    return bytes(out)


def _decode_brotli_chunked(d: Any, data: bytes, max_size: int) -> bytes:  # pragma: no cover
    """Fallback for old brotli: feed small input slices so output stays near the bound."""
    out = bytearray()
    for start in range(0, len(data), 256):
        out += d.process(data[start : start + 256])
        if len(out) > max_size:
            raise _too_large("br", max_size)
    if not d.is_finished():
        raise BodyError("truncated br body: compressed stream ends early")
    return bytes(out)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _decode_gzip,
    "deflate": _decode_deflate,
    "br": _decode_brotli,
}


# ---------------------------------------------------------------------------
# helpers


def _short(value: Any) -> str:
    """A one-line repr of ``value``, truncated to keep error reasons short."""
    text = repr(value)
    if len(text) > _REPR_LIMIT:
        text = text[: _REPR_LIMIT - 3] + "..."
    return text


def _one_line(text: str) -> str:
    """Collapse newlines so reasons always fit on one line."""
    return " ".join(str(text).split()) if ("\n" in text or "\r" in text) else text
