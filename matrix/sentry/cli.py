"""`python -m matrix.sentry`: the mock server in the foreground, printing its DSNs."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Sequence

from .server import (DEFAULT_DECOMPRESS_WAIT, DEFAULT_MAX_BODY, DEFAULT_MAX_DECOMPRESSIONS, LOOPBACK,
                     MockSentryServer)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 10000:
        raise argparse.ArgumentTypeError(f"must be in 0..10000, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m matrix.sentry",
        description="Run the loopback mock Sentry server in the foreground.",
    )
    p.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--projects", type=_count, default=1, help="how many project DSNs to create (default 1)")
    p.add_argument("--serve-seconds", type=_seconds, default=None, help="stop by itself after this many seconds")
    p.add_argument("--max-body", type=_count_bytes, default=DEFAULT_MAX_BODY, help="body size limit in bytes")
    p.add_argument("--max-decompressions", type=_count_bytes, default=DEFAULT_MAX_DECOMPRESSIONS,
                   help=f"large decompressions at once (default {DEFAULT_MAX_DECOMPRESSIONS}); "
                        "more wait, then get a 503")
    p.add_argument("--decompress-wait", type=_seconds, default=DEFAULT_DECOMPRESS_WAIT,
                   help=f"seconds a large decompression waits for a slot (default {DEFAULT_DECOMPRESS_WAIT:g})")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return p


def _count_bytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: print the URL and DSNs, serve until Ctrl-C or --serve-seconds."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    try:
        server = MockSentryServer(args.port, max_body=args.max_body, max_decompressions=args.max_decompressions,
                                  decompress_wait=args.decompress_wait)
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {LOOPBACK}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        print(f"mock sentry server at {server.url}", flush=True)
        for _ in range(args.projects):
            pid = server.new_project()
            print(f"project {pid}: {server.dsn(pid)}", flush=True)
        _serve_until(args.serve_seconds)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        server.stop()
    stats = server.stats()
    print(f"stopped: {stats['envelopes_accepted']} envelopes accepted, {stats['rejected_total']} rejected", flush=True)
    return 0


def _serve_until(seconds: float | None) -> None:
    """Sleep in short steps for ``seconds`` (forever if None); Ctrl-C raises KeyboardInterrupt."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        remaining = 1.0 if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 1.0))
