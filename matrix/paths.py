"""Where things live: the repository, the cache, the apps, the results.

From a checkout, everything is beside the `matrix` package. An installed package (`pip install .`, not
editable) carries what it needs besides its code in `matrix/_bundle/`: the apps, the Dockerfiles and the
committed results (setup.py's build hook copies them into the wheel); its cache and the results of its
own runs go to the user's cache directory and the current directory.
"""
import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(PACKAGE_DIR)
BUNDLE = os.path.join(PACKAGE_DIR, "_bundle")
INSTALLED = not (os.path.isfile(os.path.join(CHECKOUT, "pyproject.toml"))
                 and os.path.isdir(os.path.join(CHECKOUT, "apps", "_common"))) \
    and os.path.isdir(os.path.join(BUNDLE, "apps"))

REPO = BUNDLE if INSTALLED else CHECKOUT
CACHE_DIR = os.environ.get("MATRIX_CACHE") or (
    os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sentry-context-matrix")
    if INSTALLED else os.path.join(REPO, ".matrix"))
APPS_DIR = os.path.join(REPO, "apps")
RESULTS_DIR = os.path.join(REPO, "results")  # the committed results (read by `check`)
# Where `run` and `merge` write by default: the checkout's results/, or ./results for an installed package.
RESULTS_OUT = os.path.join(os.getcwd(), "results") if INSTALLED else RESULTS_DIR


def known_apps() -> tuple[str, ...]:
    """The reference apps: every directory of apps/ that holds an app.py (a new model is one directory)."""
    try:
        names = os.listdir(APPS_DIR)
    except OSError:
        return ()
    return tuple(sorted(n for n in names if os.path.isfile(os.path.join(APPS_DIR, n, "app.py"))))
