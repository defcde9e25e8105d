"""Shared fixtures: throwaway PostgreSQL databases and Redis on the test servers (see tests/support.py).

Each conftest.py holds fixtures only; what test modules import sits in the support.py beside it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import test_servers, throwaway_database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The warehouse database shared by this test session."""
    with throwaway_database() as url:
        yield url


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    """A warehouse database of its own, for a test that needs it empty."""
    with throwaway_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return test_servers()[1]
