"""pytest: the repository root on sys.path, so `matrix` and `tests.helpers` import from the checkout."""
import os
import sys

REPO = os.path.dirname(os.path.abspath(__file__))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def python_minor():
    """A Python 3.10+ interpreter installed here (3.12 preferred), for tests that run real cells."""
    from matrix.backends.interpreters import discover

    found = discover()
    for minor in ("3.12", "3.11", "3.13", "3.10"):
        if minor in found:
            return minor
    pytest.skip("no Python 3.10+ interpreter installed")
