"""Where things live: the repository, the cache, the apps, the results."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE_DIR = os.environ.get("MATRIX_CACHE") or os.path.join(REPO, ".matrix")
APPS_DIR = os.path.join(REPO, "apps")
RESULTS_DIR = os.path.join(REPO, "results")


def known_apps() -> tuple[str, ...]:
    """The reference apps: every directory of apps/ that holds an app.py (a new model is one directory)."""
    try:
        names = os.listdir(APPS_DIR)
    except OSError:
        return ()
    return tuple(sorted(n for n in names if os.path.isfile(os.path.join(APPS_DIR, n, "app.py"))))
