"""The apps' tests share one real mock Sentry server per test module, on loopback."""
import pytest

from matrix.sentry.server import MockSentryServer


@pytest.fixture(scope="module")
def server():
    with MockSentryServer() as srv:
        yield srv
