import pytest

from ctrkit.datasets import synthetic_criteo


@pytest.fixture(scope="session")
def small_df():
    """A small synthetic Criteo-like frame, shared (read-only) by tests."""
    return synthetic_criteo(5_000, seed=0)
