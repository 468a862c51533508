"""The errors of the mock server's body decoding and envelope parsing, each with a one-line ``reason``, and
the small helpers that keep those reasons short. Pure."""

from __future__ import annotations

from typing import Any, Union

Buffer = Union[bytes, bytearray, memoryview]

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


def _short(value: Any) -> str:
    """A one-line repr of ``value``, truncated to keep error reasons short."""
    text = repr(value)
    if len(text) > _REPR_LIMIT:
        text = text[: _REPR_LIMIT - 3] + "..."
    return text


def _one_line(text: str) -> str:
    """Collapse newlines so reasons always fit on one line."""
    return " ".join(str(text).split()) if ("\n" in text or "\r" in text) else text
