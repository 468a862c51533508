"""Fixtures of the mock server's tests: one real server per module, a fresh project per test."""
from __future__ import annotations

from typing import Any

import pytest

from matrix.sentry.server import MockSentryServer


@pytest.fixture(scope="module")
def server() -> Any:
    with MockSentryServer() as srv:
        yield srv


@pytest.fixture
def pid(server: MockSentryServer) -> int:
    return server.new_project()
