import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
SCHEMA = os.path.join(os.path.dirname(REPO), "shared", "results.schema.json")
DATA = os.path.join(REPO, "tests", "data")
