"""What an app may do BEFORE monkeypatching: read --variant, fail in one line.

gevent and eventlet apps decide their import order from the variant (e.g.
`sdk-first` imports the SDK before `patch_all()`), so they read it from argv
before anything else is imported. This module imports nothing but `sys`;
importing it (and the `_common` package, whose __init__ is a docstring) is
safe before any monkeypatching. The full parse (`_common.cli`) comes later
and validates everything again; `check_same` catches the spellings argparse
accepts but this scan does not see (e.g. an abbreviated `--var`).
"""
import sys


def variant_from_argv(argv=None):
    """The --variant value (`--variant X` or `--variant=X`; the last one
    wins, as in argparse), or None."""
    argv = sys.argv[1:] if argv is None else argv
    found = None
    for index, arg in enumerate(argv):
        if arg == "--variant" and index + 1 < len(argv):
            found = argv[index + 1]
        elif arg.startswith("--variant="):
            found = arg.split("=", 1)[1]
    return found


STACK_FAILS = 4  # exit code: the stack itself cannot run here, no SDK involved (the cell is n/a)


def die(app_id, message, code=2):
    """One line on stderr, then exit (same format as _common.cli.die)."""
    sys.stderr.write("%s: error: %s\n" % (app_id, " ".join(str(message).split())))
    sys.stderr.flush()
    sys.exit(code)


def patch_gevent(app_id):
    """`gevent.monkey.patch_all()`, first thing; a gevent that does not import
    here is the stack failing on its own (exit 4), not the SDK."""
    try:
        from gevent import monkey
    except Exception as exc:
        die(app_id, "the stack cannot run here without the SDK: cannot import gevent: %s: %s"
            % (type(exc).__name__, exc), code=STACK_FAILS)
    monkey.patch_all()


def check_same(app_id, parsed, early, ordering):
    """Exit 2 when the parsed variant and the early one disagree about a
    variant in `ordering` (those decide the import order, already done)."""
    if (parsed in ordering or early in ordering) and parsed != early:
        die(app_id, "write the variant as --variant NAME or --variant=NAME (got %r)" % parsed)
