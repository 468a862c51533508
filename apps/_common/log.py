"""Line logger for the apps: everything goes to stderr, flushed at once.

The engine captures stdout and stderr as the cell log; writing to stderr with
an explicit flush keeps our lines interleaved correctly with the SDK's own
debug output (the SDK logs to stderr too) on every Python version.
"""
from __future__ import absolute_import, print_function

import os
import sys
import threading
import time
import traceback

_lock = threading.Lock()
_prefix = ["app"]


def set_prefix(name):
    _prefix[0] = name


def log(msg):
    line = "[%s pid=%d %s] %s\n" % (
        _prefix[0],
        os.getpid(),
        time.strftime("%H:%M:%S"),
        msg,
    )
    with _lock:
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except Exception:
            pass


def forward_stdlib_logging(level=30):
    """A framework's own `logging` records at `level` (WARNING) and above to
    stderr. The handler's own level keeps the SDK's debug records (which
    propagate to the root logger) from being printed twice."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("[%(name)s %(levelname)s] %(message)s"))
    logging.getLogger().addHandler(handler)


def log_exception(msg):
    log(msg + "\n" + traceback.format_exc().rstrip())


def one_line(exc):
    """`ExcType: message` squeezed onto one line."""
    text = "%s: %s" % (type(exc).__name__, exc)
    return " ".join(text.split())


def flush_std_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
