"""Which process an app watches, so that no app outlives the harness that started it.

The harness passes its own pid (`--parent-pid`). `guard()` runs as soon as the
arguments are parsed:
  * on Linux it asks the kernel for SIGKILL when the parent dies
    (prctl(PR_SET_PDEATHSIG)), so a SIGKILLed harness takes its apps with it;
    the setting survives exec (the Django launcher execs into gunicorn);
  * then it checks that the parent is still the one named: a harness that
    died between starting the app and this line leaves the app orphaned
    (re-parented), and without the explicit pid the app would have captured
    the wrong parent and run forever. Such an app exits at once (code 3).
`watched()` is the pid the watchdogs compare getppid() with: the named parent,
or the parent seen at start when none was named (an app run by hand, or
inside a container, where the harness is not visible).

stdlib only (os, sys, ctypes lazily), valid Python 2.7 and 3.x, importable
before any monkeypatching.
"""
from __future__ import absolute_import, print_function

import os
import sys

PR_SET_PDEATHSIG = 1
SIGKILL = 9
_state = {"watched": None}


def _death_signal():
    """prctl(PR_SET_PDEATHSIG, SIGKILL); False where the platform has no such call."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == 0
    except Exception:
        return False


def guard(app_id, parent_pid):
    """Call right after parsing the arguments; exits (code 3) if the named parent is already gone."""
    if parent_pid:
        _death_signal()
        if os.getppid() != parent_pid:
            sys.stderr.write("[%s pid=%d] exiting with code 3: parent process %d is gone (parent is now %d)\n"
                             % (app_id, os.getpid(), parent_pid, os.getppid()))
            sys.stderr.flush()
            os._exit(3)
        _state["watched"] = parent_pid
    elif _state["watched"] is None:
        _state["watched"] = os.getppid()


def watched():
    """The pid whose disappearance makes this app exit."""
    if _state["watched"] is None:
        _state["watched"] = os.getppid()
    return _state["watched"]
