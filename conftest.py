"""pytest: the repository root on sys.path, so `matrix` and `tests.helpers` import from the checkout."""
import os
import sys

REPO = os.path.dirname(os.path.abspath(__file__))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
