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
