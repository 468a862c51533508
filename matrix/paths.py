"""Where things live: the repository, the cache, the apps, the results."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE_DIR = os.environ.get("MATRIX_CACHE") or os.path.join(REPO, ".matrix")
APPS_DIR = os.path.join(REPO, "apps")
RESULTS_DIR = os.path.join(REPO, "results")
