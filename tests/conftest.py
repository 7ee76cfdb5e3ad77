"""Test configuration: a fixed, derandomized hypothesis profile for CI and local runs."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def eager_cache_off():
    """For tests that watch which rule the eager interpreters run on every call: the eager cache
    (functrans/eager.py) would run a compiled program from the third call on."""
    import functrans as ft

    ft.config.update("eager_cache", False)
    try:
        yield
    finally:
        ft.config.update("eager_cache", True)
