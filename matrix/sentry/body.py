"""Bounded, streaming decoding of request bodies: the Content-Encoding chain (gzip, deflate, br, and the
values Relay ignores), the base64 + zlib bodies of old /store/ clients, with every step capped at the
permitted size so a compression bomb costs at most that much memory. Pure; errors are :class:`BodyError`."""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any, Callable

try:  # brotli is a declared dependency, but keep the import failure readable.
    import brotli as _brotli
except ImportError:  # pragma: no cover - exercised only without the package
    _brotli = None

from .errors import BodyError, Buffer, TooLarge, UnsupportedEncoding, _short

#: Content-Encoding values accepted by :func:`decode_body` (besides none).
SUPPORTED_ENCODINGS = ("identity", "gzip", "deflate", "br")

#: Whole Content-Encoding values that mean "not encoded": sentry-ruby 5.x sends "", sentry-java
#: on Android 2.0 sends "UTF-8" (relay-server/src/middlewares/decompression.rs `should_ignore_encoding`).
IGNORED_ENCODINGS = ("", "utf-8")

# ---------------------------------------------------------------------------
# body decoding: streaming, with the size cap checked after every step

#: Compressed input is fed in slices of this size, so an inflater's leftover input stays small.
IN_STEP = 16 * 1024
#: Each inflate step produces at most this much output before the cap is checked again.
OUT_STEP = 64 * 1024


def decode_body(body: Buffer, content_encoding: str | None, max_size: int,
                on_large: Callable[[], None] | None = None) -> Buffer:
    """Undo ``Content-Encoding`` on ``body`` without producing more than ``max_size`` bytes.

    Supports none/``identity``, ``gzip`` (also ``x-gzip``), ``deflate`` (zlib-wrapped
    or raw) and ``br``; a comma-separated list is undone right to left.  Raises
    :class:`UnsupportedEncoding`, :class:`TooLarge` (never holding more than ``max_size``
    plus one step of output) or :class:`BodyError` for corrupt/truncated data.
    ``on_large`` (see :func:`decode_codings`) is called once the output passes LARGE_OUTPUT.
    """
    return decode_codings(body, content_codings(content_encoding), max_size, on_large)


def content_codings(content_encoding: str | None) -> list[str]:
    """Split a Content-Encoding value into known codings (applied in this order by the sender);
    identity entries are dropped. Raises :class:`UnsupportedEncoding`."""
    if content_encoding is None or content_encoding.strip().lower() in IGNORED_ENCODINGS:
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


#: Output size from which a decompression counts as large (``on_large`` is called: the server takes one
#: of its few decompression slots there). Normal envelopes stay below it and never wait.
LARGE_OUTPUT = 256 * 1024


def decode_codings(body: Buffer, codings: list[str], max_size: int,
                   on_large: Callable[[], None] | None = None) -> Buffer:
    """Undo ``codings`` (as returned by :func:`content_codings`) right to left, output capped.

    ``on_large`` is called (at most once, from this thread) when the output first grows past
    LARGE_OUTPUT; it may block, or raise to abort the decompression."""
    if max_size < 0:
        raise ValueError(f"max_size must be >= 0, got {max_size}")
    data: Buffer = body
    if not codings and len(data) > max_size:
        raise TooLarge(f"body is {len(data)} bytes, more than the limit of {max_size}")
    hook = _Once(on_large)
    for coding in reversed(codings):
        data = _DECODERS[coding](memoryview(data), _Output(coding, max_size, hook))
    return data


class _Once:
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], None] | None) -> None:
        self.fn = fn

    def __call__(self) -> None:
        fn, self.fn = self.fn, None
        if fn is not None:
            fn()


class _Output:
    """Where a decoder writes: one growing buffer, the cap checked at every step."""

    __slots__ = ("buf", "coding", "max_size", "on_large")

    def __init__(self, coding: str, max_size: int, on_large: Callable[[], None] | None = None) -> None:
        self.buf = bytearray()
        self.coding = coding
        self.max_size = max_size
        self.on_large = on_large

    def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.buf += chunk
        size = len(self.buf)
        if size > self.max_size:
            raise TooLarge(f"{self.coding} body decompresses to more than the limit of {self.max_size} bytes")
        if size > LARGE_OUTPUT and self.on_large is not None:
            hook, self.on_large = self.on_large, None
            hook()


def _inflate(data: memoryview, start: int, wbits: int, out: _Output) -> int:
    """Inflate one zlib/gzip/raw-deflate stream that begins at ``data[start]`` into ``out``.

    Input goes in IN_STEP slices, output comes out OUT_STEP at a time and the buffer never grows past
    the cap (+ one step) before :class:`TooLarge` is raised. Returns the position just after the
    stream; raises :class:`BodyError` if it is corrupt or truncated.
    """
    d = zlib.decompressobj(wbits)
    pos, end = start, len(data)
    try:
        while pos < end and not d.eof:
            pending: Buffer = data[pos : pos + IN_STEP]
            pos += len(pending)
            while True:
                chunk = d.decompress(pending, OUT_STEP)
                out.add(chunk)
                tail = d.unconsumed_tail
                if d.eof or not (chunk or len(tail) < len(pending)):
                    break  # finished, or no progress: it needs more input
                pending = tail
        if not d.eof:  # all input fed: let it flush what it still holds
            while True:
                chunk = d.decompress(b"", OUT_STEP)
                if not chunk:
                    break
                out.add(chunk)
    except zlib.error as exc:
        raise BodyError(f"corrupt {out.coding} body: {exc}") from None
    if not d.eof:
        raise BodyError(f"truncated {out.coding} body: compressed stream ends early")
    return pos - len(d.unused_data)


def _decode_gzip(data: memoryview, out: _Output) -> bytearray:
    """Decode gzip, including several concatenated members."""
    if not len(data):
        raise BodyError("truncated gzip body: empty")
    pos = 0
    while True:
        pos = _inflate(data, pos, 16 + zlib.MAX_WBITS, out)
        if pos >= len(data):
            return out.buf
        if data[pos : pos + 2] != b"\x1f\x8b":
            raise BodyError(f"corrupt gzip body: {len(data) - pos} bytes of trailing garbage")


def _decode_deflate(data: memoryview, out: _Output) -> bytearray:
    """Decode HTTP ``deflate``: zlib-wrapped (RFC 1950) or, as some clients send, raw (RFC 1951)."""
    if not len(data):
        raise BodyError("truncated deflate body: empty")
    if _looks_like_zlib(data):
        try:
            pos = _inflate(data, 0, zlib.MAX_WBITS, out)
        except TooLarge:
            raise
        except BodyError as zlib_err:
            out.buf.clear()
            try:
                pos = _inflate(data, 0, -zlib.MAX_WBITS, out)
            except TooLarge:
                raise
            except BodyError:
                raise zlib_err from None
    else:
        pos = _inflate(data, 0, -zlib.MAX_WBITS, out)
    if pos < len(data):
        raise BodyError(f"corrupt deflate body: {len(data) - pos} bytes of trailing garbage")
    return out.buf


def _looks_like_zlib(data: Buffer) -> bool:
    """True if the first two bytes are a valid zlib (RFC 1950) header."""
    if len(data) < 2:
        return False
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0


def _decode_brotli(data: memoryview, out: _Output) -> bytearray:
    """Decode brotli in IN_STEP input slices; after each slice, drain the output OUT_STEP at a time
    (brotli >= 1.1 ``output_buffer_limit``) until it needs more input."""
    assert _brotli is not None
    d = _brotli.Decompressor()
    try:
        d.process(b"", output_buffer_limit=1)
    except TypeError:  # pragma: no cover - old brotli without output limits
        return _decode_brotli_unlimited(d, data, out)
    except _brotli.error:
        pass
    try:
        for start in range(0, len(data), IN_STEP):
            if d.is_finished():
                raise BodyError(f"corrupt br body: {len(data) - start} bytes of trailing garbage")
            chunk = d.process(data[start : start + IN_STEP], output_buffer_limit=OUT_STEP)
            while True:
                out.add(chunk)
                if d.is_finished() or (not chunk and d.can_accept_more_data()):
                    break
                chunk = d.process(b"", output_buffer_limit=OUT_STEP)
    except _brotli.error as exc:
        raise BodyError(f"corrupt br body: {exc}") from None
    if not d.is_finished():
        raise BodyError("truncated br body: compressed stream ends early")
    return out.buf


def _decode_brotli_unlimited(d: Any, data: memoryview, out: _Output) -> bytearray:  # pragma: no cover
    """Fallback for old brotli: feed small input slices so output stays near the bound."""
    for start in range(0, len(data), 256):
        out.add(d.process(bytes(data[start : start + 256])))
    if not d.is_finished():
        raise BodyError("truncated br body: compressed stream ends early")
    return out.buf


_DECODERS: dict[str, Callable[[memoryview, _Output], bytearray]] = {
    "gzip": _decode_gzip,
    "deflate": _decode_deflate,
    "br": _decode_brotli,
}


def needs_inflating_store_body(body: Buffer) -> bool:
    """True if a /store/ body is not plain JSON (relay-server/src/endpoints/store.rs `decode_bytes`)."""
    return bool(len(body)) and body[0:1] != b"{"


def decode_store_body(body: Buffer, max_size: int, on_large: Callable[[], None] | None = None) -> Buffer:
    """The legacy /store/ body encodings, as Relay's store endpoint undoes them: a body that does not
    start with ``{`` is base64; decoded, if it still does not start with ``{`` it is zlib-compressed
    (relay-server/src/endpoints/store.rs `decode_bytes`). The inflated size is capped like any body."""
    if not needs_inflating_store_body(body):
        return body
    try:
        binary = base64.b64decode(bytes(body), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BodyError(f"store body is neither JSON nor base64 ({exc})") from None
    if binary[:1] == b"{":
        return binary
    out = _Output("base64 zlib", max_size, _Once(on_large))
    view = memoryview(binary)
    pos = _inflate(view, 0, zlib.MAX_WBITS, out)
    if pos < len(view):
        raise BodyError(f"corrupt base64 zlib body: {len(view) - pos} bytes of trailing garbage")
    return out.buf
