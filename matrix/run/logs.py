"""Keep cell logs readable and small: each attempt's part of a log is capped (head and tail kept,
the middle replaced by one line saying how much was left out). The memory probe's thousands of
load requests would otherwise make a Channels log megabytes of SDK debug lines; the verdict's
evidence is in matrix.json, and what a person checks (start-up, the rounds, flush, exit) sits at
the head and the tail of each attempt.

`python -m matrix.logs DIR` applies the same cap to every *.log below DIR.
"""
from __future__ import annotations

import os
import re
import sys
import threading

HEAD_BYTES = 96 * 1024
TAIL_BYTES = 32 * 1024
_ATTEMPT = re.compile(r"^\[matrix [0-9:]+\] attempt \d+: ", re.M)


def cap_part(text: str, head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> str:
    """One attempt's text with its middle elided on line boundaries, if it is longer than head + tail."""
    if len(text) <= head + tail or "\n[matrix] ... " in text:  # short, or capped already
        return text
    start = text.rfind("\n", 0, head) + 1 or head
    end = text.find("\n", len(text) - tail)
    end = len(text) - tail if end < 0 else end + 1
    omitted = text[start:end]
    marker = (f"[matrix] ... {omitted.count(chr(10))} lines ({len(omitted) // 1024} KiB) of this attempt left out "
              "to keep the log small (the memory probe's load requests, mostly) ...\n")
    return text[:start] + marker + text[end:]


#: While an attempt runs, its part of the log may grow to this much before it is capped in place.
FLOOD_BYTES = 4 * 1024 * 1024
GUARD_INTERVAL = 0.25


class LogGuard:
    """Caps an attempt's part of a log while the app still writes to it, so an app that floods its output
    cannot fill the disk: every GUARD_INTERVAL seconds, once the part passes FLOOD_BYTES, the part is cut in
    place to its head, one marker line (the same as cap_part's, with the running count of what was left out)
    and its tail. In place, because the app's stdout is this very file, opened for appending: the app's next
    writes land after the tail. `finish()` (after the app is gone) caps the part to head + tail exactly."""

    def __init__(self, path: str, flood_bytes: int = FLOOD_BYTES, interval: float = GUARD_INTERVAL):
        self.path = path
        self.flood_bytes = flood_bytes
        self.interval = interval
        self.start = os.path.getsize(path)  # where this attempt's part begins
        self.head_end: int | None = None  # where its kept head ends, once capped
        self.omitted_lines = 0
        self.omitted_bytes = 0
        self.peak = 0  # the largest the part ever was (what reached the disk at once)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="log-guard", daemon=True)

    def __enter__(self) -> "LogGuard":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.check(self.flood_bytes)

    def finish(self) -> None:
        """Stop watching and cap the part to head + tail (call once nothing writes to the log any more)."""
        self.__exit__()
        self.check(HEAD_BYTES + TAIL_BYTES)

    def check(self, limit: int) -> bool:
        """Cap the part in place if it is longer than `limit`; True if it did."""
        with self._lock:
            try:
                size = os.path.getsize(self.path)
                self.peak = max(self.peak, size - self.start)
                if size - self.start <= limit:
                    return False
                with open(self.path, "r+b") as fh:
                    if self.head_end is None:
                        fh.seek(self.start)
                        head = fh.read(HEAD_BYTES)
                        cut = head.rfind(b"\n") + 1
                        self.head_end = self.start + (cut or len(head))
                    fh.seek(self.head_end)
                    rest = fh.read()  # the old marker, the old tail and what came since: at most ~limit
                    if rest.startswith(b"[matrix] ... "):
                        rest = rest[rest.find(b"\n") + 1:]  # our marker: not the app's output
                    keep = rest[-TAIL_BYTES:]
                    if len(keep) < len(rest):
                        keep = keep[keep.find(b"\n") + 1:]
                    dropped = rest[: len(rest) - len(keep)]
                    self.omitted_lines += dropped.count(b"\n")
                    self.omitted_bytes += len(dropped)
                    marker = (f"[matrix] ... {self.omitted_lines} lines ({self.omitted_bytes // 1024} KiB) of this "
                              "attempt left out to keep the log small (the app flooded its output) ...\n").encode()
                    fh.truncate(self.head_end)
                    fh.seek(0, os.SEEK_END)
                    fh.write(marker + keep)
                return True
            except OSError:
                return False


def cap_log_text(text: str) -> str:
    """Cap every attempt of a cell log separately (the header before the first attempt is kept whole)."""
    cuts = [m.start() for m in _ATTEMPT.finditer(text)]
    if not cuts:
        return cap_part(text)
    parts = [text[:cuts[0]]] + [text[a:b] for a, b in zip(cuts, cuts[1:] + [len(text)])]
    return parts[0] + "".join(cap_part(part) for part in parts[1:])


def cap_log_file(path: str) -> bool:
    """Rewrite the file capped; True if it changed."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    capped = cap_log_text(text)
    if capped == text:
        return False
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(capped)
    os.replace(path + ".tmp", path)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print(f"usage: python -m matrix.logs DIR (got {' '.join(argv) or 'nothing'})", file=sys.stderr)
        return 2
    changed = 0
    for root, _, files in os.walk(argv[0]):
        for name in files:
            if name.endswith(".log") and cap_log_file(os.path.join(root, name)):
                changed += 1
    print(f"capped {changed} log(s) below {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
